"""The EventBridge events SageMaker sends about pipeline executions and their steps, from the executor's records.

On AWS, SageMaker puts "SageMaker Model Building Pipeline Execution Status Change" and "SageMaker
Model Building Pipeline Execution Step Status Change" events (source ``aws.sagemaker``) on the
account's default event bus at every status change; rules route them to SQS, SNS, Lambda…. The
documented shapes are recorded in ``tests/contracts/pipeline_execution_status_change.json`` and
``pipeline_step_status_change.json``. Here the builders turn an execution's record into those shapes
(step metadata as ListPipelineExecutionSteps reports it, with its keys in the events' lower camel
case; ``cacheHitResult`` for a cached step, ``failureReason`` for a failed one) and
:class:`PipelineEvents` publishes them, in order, from a thread of its own through
``local_runtime/event_targets.py`` (the rules' own patterns and targets), so no step waits for a
delivery, as on AWS.

Statuses: an execution is Executing, then Succeeded, Failed or Stopped (Stopping when asked to
stop); a step is Starting, Executing, then Succeeded (also when its result came from the cache),
Failed or Stopped. Steps a condition did not select never start and send nothing.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from local_runtime.aws_env import ACCOUNT_ID
from local_runtime.execution_records import ExecutionRecord, StepRecord

log = logging.getLogger("local_runtime.events")
SOURCE = "aws.sagemaker"
EXECUTION_DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Status Change"
STEP_DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Step Status Change"
STEP_STATUS = {"Executing": "Executing", "Succeeded": "Succeeded", "Cached": "Succeeded", "Failed": "Failed",
               "Stopped": "Stopped"}        # the executor's statuses as SageMaker's StepStatus; others send nothing
EXECUTION_STATUSES = ("Executing", "Stopping", "Stopped", "Failed", "Succeeded")


def iso_time(epoch: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if epoch is None else epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lower_camel(value):
    """``{"ProcessingJob": {"Arn": …}}`` (the API's metadata) as the events spell it: ``{"processingJob": {"arn": …}}``."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]) if isinstance(k, str) else k: lower_camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_camel(v) for v in value]
    return value


def pipeline_arn_of(execution_arn: str) -> str:
    return execution_arn.split("/execution/", 1)[0]


def _envelope(detail_type: str, region: str, resources: list[str], detail: dict, account: str = ACCOUNT_ID) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": SOURCE, "account": account,
            "time": iso_time(), "region": region, "resources": resources, "detail": detail}


def execution_event(record: ExecutionRecord, current: str, previous: str | None, region: str,
                    described: dict | None = None) -> dict:
    """The execution status change; ``described`` is DescribePipelineExecution's answer (display name, description)."""
    described = described or {}
    pipeline_arn = described.get("PipelineArn") or pipeline_arn_of(record.execution_arn)
    detail = {"pipelineExecutionDisplayName": described.get("PipelineExecutionDisplayName") or record.execution_id,
              "currentPipelineExecutionStatus": current}
    if previous:
        detail["previousPipelineExecutionStatus"] = previous
    detail["executionStartTime"] = iso_time(record.started)
    if current in ("Succeeded", "Failed", "Stopped"):
        detail["executionEndTime"] = iso_time(record.ended_at)
    if described.get("PipelineExecutionDescription"):
        detail["pipelineExecutionDescription"] = described["PipelineExecutionDescription"]
    detail["pipelineArn"] = pipeline_arn
    detail["pipelineExecutionArn"] = record.execution_arn
    return _envelope(EXECUTION_DETAIL_TYPE, region, [pipeline_arn, record.execution_arn], detail)


