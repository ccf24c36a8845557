"""Pipeline executions that really execute, for moto's SageMaker.

moto's StartPipelineExecution records an execution that is ``Succeeded`` at once (nothing
runs), and it has no ListPipelineExecutionSteps, StopPipelineExecution or
RetryPipelineExecution. Here StartPipelineExecution stores the execution as moto does, marks it
``Executing`` and hands the pipeline's stored definition and the request's parameters to the
attached :class:`~local_runtime.execution_records.ExecutionHandler` (``local_runtime/stack.py``
attaches the executor's ExecutionService; this module never imports the executor), which runs it
in the background; the describe/list/stop/retry actions answer from the handler's records, in
botocore's output shapes. Without a handler attached (moto used on its own) a start is refused,
rather than pretending to have run. The canary test in
tests/local_runtime/moto_ext/test_pipeline_executions.py fails loudly if a moto upgrade reshapes
what is used here or implements these actions itself.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from local_runtime.aws_env import ACCOUNT_ID
from local_runtime.execution_records import (
    ExecutionConflictError,
    ExecutionHandler,
    ExecutionRecord,
    ParameterError,
)

_SERVICE: list[ExecutionHandler | None] = [None]
STEP_STATUS = {"Executing": "Executing", "Succeeded": "Succeeded", "Cached": "Succeeded", "Failed": "Failed",
               "Stopped": "Stopped"}
ACTIONS = ("start_pipeline_execution", "describe_pipeline_execution", "list_pipeline_executions",
           "list_pipeline_execution_steps", "stop_pipeline_execution", "retry_pipeline_execution")


def attach(service: ExecutionHandler) -> None:
    """Where started executions go from now on: the seam ``local_runtime/stack.py`` wires."""
    _SERVICE[0] = service


def detach(service: ExecutionHandler) -> None:
    if _SERVICE[0] is service:
        _SERVICE[0] = None


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def _aware(moment: datetime) -> datetime:
    """moto stamps executions with naive UTC times, restored ones are aware: all are made aware (UTC), so that
    they compare and sort together."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


STEP_FAILURE = "Step failure: One or multiple steps failed."     # SageMaker's FailureReason of a failed execution


def _execution_failure(record) -> str | None:
    """The execution's FailureReason as SageMaker words it: a step's own reason is in ListPipelineExecutionSteps."""
    if record.status == "Failed" and any(step.status == "Failed" for step in record.steps):
        return STEP_FAILURE
    return record.failure


def experiment_config(definition: str | None, pipeline_name: str, execution_arn: str) -> dict:
    """PipelineExperimentConfig as SageMaker resolves the definition's (the SDK's default names the experiment
    after the pipeline, lower-cased, and the trial after the execution id)."""
    import json

    try:
        config = json.loads(definition or "{}").get("PipelineExperimentConfig")
    except (ValueError, AttributeError):
        config = None
    if not isinstance(config, dict):
        return {}
    values = {"Execution.PipelineName": pipeline_name.lower(),
              "Execution.PipelineExecutionId": execution_arn.rsplit("/", 1)[-1]}
    resolved = {}
    for key in ("ExperimentName", "TrialName"):
        value = config.get(key)
        if isinstance(value, dict):
            value = values.get(value.get("Get"))
        if isinstance(value, str):
            resolved[key] = value
    return resolved


def _backend(region: str):
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT_ID][region]


def _execution(backend, arn: str):
    from moto.sagemaker.exceptions import ResourceNotFound

    name = arn.split(":pipeline/", 1)[-1].split("/execution/", 1)[0]
    pipeline = backend.pipelines.get(name)
    execution = pipeline.pipeline_executions.get(arn) if pipeline else None
    if execution is None:
        raise ResourceNotFound(f"Pipeline execution '{arn}' does not exist.")
    return pipeline, execution


def _record(arn: str):
    service = _SERVICE[0]
    return service.record(arn) if service else None


def step_entries(record) -> list[dict]:
    """ListPipelineExecutionSteps entries: steps that started, newest first (AWS's default order)."""
    entries = []
    for step in record.steps:
        if step.status not in STEP_STATUS or step.started_at is None and step.status != "Cached":
            continue
        entry: dict[str, Any] = {"StepName": step.name, "StepStatus": STEP_STATUS[step.status],
                                 "StartTime": _time(step.started_at or record.started),
                                 "Metadata": step.metadata, "AttemptCount": max(1, step.attempts)}
        if step.ended_at and step.status != "Executing":
            entry["EndTime"] = _time(step.ended_at)
        if step.status == "Cached" and step.cache_source_arn:
            entry["CacheHitResult"] = {"SourcePipelineExecutionArn": step.cache_source_arn}
        if step.failure:
            entry["FailureReason"] = step.failure[:1024]
        entries.append(entry)
    return sorted(entries, key=lambda e: e["StartTime"], reverse=True)


