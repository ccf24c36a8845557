"""The main job: the whole system on one laptop.

stage → train → batch-evaluate → condition → register → deploy (all from the pipeline
definition) → N inference-workflow executions on test images → summary + report.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from inference_workflow.deploy_model.lambda_function import live_package_arn
from local_runtime import state
from local_runtime.pipeline.executor import ExecutionRecord, save_record
from local_runtime.run_dir import check_run_dir, clear_run_dir, hold_run_dir
from local_runtime.stack import LocalStack, local_stack, wait_until_settled
from scones_common.atomic import write_atomic
from scones_common.config import SconesConfig
from scones_common.names import capture_uri, drift_reports_uri
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("local_runtime")
EVALUATION_STEP, EVALUATION_FILE = "EvaluateModel", "EvaluationReport"
REGISTER_STEP = "RegisterModel"


@dataclass(frozen=True)
class EndpointState:
    name: str
    status: str
    package_version: int

    def __str__(self) -> str:
        return f"{self.name} ({self.status}), serving package v{self.package_version}"


@dataclass
class RunSummary:
    """What a local run produced, typed; written once as summary.json."""
    execution: ExecutionRecord
    evaluation: dict | None = None
    model_package_arn: str | None = None
    already_registered: str | None = None     # the package that already holds this run's model artifact
    endpoint: EndpointState | None = None
    endpoint_answers: bool = False
    workflow: list = field(default_factory=list)          # inference_workflow WorkflowResult
    capture_records: int = 0
    drift: dict | None = None          # the drift monitor's answer on this run's captured traffic
    report: str | None = None
    seconds: dict = field(default_factory=dict)
    data_source: str = ""
    review: dict | None = None          # review rate, agreement, median time to answer (ReviewMetrics as a dict)

    @property
    def waiting_for_review(self) -> int:
        """Workflow executions of this run left waiting for a person (answered later, once serve is up)."""
        return sum(getattr(r, "waiting_for_review", False) for r in self.workflow)

    @property
    def succeeded(self) -> bool:
        return self.execution.status == "Succeeded"

    @property
    def accuracy(self) -> float | None:
        return self.evaluation["metrics"]["accuracy"]["value"] if self.evaluation else None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "accuracy": self.accuracy}, indent=2, default=str)


def endpoint_state(sm, endpoint_name: str) -> EndpointState | None:
    live = live_package_arn(sm, endpoint_name)
    if not live:
        return None
    status = sm.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"]
    return EndpointState(endpoint_name, status, int(live.rsplit("/", 1)[1]))


def run_local(config: SconesConfig, run_dir: Path, executions: int = 10, fresh: bool = False,
              concurrency: int = 4) -> RunSummary:
    """The main job on ``run_dir``, held exclusively for the duration.

    ``fresh`` clears the directory only once it is known to be a run directory and the data
    source was found, read in full and staged without writing (a corrupt archive leaves the earlier
    runs as they were); Ctrl-C stops the run with the finished steps kept for a rerun.
    """
    from processing.cifar_source import resolve_archive
    from processing.prepare_data import read_splits
    from scones_common.s3uri import is_s3_uri

    run_dir = check_run_dir(run_dir)
    if fresh:     # forget the earlier runs only once this one can start: its archive reads and stages (dry)
        read_splits(resolve_archive(config.data.source, config.data.cache_dir), config.data.validation_fraction,
                    config.data.seed)
    elif not is_s3_uri(config.data.source):     # a missing path or URL is named before the stack starts (~8 s)
        resolve_archive(config.data.source, config.data.cache_dir)
    with hold_run_dir(run_dir, "scones-local run"):
        if fresh:
            clear_run_dir(run_dir)
        saved = state.read_saved(run_dir / "state")       # a damaged state is named before the stack starts
        try:
            return _run(config, run_dir, executions, concurrency, saved)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"the run stopped; finished steps are kept in {run_dir}, so running the same "
                                    "command again continues from them") from None


def _run(config: SconesConfig, run_dir: Path, executions: int, concurrency: int,
         saved: state.SavedState) -> RunSummary:
    from pipelines.scones.launch import start_pipeline, wait_for_execution

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    with local_stack(config, run_dir) as stack:
        aws, server = stack.aws, stack.server
        s3, sm = aws.client("s3"), aws.client("sagemaker")
        restored = state.restore(aws, config.storage.bucket, run_dir / "state", saved)
        timings["setup"] = time.perf_counter() - clock
        log.info("local AWS at %s, endpoint runtime at %s%s", aws.url, server.url, " (state restored)" if restored else "")

        clock = time.perf_counter()
        started = start_pipeline(s3, sm, config)
        definition = sm.describe_pipeline(PipelineName=config.pipeline.name)["PipelineDefinition"]
        write_atomic(run_dir / "pipeline-definition.json", json.dumps(json.loads(definition), indent=2), durable=False)
        timings["start"] = time.perf_counter() - clock

        clock = time.perf_counter()
        from local_runtime.watch import ExecutionWatcher

        log.info("pipeline %s: execution %s", config.pipeline.name, started.execution_arn)
        watcher = ExecutionWatcher(aws, started.execution_arn).start()
        try:
            wait_for_execution(sm, started.execution_arn, poll_seconds=0.5)
        except KeyboardInterrupt:
            _record_interrupted(stack, started.execution_arn, run_dir)
            raise
        finally:
            watcher.close()
        timings["pipeline"] = time.perf_counter() - clock
        record = stack.executions.record(started.execution_arn)
        summary = RunSummary(execution=record, seconds=timings, data_source=config.data.source)
        if record.status == "Succeeded":
            _after_pipeline(stack, summary, run_dir, executions, concurrency)
        state.save(aws, config.storage.bucket, run_dir / "state")
    write_atomic(run_dir / "summary.json", summary.to_json())
    return summary


def _record_interrupted(stack: LocalStack, execution_arn: str, run_dir: Path) -> None:
    """Ctrl-C ends the process and its worker thread with it: the execution's record says so on disk, and
    so does the saved state (ListPipelineExecutions shows it Stopped after a restart)."""
    record = stack.executions.record(execution_arn)
    record.status, record.failure = "Stopped", "interrupted"
    record.ended_at = record.ended_at or time.time()
    save_record(run_dir, record)
    state.commit("sagemaker.pipeline-executions")


def _run_drift_monitor(stack: LocalStack) -> dict | None:
    """One run of the drift monitor Lambda on the traffic just captured, as its schedule would start it."""
    response = stack.client("lambda").invoke(FunctionName=stack.resources.monitor_function_arn, Payload=b"{}")
    answer = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        log.warning("drift monitor failed: %s: %s", answer.get("errorType"), answer.get("errorMessage"))
        return None
    return answer


def _review_metrics(stack: LocalStack):
    """The review figures over the executions this stack ran and every review record so far."""
    from inference_workflow.review import ReviewStore, read_records, review_metrics

    store, s3 = ReviewStore.of(stack.config), stack.client("s3")
    pages = stack.client("stepfunctions").get_paginator("list_executions").paginate(
        stateMachineArn=stack.resources.state_machine_arn)
    executions = sum(len(page["executions"]) for page in pages)
    return review_metrics(read_records(s3, store.labels_uri), read_records(s3, store.pending_uri), executions)


def _output_uri(record: ExecutionRecord, step: str, output: str) -> str:
    """Where a processing step of this execution wrote an output (per execution; cached: an earlier one's)."""
    outputs = record.properties[step]["ProcessingOutputConfig"]["Outputs"]
    return next(o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == output).rstrip("/")


def _after_pipeline(stack: LocalStack, summary: RunSummary, run_dir: Path, executions: int, concurrency: int) -> None:
    """Reads the results off the execution record, then runs the inference workflow on test images."""
    from inference_workflow.capture_report import draw_report, read_capture, read_drift_reports
    from inference_workflow.executions import generate_test_cases, run_executions

    config, record, timings = stack.config, summary.execution, summary.seconds
    summary.evaluation = record.property_files[EVALUATION_STEP][EVALUATION_FILE]
    summary.model_package_arn = record.properties.get(REGISTER_STEP, {}).get("ModelPackageArn")
    found = record.properties.get("FindRegisteredModel", {})
    outputs = {o["Name"]: o["Value"] for o in found.get("OutputParameters", [])}
    if outputs.get("registered") == "true":
        summary.already_registered = outputs["model_package_arn"]
    sm = stack.client("sagemaker")
    settled = wait_until_settled(sm, config.endpoint.name, timeout=60 + 5 * config.endpoint.local_transition_seconds
                                 + 2 * config.deployment.wait_seconds)
    summary.endpoint = endpoint_state(sm, config.endpoint.name) if settled else None
    if not summary.endpoint or summary.endpoint.status != "InService":
        return
    s3 = stack.client("s3")
    clock = time.perf_counter()
    location = parse_s3_uri(f"{_output_uri(record, 'PrepareData', 'staged')}/test/")
    events = generate_test_cases(s3, location.bucket, location.key, executions)
    results = run_executions(stack.client("stepfunctions"), stack.resources.state_machine_arn, events, concurrency)
    summary.workflow = results
    summary.endpoint_answers = any(r.status == "SUCCEEDED" or r.waiting_for_review for r in results)
    timings["workflow"] = time.perf_counter() - clock
    stack.server.capture.flush()
    clock = time.perf_counter()
    records = read_capture(s3, f"{capture_uri(config)}/{config.endpoint.name}/")
    summary.capture_records = len(records)
    summary.drift = _run_drift_monitor(stack)
    metrics = _review_metrics(stack)
    summary.review = asdict(metrics) | {"review_rate": metrics.review_rate}
    if records:
        drift = read_drift_reports(s3, f"{drift_reports_uri(config)}/{config.endpoint.name}/")
        summary.report = str(draw_report(records, config.inference.confidence_threshold, run_dir / "report",
                                         evaluation=summary.evaluation, drift=drift,
                                         psi_threshold=config.monitor.psi_threshold, review=metrics))
    timings["report"] = time.perf_counter() - clock
