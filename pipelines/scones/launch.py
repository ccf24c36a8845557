"""Starting the pipeline the way CodeBuild does: upload code, mirror the data, upsert, start, wait.

``run-pipeline`` (CLI) and ``scones-local run`` call these same functions, so the local main
job goes through the same API path as the cloud build.
"""
from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError, WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from scones_common.config import SconesConfig
from scones_common.names import raw_data_uri

log = logging.getLogger("pipelines")
TERMINAL = ("Succeeded", "Failed", "Stopped")
_WAITER = "PipelineExecutionComplete"


@dataclass(frozen=True)
class Started:
    code_prefix: str
    execution_arn: str


def git_commit() -> str:
    """The checkout's commit; CodeBuild sources may come without .git but name it in the environment."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("CODEBUILD_RESOLVED_SOURCE_VERSION", "unknown")[:12]


def mirror_source_archive(s3, config: SconesConfig, target_uri: str):
    """Processing jobs read only S3: copy the configured source archive there, keyed by its SHA-256.

    ``target_uri`` is the name-based location (``raw_data_uri``); the archive lands under
    ``…/raw/sha256-<hex>/<name>``, and the returned :class:`~processing.cifar_source.MirroredArchive`
    carries that URI (the ``InputDataUri`` to run with) and the provenance label (``DataSource``).
    """
    from processing.cifar_source import mirror_archive

    return mirror_archive(s3, config.data.source, config.data.cache_dir, target_uri)


def start_pipeline(s3, sm, config: SconesConfig) -> Started:
    """Uploads the code, mirrors the source archive, upserts the pipeline with tags and starts it.

    Only the source's identity is passed (the content-keyed ``InputDataUri`` and its provenance);
    the definition's parameter defaults already carry the rest of the configuration.
    """
    from pipelines.scones.code_bundle import upload_code
    from pipelines.scones.human_labels import empty_set_uri, publish_label_set

    source = mirror_source_archive(s3, config, raw_data_uri(config))
    from pipelines.scones.pipeline import get_pipeline, registry_metadata_value  # the SDK: 4 s, after the source

    labels = publish_label_set(s3, config)       # the labels recorded by now, keyed by content
    if labels != empty_set_uri(config):
        _publish_empty_set(s3, config)           # the parameter's default, for runs started with no snapshot
    code_prefix = upload_code(s3, config.s3_root)
    tags = [{"Key": "project", "Value": config.project.name}, {"Key": "environment", "Value": config.environment},
            {"Key": "git_commit", "Value": config.project.git_commit}]
    get_pipeline(config).upsert(role_arn=config.pipeline.role_arn, description="Scones Unlimited vehicle classifier",
                                tags=tags)
    response = sm.start_pipeline_execution(PipelineName=config.pipeline.name,
                                           PipelineExecutionDisplayName=f"run-{config.project.git_commit}",
                                           PipelineParameters=[
                                               {"Name": "InputDataUri", "Value": source.uri},
                                               {"Name": "DataSource", "Value": registry_metadata_value(source.provenance)},
                                               {"Name": "HumanLabelsUri", "Value": labels}])
    return Started(code_prefix, response["PipelineExecutionArn"])


def _publish_empty_set(s3, config: SconesConfig) -> None:
    from pipelines.scones.human_labels import empty_set_uri
    from scones_common.contracts.human_labels import MANIFEST_FILE, manifest_bytes
    from scones_common.s3uri import parse_s3_uri

    folder = parse_s3_uri(empty_set_uri(config))
    s3.put_object(Bucket=folder.bucket, Key=f"{folder.key}{MANIFEST_FILE}", Body=manifest_bytes([]),
                  ContentType="application/json")


def _waiter(sm, poll_seconds: float, timeout_seconds: float):
    """botocore has no pipeline-execution waiter; this is one in botocore's own waiter language."""
    attempts = max(1, int(timeout_seconds / max(poll_seconds, 0.01)))
    model = WaiterModel({"version": 2, "waiters": {_WAITER: {
        "operation": "DescribePipelineExecution", "delay": poll_seconds, "maxAttempts": attempts,
        "acceptors": [
            {"matcher": "path", "argument": "PipelineExecutionStatus", "expected": "Succeeded", "state": "success"},
            {"matcher": "path", "argument": "PipelineExecutionStatus", "expected": "Failed", "state": "failure"},
            {"matcher": "path", "argument": "PipelineExecutionStatus", "expected": "Stopped", "state": "failure"},
            {"matcher": "error", "expected": "ValidationException", "state": "failure"}]}}})
    return create_waiter_with_client(_WAITER, model, sm)


def wait_for_execution(sm, execution_arn: str, poll_seconds: float = 30.0, timeout_seconds: float = 4 * 3600) -> str:
    """The execution's final status (or its status when the timeout ran out)."""
    try:
        _waiter(sm, poll_seconds, timeout_seconds).wait(PipelineExecutionArn=execution_arn)
    except WaiterError as exc:
        last = exc.last_response or {}
        if "Error" in last:
            raise ClientError(last, "DescribePipelineExecution") from None
        return last.get("PipelineExecutionStatus", "Unknown")
    return "Succeeded"


def failed_steps(sm, execution_arn: str) -> list[str]:
    steps = [step for page in sm.get_paginator("list_pipeline_execution_steps").paginate(
        PipelineExecutionArn=execution_arn) for step in page["PipelineExecutionSteps"]]
    return [f"{s['StepName']}: {s.get('FailureReason', s['StepStatus'])}" for s in steps if s["StepStatus"] == "Failed"]
