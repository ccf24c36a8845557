"""``get-pipeline-definition`` (offline) and ``run-pipeline`` (upload, upsert, start, wait).

Argument parsing only: what the commands do lives in ``pipelines.scones.launch``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import boto3

from pipelines.scones.launch import failed_steps, git_commit, start_pipeline, wait_for_execution
from scones_common.cli_args import finite_number
from scones_common.config import APPROVAL_STATUSES, ENVIRONMENTS, SconesConfig, load_config
from scones_common.errors import cli_entry

log = logging.getLogger("pipelines")


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

    if args.output:
        _write_definition(pipeline_definition(config), args.output)
    else:
        print(json.dumps(json.loads(pipeline_definition(config)), indent=2))
    return 0


def _write_definition(definition: str, path: str) -> None:
    Path(path).write_text(json.dumps(json.loads(definition), indent=2))
    log.info("wrote %s", path)


@cli_entry
def run_pipeline(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload code, upsert and start the pipeline.")
    add_config_flags(parser)
    parser.add_argument("--wait", action="store_true", help="wait for the execution and fail if it fails")
    parser.add_argument("--poll-seconds", type=finite_number(0, 3600, low_open=True), default=30.0)
    parser.add_argument("--definition-output", metavar="FILE",
                        help="write the definition upserted (as SageMaker stores it) to this file")
    args = parser.parse_args(argv)
    config = config_from_args(args).require_cloud()
    session = boto3.Session(region_name=config.project.region)
    s3, sm = session.client("s3"), session.client("sagemaker")
    started = start_pipeline(s3, sm, config)     # the inputs first: nothing uploaded for a bad source
    execution_arn = started.execution_arn
    log.info("code at %s; started %s", started.code_prefix, execution_arn)
    if args.definition_output:       # what SageMaker stored, so the artifact is the definition that runs
        _write_definition(sm.describe_pipeline(PipelineName=config.pipeline.name)["PipelineDefinition"],
                          args.definition_output)
    print(json.dumps({"pipeline_execution_arn": execution_arn}))
    if not args.wait:
        return 0
    status = wait_for_execution(sm, execution_arn, args.poll_seconds)
    log.info("execution %s", status)
    if status != "Succeeded":
        for line in failed_steps(sm, execution_arn) or [f"(no failed step listed; execution {status})"]:
            log.error("failed step %s", line)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_pipeline())
