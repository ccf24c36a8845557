"""``get-pipeline-definition`` (offline) and ``run-pipeline`` (upload, upsert, start, wait)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3

from scones_common.config import APPROVAL_STATUSES, ENVIRONMENTS, SconesConfig, load_config
from scones_common.errors import cli_entry
from scones_common.names import raw_data_uri

log = logging.getLogger("pipelines")
TERMINAL = ("Succeeded", "Failed", "Stopped")


def git_commit() -> str:
    """The checkout's commit; CodeBuild sources may come without .git but name it in the environment."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("CODEBUILD_RESOLVED_SOURCE_VERSION", "unknown")[:12]


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="pipeline YAML (default configs/pipeline.yaml)")
    parser.add_argument("--environment", choices=ENVIRONMENTS)
    parser.add_argument("--region")
    parser.add_argument("--bucket")
    parser.add_argument("--role-arn")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--accuracy-threshold", type=float)
    parser.add_argument("--approval-status", choices=APPROVAL_STATUSES)
    parser.add_argument("--data-source", help="'cifar-100', s3:// URI, file:// URL or archive path")
    parser.add_argument("--no-cache", action="store_true", help="disable step caching")


def config_from_args(args: argparse.Namespace) -> SconesConfig:
    return load_config(args.config, args.environment, overrides={
        "project.region": args.region, "storage.bucket": args.bucket, "pipeline.role_arn": args.role_arn,
        "training.hyperparameters.epochs": args.epochs, "training.hyperparameters.learning_rate": args.learning_rate,
        "evaluation.accuracy_threshold": args.accuracy_threshold, "registry.approval_status": args.approval_status,
        "data.source": args.data_source, "pipeline.cache_enabled": False if args.no_cache else None,
        "project.git_commit": git_commit(),
    })


@cli_entry
def get_pipeline_definition(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the pipeline definition JSON (no AWS access needed).")
    add_config_flags(parser)
    parser.add_argument("--output", help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    from pipelines.scones.pipeline import pipeline_definition

    definition = json.dumps(json.loads(pipeline_definition(config)), indent=2)
    if args.output:
        Path(args.output).write_text(definition)
        log.info("wrote %s", args.output)
    else:
        print(definition)
    return 0


def mirror_source_archive(s3, config: SconesConfig, target_uri: str):
    """Processing jobs read only S3: copy the configured source archive there, keyed by its SHA-256.

    ``target_uri`` is the name-based location (``raw_data_uri``); the archive lands under
    ``…/raw/sha256-<hex>/<name>``, and the returned :class:`~processing.cifar_source.MirroredArchive`
    carries that URI (the ``InputDataUri`` to run with) and the provenance label (``DataSource``).
    """
    from processing.cifar_source import mirror_archive

    return mirror_archive(s3, config.data.source, config.data.cache_dir, target_uri)


def wait_for_execution(sm, execution_arn: str, poll_seconds: float = 30.0, timeout_seconds: float = 4 * 3600) -> str:
    deadline = time.monotonic() + timeout_seconds
    while True:
        status = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)["PipelineExecutionStatus"]
        if status in TERMINAL or time.monotonic() > deadline:
            return status
        time.sleep(poll_seconds)


def failed_steps(sm, execution_arn: str) -> list[str]:
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=execution_arn)["PipelineExecutionSteps"]
    return [f"{s['StepName']}: {s.get('FailureReason', s['StepStatus'])}" for s in steps if s["StepStatus"] == "Failed"]


@cli_entry
def run_pipeline(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload code, upsert and start the pipeline.")
    add_config_flags(parser)
    parser.add_argument("--wait", action="store_true", help="wait for the execution and fail if it fails")
    parser.add_argument("--poll-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    config = config_from_args(args).require_cloud()
    from pipelines.scones.code_bundle import upload_code
    from pipelines.scones.pipeline import get_pipeline

    session = boto3.Session(region_name=config.project.region)
    s3, sm = session.client("s3"), session.client("sagemaker")
    source = mirror_source_archive(s3, config, raw_data_uri(config))     # the inputs first: nothing uploaded for a bad source
    code_prefix = upload_code(s3, config.s3_root)
    pipeline = get_pipeline(config)
    tags = [{"Key": "project", "Value": config.project.name}, {"Key": "environment", "Value": config.environment},
            {"Key": "git_commit", "Value": config.project.git_commit}]
    pipeline.upsert(role_arn=config.pipeline.role_arn, description="Scones Unlimited vehicle classifier", tags=tags)
    response = sm.start_pipeline_execution(
        PipelineName=config.pipeline.name, PipelineExecutionDisplayName=f"run-{config.project.git_commit}",
        PipelineParameters=[{"Name": "InputDataUri", "Value": source.uri},
                            {"Name": "DataSource", "Value": source.provenance}])
    execution_arn = response["PipelineExecutionArn"]
    log.info("code at %s; started %s", code_prefix, execution_arn)
    print(json.dumps({"pipeline_execution_arn": execution_arn}))
    if not args.wait:
        return 0
    status = wait_for_execution(sm, execution_arn, args.poll_seconds)
    log.info("execution %s", status)
    if status != "Succeeded":
        for line in failed_steps(sm, execution_arn):
            log.error("failed step %s", line)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_pipeline())