def _page(items: list, max_results: int | None, token: str | None) -> tuple[list, str | None]:
    start = int(token or 0)
    end = start + (max_results or 50)
    return items[start:end], (str(end) if end < len(items) else None)


def _same_request(backend, pipeline_name: str, token: str | None) -> str | None:
    """The execution an earlier StartPipelineExecution with this ClientRequestToken started, if any."""
    pipeline = backend.pipelines.get(pipeline_name.rsplit("/", 1)[-1]) if token and pipeline_name else None
    for arn, execution in list(pipeline.pipeline_executions.items()) if pipeline else []:
        if getattr(execution, "client_request_token", None) == token:
            return arn
    return None


def _start(self) -> Any:
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError

    service = _SERVICE[0]
    if service is None:
        raise ValidationError("no local pipeline executor is attached to this SageMaker (start scones-local serve)")
    backend = self.sagemaker_backend
    name = self._get_param("PipelineName")
    earlier = _same_request(backend, name, self._get_param("ClientRequestToken"))
    if earlier:       # SageMaker's idempotency: a repeated ClientRequestToken answers the execution it started
        return ActionResult({"PipelineExecutionArn": earlier})
    response = backend.start_pipeline_execution(
        name, self._get_param("PipelineExecutionDisplayName"), self._get_param("PipelineParameters"),
        self._get_param("PipelineExecutionDescription"), self._get_param("ParallelismConfiguration"),
        self._get_param("ClientRequestToken"))
    arn = response["PipelineExecutionArn"]
    pipeline, execution = _execution(backend, arn)
    execution.pipeline_execution_status = "Executing"
    execution.creation_time = execution.start_time = execution.last_modified_time = _aware(execution.start_time)
    parameters = {p["Name"]: p["Value"] for p in self._get_param("PipelineParameters") or []}
    try:
        service.submit(arn, name, pipeline.pipeline_definition, parameters)
    except ParameterError as exc:
        del pipeline.pipeline_executions[arn]
        raise ValidationError(str(exc)) from None
    return ActionResult(response)


def _sync(execution, record) -> None:
    if record and execution.pipeline_execution_status != record.status:
        execution.pipeline_execution_status = record.status
        execution.pipeline_execution_failure_reason = _execution_failure(record)
        execution.last_modified_time = _time(record.ended_at) or datetime.now(UTC)


def _describe(self) -> Any:
    from moto.core.responses import ActionResult

    arn = self._get_param("PipelineExecutionArn")
    pipeline, execution = _execution(self.sagemaker_backend, arn)
    _sync(execution, _record(arn))
    response = self.sagemaker_backend.describe_pipeline_execution(arn)
    response["PipelineExperimentConfig"] = experiment_config(execution.pipeline_definition_for_execution,
                                                             pipeline.pipeline_name, arn)
    if not response["PipelineExperimentConfig"]:
        del response["PipelineExperimentConfig"]
    if execution.pipeline_execution_failure_reason:
        response["FailureReason"] = execution.pipeline_execution_failure_reason[:1300]
    else:
        response.pop("FailureReason", None)
    return ActionResult(response)


def _list_executions(self) -> Any:
    from moto.core.responses import ActionResult

    from local_runtime.moto_ext.sagemaker_fidelity import get_pipeline_from_name

    pipeline = get_pipeline_from_name(self.sagemaker_backend.pipelines, self._get_param("PipelineName"))
    summaries = []
    for arn, execution in pipeline.pipeline_executions.items():
        _sync(execution, _record(arn))
        summary = {"PipelineExecutionArn": arn, "StartTime": _aware(execution.start_time),
                   "PipelineExecutionStatus": execution.pipeline_execution_status,
                   "PipelineExecutionDisplayName": execution.pipeline_execution_display_name}
        if execution.pipeline_execution_description:
            summary["PipelineExecutionDescription"] = execution.pipeline_execution_description
        if execution.pipeline_execution_failure_reason:
            summary["PipelineExecutionFailureReason"] = execution.pipeline_execution_failure_reason[:1300]
        summaries.append(summary)
    after, before = self._get_param("CreatedAfter"), self._get_param("CreatedBefore")
    summaries = [s for s in summaries if (not after or s["StartTime"].timestamp() > float(after))
                 and (not before or s["StartTime"].timestamp() < float(before))]
    summaries.sort(key=lambda s: s["StartTime"], reverse=self._get_param("SortOrder", "Descending") == "Descending")
    page, token = _page(summaries, self._get_param("MaxResults"), self._get_param("NextToken"))
    return ActionResult({"PipelineExecutionSummaries": page, **({"NextToken": token} if token else {})})


