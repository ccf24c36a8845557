"""Training steps: the built-in image-classification image runs on the local stand-in trainer.

The trainer follows the SageMaker training container contract under a mapped /opt/ml:
input/config/hyperparameters.json, input/config/inputdataconfig.json, input/data/<channel>/,
model/, output/failure. The stand-in's own knobs arrive in its environment
(``StepContext.image_environment``: ``SCONES_LOCAL_TRAINER``), as a container image's would.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time

from local_runtime.pipeline.runners.base import StepContext, StepFailedError
from local_runtime.pipeline.runners.job_process import StopSignal, job_process, stop_group
from local_runtime.pipeline.s3io import download_prefix
from scones_common.contracts.container import OPT_ML, TrainingContainer
from scones_common.names import ALGORITHM_IMAGE
from scones_common.s3uri import parse_s3_uri

_ACCURACY = re.compile(r"Epoch\[(\d+)\] (?:Train|Validation)-accuracy=[0-9.]+")   # the algorithm's log lines
_EARLY_STOP = re.compile(r"Early stopping after epoch \d+.*")


def is_image_classification(image_uri: str) -> bool:
    return image_uri.rsplit("/", 1)[-1].split(":")[0] == ALGORITHM_IMAGE


def milestone(line: str, epochs: int | None = None) -> str | None:
    """The accuracy lines of every quarter of ``epochs`` and of the last epoch (each epoch's when ``epochs`` is
    not known), and an early stop, are worth showing while the job runs."""
    match = _ACCURACY.search(line)
    if not match:
        stop = _EARLY_STOP.search(line)
        return stop.group(0) if stop else None
    done = int(match.group(1)) + 1           # the algorithm counts epochs from 0
    return match.group(0) if epochs is None or done == epochs or done % max(1, epochs // 4) == 0 else None


def input_data_config(channels: list[dict]) -> dict:
    """``inputdataconfig.json`` as SageMaker writes it into every training container."""
    return {c["ChannelName"]: {"ContentType": c.get("ContentType", ""), "TrainingInputMode": c.get("InputMode", "File"),
                               "S3DistributionType": c["DataSource"]["S3DataSource"].get("S3DataDistributionType",
                                                                                       "FullyReplicated"),
                               "RecordWrapperType": c.get("RecordWrapperType", "None")} for c in channels}


def _run_trainer(opt_ml, log_path, timeout: float | None, report, environment: dict[str, str],
                 epochs: int | None, stop: StopSignal | None = None) -> int | None:
    """Runs the trainer, teeing its output to the job log; None when it ran out of time."""
    deadline = time.monotonic() + timeout if timeout else None
    command = [sys.executable, "-m", "local_runtime.trainer.train", "--opt-ml", str(opt_ml)]
    # unbuffered child, line-buffered log: each line reaches the job log (and CloudWatch Logs) as it is written
    with open(log_path, "w", buffering=1) as log, job_process(
            command, stop=stop, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **environment}) as process:
        timer = threading.Timer(timeout, stop_group, (process, 0)) if timeout else None
        if timer:
            timer.daemon = True     # a run ending (Ctrl-C) must not wait for MaxRuntimeInSeconds to pass
            timer.start()
        try:
            for line in process.stdout:
                log.write(line)
                shown = milestone(line, epochs)
                if shown:
                    report(shown)
        finally:
            if timer:
                timer.cancel()
        returncode = process.wait()
    return None if deadline and time.monotonic() >= deadline and returncode != 0 else returncode


def run(args: dict, ctx: StepContext) -> tuple[dict, dict]:
    image = args["AlgorithmSpecification"].get("TrainingImage", "")
    if not is_image_classification(image):
        raise StepFailedError(ctx.step_name, f"training image {image!r} has no local stand-in; "
                                             f"only the built-in {ALGORITHM_IMAGE} algorithm runs locally")
    container = TrainingContainer(ctx.container_path(OPT_ML))
    for channel in args["InputDataConfig"]:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        download_prefix(ctx.job_objects, uri, container.channel(channel["ChannelName"]), ctx.clients.region,
                        args.get("RoleArn", ""))
    container.hyperparameters.parent.mkdir(parents=True, exist_ok=True)
    hyperparameters = {k: str(v) for k, v in args.get("HyperParameters", {}).items()}
    container.hyperparameters.write_text(json.dumps(hyperparameters))
    (container.hyperparameters.parent / "inputdataconfig.json").write_text(json.dumps(input_data_config(args["InputDataConfig"])))
    log_path = ctx.work_dir / "job.log"
    started = time.perf_counter()
    timeout = args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    epochs = hyperparameters.get("epochs", "")
    returncode = _run_trainer(container.root, log_path, timeout, ctx.report, ctx.image_environment,
                              int(epochs) if epochs.isdigit() else None, ctx.stop)
    if returncode != 0:
        ctx.raise_if_stopped()
    if returncode is None:
        raise StepFailedError(ctx.step_name, f"training exceeded MaxRuntimeInSeconds={timeout}", log_path)
    if returncode != 0:
        failure = container.failure
        reason = failure.read_text().strip() if failure.exists() else f"trainer exited with {returncode}"
        raise StepFailedError(ctx.step_name, reason, log_path)

    artifact = ctx.work_dir / "model.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:
        for path in sorted(container.model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    output = parse_s3_uri(args["OutputDataConfig"]["S3OutputPath"]).join(ctx.job_name, "output", "model.tar.gz")
    ctx.job_objects.write(output.bucket, output.key, artifact)
    metrics = json.loads(container.metrics.read_text())
    properties = {**args, "TrainingJobName": ctx.job_name, "TrainingJobStatus": "Completed",
                  "TrainingJobArn": ctx.arn("training-job"),
                  "ModelArtifacts": {"S3ModelArtifacts": str(output)},
                  "FinalMetricDataList": [{"MetricName": k, "Value": v} for k, v in metrics.items()],
                  "TrainingTimeInSeconds": round(time.perf_counter() - started, 3)}
    return properties, {}
