"""Processing steps: the job's entry point in a subprocess, container paths mapped to a work dir.

Every input and output ``LocalPath`` is a mount point while the job runs, as in the container
(local_runtime/pipeline/container_mounts.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from local_runtime.pipeline.container_mounts import with_mount_points
from local_runtime.pipeline.runners.base import StepContext, StepFailedError
from local_runtime.pipeline.runners.job_process import job_process
from local_runtime.pipeline.s3io import download_prefix, upload_dir

PYTHON_COMMANDS = ("python", "python3")


def run(args: dict, ctx: StepContext) -> tuple[dict, dict]:
    for item in args.get("ProcessingInputs", []):
        s3_input = item["S3Input"]
        download_prefix(ctx.job_objects, s3_input["S3Uri"], ctx.container_path(s3_input["LocalPath"]),
                        ctx.clients.region, args.get("RoleArn", ""))
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for item in outputs:
        ctx.container_path(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)

    app = args["AppSpecification"]
    entrypoint = app.get("ContainerEntrypoint") or []
    if not entrypoint or os.path.basename(entrypoint[0]) not in PYTHON_COMMANDS:
        raise StepFailedError(ctx.step_name, f"entry point {entrypoint} is not a Python script; "
                                             "the local runtime runs Python processing scripts only")
    command = [sys.executable, *[ctx.map_container_paths(a) for a in entrypoint[1:]],
               *[ctx.map_container_paths(str(a)) for a in app.get("ContainerArguments", [])]]
    environment = {**os.environ, "PYTHONUNBUFFERED": "TRUE",     # as the framework images set it: lines log as written
                   **{k: ctx.map_container_paths(str(v)) for k, v in args.get("Environment", {}).items()}}
    mount_points = [ctx.container_path(i["S3Input"]["LocalPath"]) for i in args.get("ProcessingInputs", [])]
    mount_points += [ctx.container_path(o["S3Output"]["LocalPath"]) for o in outputs]
    command, note = with_mount_points(command, mount_points)
    log_path = ctx.work_dir / "job.log"
    started = time.perf_counter()
    with open(log_path, "w") as log:
        if note:
            log.write(note + "\n")
            log.flush()
        with job_process(command, stop=ctx.stop, stdout=log, stderr=subprocess.STDOUT, env=environment,
                         cwd=ctx.work_dir) as process:
            returncode = process.wait()
    if returncode != 0:
        ctx.raise_if_stopped()
        tail = log_path.read_text().strip().splitlines()[-3:]
        raise StepFailedError(ctx.step_name, f"script exited with {returncode}: {' | '.join(tail)}", log_path)

    for item in outputs:
        upload_dir(ctx.job_objects, ctx.container_path(item["S3Output"]["LocalPath"]), item["S3Output"]["S3Uri"])
    property_files = {}
    for spec in ctx.spec.get("PropertyFiles", []):
        output = next(o for o in outputs if o["OutputName"] == spec["OutputName"])
        path = ctx.container_path(output["S3Output"]["LocalPath"]) / spec["FilePath"]
        try:
            property_files[spec["PropertyFileName"]] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StepFailedError(ctx.step_name, f"property file {spec['FilePath']} unreadable: {exc}", log_path) from exc
    properties = {**args, "ProcessingJobName": ctx.job_name, "ProcessingJobStatus": "Completed",
                  "ProcessingJobArn": ctx.arn("processing-job"),
                  "ProcessingTimeSeconds": round(time.perf_counter() - started, 3)}
    return properties, property_files