def step_event(record: ExecutionRecord, step: StepRecord, current: str, previous: str | None, region: str,
               pipeline_arn: str | None = None) -> dict:
    """One step's status change, with what ListPipelineExecutionSteps reports of it."""
    pipeline_arn = pipeline_arn or pipeline_arn_of(record.execution_arn)
    detail: dict = {}
    if step.metadata:
        detail["metadata"] = lower_camel(step.metadata)
    detail["stepStartTime"] = iso_time(step.started_at or record.started)
    if current in ("Succeeded", "Failed", "Stopped") and step.ended_at:
        detail["stepEndTime"] = iso_time(step.ended_at)
    detail.update({"stepName": step.name, "stepType": step.type})
    if previous:
        detail["previousStepStatus"] = previous
    detail["currentStepStatus"] = current
    if step.status == "Cached" and step.cache_source_arn:
        detail["cacheHitResult"] = {"sourcePipelineExecutionArn": step.cache_source_arn}
    if current == "Failed" and step.failure:
        detail["failureReason"] = step.failure[:1024]
    detail.update({"pipelineArn": pipeline_arn, "pipelineExecutionArn": record.execution_arn})
    return _envelope(STEP_DETAIL_TYPE, region, [pipeline_arn, record.execution_arn], detail)


class PipelineEvents:
    """Publishes the status changes of the executions the ExecutionService runs, in order, off the executor's thread.

    ``publish`` is ``event_targets.publish``-like: ``publish(clients, event)``. Each change is sent once: the last
    status sent per execution and per step is remembered, so progress reports of a running step send nothing.
    """

    def __init__(self, clients, publish: Callable[[object, dict], object] | None = None):
        if publish is None:
            from local_runtime.event_targets import publish
        self.clients, self._publish = clients, publish
        self._sent: dict[tuple[str, str | None], str] = {}
        self._described: dict[str, dict] = {}
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="pipeline-events", daemon=True)
        self._thread.start()

    def execution(self, record: ExecutionRecord) -> None:
        """Sends the execution's status if it changed since the last one sent."""
        current = record.status
        key = (record.execution_arn, None)
        previous = self._sent.get(key)
        if current not in EXECUTION_STATUSES or current == previous:
            return
        self._sent[key] = current
        snapshot = ExecutionRecord(record.execution_id, record.pipeline_name, {}, current, record.failure,
                                   record.started, record.seconds, [], record.execution_arn, record.ended_at)
        self._queue.put(lambda: execution_event(snapshot, current, previous, self.clients.region,
                                                self._describe(snapshot.execution_arn)))

    def step(self, record: ExecutionRecord, step: StepRecord) -> None:
        """Sends the step's status if it changed (a step's first Executing is preceded by Starting)."""
        current = STEP_STATUS.get(step.status)
        key = (record.execution_arn, step.name)
        previous = self._sent.get(key)
        if current is None or current == previous:
            return
        statuses = ["Starting", current] if previous is None and current == "Executing" else [current]
        self._sent[key] = current
        snapshot = StepRecord(step.name, step.type, step.status, step.seconds, step.failure, None, None,
                              step.started_at, step.ended_at, dict(step.metadata), step.cache_source_arn)
        for status in statuses:
            self._queue.put(lambda status=status, previous=previous: step_event(
                record, snapshot, status, previous, self.clients.region,
                self._describe(record.execution_arn).get("PipelineArn")))
            previous = status

    def forget(self, record: ExecutionRecord) -> None:
        """Before a retry: the execution goes from its current status (Failed) to Executing again, and its steps
        that did not succeed start again, so their statuses are sent anew."""
        self._sent.setdefault((record.execution_arn, None), record.status)
        for key in [k for k in self._sent if k[0] == record.execution_arn and k[1] is not None]:
            step = next((s for s in record.steps if s.name == key[1]), None)
            if step is None or step.status not in ("Succeeded", "Cached"):
                del self._sent[key]

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Blocks until every change queued so far was delivered (tests, and saving state)."""
        done = threading.Event()
        self._queue.put(done.set)
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.wait_idle(timeout)
        self._queue.put(None)

    def _describe(self, execution_arn: str) -> dict:
        if execution_arn not in self._described:
            try:
                self._described[execution_arn] = self.clients.client("sagemaker").describe_pipeline_execution(
                    PipelineExecutionArn=execution_arn)
            except Exception as exc:     # an execution run without the local SageMaker (tests): ARNs suffice
                log.debug("no DescribePipelineExecution for %s: %s", execution_arn, exc)
                self._described[execution_arn] = {}
        return self._described[execution_arn]

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                event = item()
                if isinstance(event, dict):
                    self._publish(self.clients, event)
            except Exception:       # like EventBridge, a failed delivery never stops the pipeline
                log.exception("a pipeline status event could not be delivered")
