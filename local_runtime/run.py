"""The main job: the whole system on one laptop.

stage → train → batch-evaluate → condition → register → deploy (all from the pipeline
definition) → N inference-workflow executions on test images → summary + report.
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from local_runtime import provision as provisioning
from local_runtime import state
from local_runtime.pipeline.executor import ExecutionRecord, PipelineExecutor, StepRecord
from local_runtime.stack import local_stack, wait_while_updating
from pipelines.deploy.deployer import live_package_arn
from scones_common.config import SconesConfig
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("local_runtime")


@dataclass
class RunSummary:
    execution: dict
    accuracy: float | None = None
    evaluation: dict | None = None
    model_package_arn: str | None = None
    endpoint: str | None = None
    endpoint_answers: bool = False
    workflow: list[dict] = field(default_factory=list)
    capture_records: int = 0
    report: str | None = None
    seconds: dict = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.execution["status"] == "Succeeded"


def _progress(stream=sys.stderr):
    def show(step: StepRecord) -> None:
        if step.status == "Executing" and step.progress:
            stream.write(f"      {step.progress}\n")
        elif step.status == "Executing":
            stream.write(f"  ▶ {step.name:<24} {step.type} …\n")
        elif step.status in ("Succeeded", "Cached", "Failed"):
            mark = {"Succeeded": "✓", "Cached": "↺", "Failed": "✗"}[step.status]
            stream.write(f"  {mark} {step.name:<24} {step.status.lower()} in {step.seconds:.1f}s"
                         f"{'' if step.status != 'Failed' else ': ' + str(step.failure)}\n")
        stream.flush()
    return show


def _pipeline_parameters(config: SconesConfig, data_uri: str) -> dict:
    hp = config.training.hyperparameters
    return {"InputDataUri": data_uri, "DataSource": config.data.source, "GitCommit": config.project.git_commit,
            "Epochs": hp.epochs, "LearningRate": hp.learning_rate, "MiniBatchSize": hp.mini_batch_size,
            "AccuracyThreshold": config.evaluation.accuracy_threshold,
            "ModelApprovalStatus": config.registry.approval_status,
            "ValidationFraction": config.data.validation_fraction}


def _read_json(s3, uri: str) -> dict:
    location = parse_s3_uri(uri)
    return json.loads(s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read())


def run_local(config: SconesConfig, run_dir: Path, executions: int = 10, fresh: bool = False,
              concurrency: int = 4) -> RunSummary:
    from inference_workflow.capture_report import draw_report, read_capture
    from inference_workflow.test_cases import generate_test_cases, run_executions
    from pipelines.scones.cli import mirror_source_archive
    from pipelines.scones.code_bundle import upload_code
    from pipelines.scones.pipeline import get_pipeline, raw_data_uri

    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    with local_stack(config, run_dir) as stack:
        aws, server, resources = stack.aws, stack.server, stack.resources
        s3 = aws.client("s3")
        restored = state.restore(aws, config.storage.bucket, run_dir / "state")
        upload_code(s3, config.s3_root)
        data_uri = raw_data_uri(config)
        mirror_source_archive(s3, config, data_uri)
        timings["setup"] = time.perf_counter() - clock
        log.info("local AWS at %s, endpoint runtime at %s%s", aws.url, server.url, " (state restored)" if restored else "")

        clock = time.perf_counter()
        pipeline = get_pipeline(config)
        definition = pipeline.definition()
        (run_dir / "pipeline-definition.json").write_text(json.dumps(json.loads(definition), indent=2))
        pipeline.upsert(role_arn=config.pipeline.role_arn)
        timings["definition"] = time.perf_counter() - clock

        clock = time.perf_counter()
        sys.stderr.write(f"pipeline {config.pipeline.name} ({len(json.loads(definition)['Steps'])} top-level steps)\n")
        executor = PipelineExecutor(definition, aws, run_dir, on_step=_progress())
        record: ExecutionRecord = executor.start(config.pipeline.name, _pipeline_parameters(config, data_uri))
        timings["pipeline"] = time.perf_counter() - clock
        summary = RunSummary(execution=asdict(record), seconds=timings)
        if record.status != "Succeeded":
            state.save(aws, config.storage.bucket, run_dir / "state")
            _write_summary(run_dir, summary)
            return summary

        sm = aws.client("sagemaker")
        evaluation_uri = _evaluation_uri(executor, record)
        summary.evaluation = _read_json(s3, evaluation_uri)
        summary.accuracy = summary.evaluation["metrics"]["accuracy"]["value"]
        register = executor_properties(executor, "RegisterModel")
        summary.model_package_arn = register.get("ModelPackageArn") if register else None
        wait_while_updating(sm, config.endpoint.name, timeout=60 + 2 * config.deployment.wait_seconds)
        live = live_package_arn(sm, config.endpoint.name)
        if live:
            status = sm.describe_endpoint(EndpointName=config.endpoint.name)["EndpointStatus"]
            summary.endpoint = f"{config.endpoint.name} ({status}), serving package v{live.rsplit('/', 1)[1]}"

        if summary.endpoint:
            clock = time.perf_counter()
            staged_test = f"{config.s3_root}/staged/test/"
            location = parse_s3_uri(staged_test)
            events = generate_test_cases(s3, location.bucket, location.key, executions)
            results = run_executions(aws.client("stepfunctions"), resources.state_machine_arn, events, concurrency)
            summary.workflow = [asdict(r) for r in results]
            summary.endpoint_answers = any(r.status == "SUCCEEDED" or "ThresholdConfidence" in r.error for r in results)
            timings["workflow"] = time.perf_counter() - clock
            server.capture.flush()
            clock = time.perf_counter()
            records = read_capture(s3, f"{provisioning.capture_uri(config)}/{config.endpoint.name}/")
            summary.capture_records = len(records)
            if records:
                summary.report = str(draw_report(records, config.inference.confidence_threshold, run_dir / "report"))
            timings["report"] = time.perf_counter() - clock
        state.save(aws, config.storage.bucket, run_dir / "state")
    _write_summary(run_dir, summary)
    return summary


def _write_summary(run_dir: Path, summary: RunSummary) -> None:
    (run_dir / "summary.json").write_text(json.dumps(asdict(summary), indent=2, default=str))


def executor_properties(executor: PipelineExecutor, step: str) -> dict | None:
    return executor.last_properties.get(step)


def _evaluation_uri(executor: PipelineExecutor, record: ExecutionRecord) -> str:
    outputs = executor.last_properties["EvaluateModel"]["ProcessingOutputConfig"]["Outputs"]
    return next(o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == "evaluation").rstrip("/") + "/evaluation.json"