def _list_steps(self) -> Any:
    from moto.core.responses import ActionResult

    arn = self._get_param("PipelineExecutionArn")
    _execution(self.sagemaker_backend, arn)
    record = _record(arn)
    entries = step_entries(record) if record else []
    if self._get_param("SortOrder") == "Ascending":
        entries.reverse()
    page, token = _page(entries, self._get_param("MaxResults"), self._get_param("NextToken"))
    return ActionResult({"PipelineExecutionSteps": page, **({"NextToken": token} if token else {})})


def _conflict(action):
    from moto.sagemaker.exceptions import ConflictException

    try:
        action()
    except ExecutionConflictError as exc:
        raise ConflictException(str(exc)) from None


def _control(self, verb: str, act) -> Any:
    """StopPipelineExecution / RetryPipelineExecution: ``act(service, arn, execution)`` on an execution this
    process runs; any other is in a state the action does not apply to (ConflictException, as SageMaker)."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ConflictException

    arn = self._get_param("PipelineExecutionArn")
    _, execution = _execution(self.sagemaker_backend, arn)
    service = _SERVICE[0]
    if service is None or service.record(arn) is None:
        raise ConflictException(f"execution {arn} is {execution.pipeline_execution_status}; it cannot be {verb}")
    _conflict(lambda: act(service, arn, execution))
    _sync(execution, service.record(arn))
    return ActionResult({"PipelineExecutionArn": arn})


def _stop(self) -> Any:
    return _control(self, "stopped", lambda service, arn, _: service.stop(arn))


def _retry(self) -> Any:
    return _control(self, "retried",
                    lambda service, arn, execution: service.retry(arn, execution.pipeline_definition_for_execution))


def version(region: str) -> tuple:
    """What changes whenever an execution's saved document would: cheap to compare, so polling reads
    (DescribePipelineExecution every half second) cost no document when nothing moved."""
    out = []
    for pipeline in list(_backend(region).pipelines.values()):
        for arn, execution in list(pipeline.pipeline_executions.items()):
            record = _record(arn)
            steps = tuple((step.status, step.attempts, step.ended_at, step.failure) for step in record.steps) \
                if record else ()
            out.append((arn, execution.pipeline_execution_status, execution.pipeline_execution_failure_reason,
                        record.status if record else None, record.failure if record else None,
                        record.ended_at if record else None, len(record.properties) if record else 0, steps))
    return tuple(out)


def snapshot(region: str) -> list[dict]:
    """Every execution moto holds, with the executor's record when there is one."""
    from dataclasses import asdict

    out = []
    for pipeline in list(_backend(region).pipelines.values()):
        for arn, execution in list(pipeline.pipeline_executions.items()):
            record = _record(arn)
            _sync(execution, record)
            out.append({"PipelineName": pipeline.pipeline_name, "PipelineExecutionArn": arn,
                        "DisplayName": execution.pipeline_execution_display_name,
                        "Description": execution.pipeline_execution_description,
                        "Parameters": execution.pipeline_parameters,
                        "ClientRequestToken": getattr(execution, "client_request_token", None),
                        "Definition": execution.pipeline_definition_for_execution,
                        "Status": execution.pipeline_execution_status,
                        "FailureReason": execution.pipeline_execution_failure_reason,
                        "StartTime": _aware(execution.start_time).timestamp(),
                        "LastModifiedTime": _aware(execution.last_modified_time).timestamp(),
                        "Record": asdict(record) if record else None})
    return out


def restore(region: str, executions: list[dict]) -> int:
    """Puts saved executions back under their (already restored) pipelines; returns how many."""
    from moto.sagemaker.models import FakePipelineExecution

    backend = _backend(region)
    records = []
    for saved in executions:
        pipeline = backend.pipelines.get(saved["PipelineName"])
        if pipeline is None:
            continue
        execution = FakePipelineExecution(saved["PipelineExecutionArn"], saved["DisplayName"], saved["Parameters"],
                                          saved["Description"], None, saved["Definition"],
                                          saved.get("ClientRequestToken"))
        execution.pipeline_execution_status = saved["Status"]
        execution.pipeline_execution_failure_reason = saved["FailureReason"]
        execution.creation_time = execution.start_time = _time(saved["StartTime"])
        execution.last_modified_time = _time(saved["LastModifiedTime"])
        pipeline.pipeline_executions[saved["PipelineExecutionArn"]] = execution
        if saved.get("Record"):
            records.append(ExecutionRecord.from_dict(saved["Record"]))
    if _SERVICE[0] is not None:
        _SERVICE[0].restore(records)
        for record in records:
            _sync(backend.pipelines[record.pipeline_name].pipeline_executions[record.execution_arn], record)
    return len(executions)


def install() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    replacements = dict(zip(ACTIONS, (_start, _describe, _list_executions, _list_steps, _stop, _retry)))
    for action, replacement in replacements.items():
        if getattr(SageMakerResponse, action, None) is not replacement:
            setattr(SageMakerResponse, action, replacement)
