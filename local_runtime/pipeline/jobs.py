"""Makes the jobs a pipeline runs visible where SageMaker shows them.

On AWS a Training, Processing or Transform step creates a job that DescribeTrainingJob (…)
reports while it runs, and the job's container logs go to CloudWatch Logs under
``/aws/sagemaker/<Kind>Jobs``, stream ``<job-name>/algo-1-<epoch>``. :class:`SageMakerJobs`
does the same for the local executor: the job's state lives in the local SageMaker (through the
:class:`JobStates` callbacks that ``local_runtime/stack.py`` fills with ``moto_ext.sagemaker_jobs``'s
functions: the executor and the moto patches are siblings, neither imports the other) and its log
file is shipped to the local CloudWatch Logs as it grows.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from botocore.exceptions import ClientError

from local_runtime.periodic import PeriodicThread

JOB_KINDS = {"Training": "TrainingJob", "Processing": "ProcessingJob", "Transform": "TransformJob"}
LOG_GROUPS = {kind: f"/aws/sagemaker/{JOB_KINDS[kind]}s" for kind in JOB_KINDS}
SHIP_SECONDS = 0.2      # lines are stamped when shipped: often enough to tell a job's lines apart in time


class JobTracker(Protocol):
    def started(self, ctx, arguments: dict) -> dict | None: ...
    def succeeded(self, ctx, properties: dict) -> None: ...
    def failed(self, ctx, reason: str) -> None: ...
    def stopped(self, ctx) -> None: ...


class NoJobTracker:
    """For an executor run outside a local stack (unit tests): jobs leave no trace in the control plane."""

    def started(self, ctx, arguments: dict) -> dict | None:
        return None

    def succeeded(self, ctx, properties: dict) -> None:
        pass

    def failed(self, ctx, reason: str) -> None:
        pass

    def stopped(self, ctx) -> None:
        pass


@dataclass(frozen=True)
class JobStates:
    """Where the control plane records a job's state, as three callables wired in by ``local_runtime/stack.py``.

    ``started(region, kind, name, arn, arguments)`` records it InProgress and returns its ARN;
    ``finished(region, kind, name, properties)``, ``failed(region, kind, name, reason)`` and
    ``stopped(region, kind, name)`` end it. ``kind`` is the step type: Training, Processing or Transform.
    """

    started: Callable[[str, str, str, str, dict], str]
    finished: Callable[[str, str, str, dict], None]
    failed: Callable[[str, str, str, str], None]
    stopped: Callable[[str, str, str], None]


class LogShipper(PeriodicThread):
    """Tails a job's log file into one CloudWatch Logs stream until closed."""

    def __init__(self, logs, group: str, stream: str, path: Path):
        super().__init__(SHIP_SECONDS)
        self.name = f"logs-{stream}"
        self.logs, self.group, self.stream, self.path = logs, group, stream, path
        self._offset = 0
        for create in (lambda: logs.create_log_group(logGroupName=group),
                       lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream)):
            try:
                create()
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
        self.start()

    def _ship(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete = chunk[:chunk.rfind(b"\n") + 1] if not self.stopping else chunk
        if not complete:
            return
        self._offset += len(complete)
        now = int(time.time() * 1000)
        lines = [line for line in complete.decode(errors="replace").splitlines() if line.strip()]
        for start in range(0, len(lines), 5000):
            self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream,
                                     logEvents=[{"timestamp": now, "message": line} for line in lines[start:start + 5000]])

    tick = final = _ship
    close = PeriodicThread.stop


class SageMakerJobs:
    """The local stack's tracker: jobs in the local SageMaker, logs in the local CloudWatch Logs."""

    def __init__(self, clients, states: JobStates):
        self.clients, self.states = clients, states
        self._shippers: dict[str, LogShipper] = {}

    def started(self, ctx, arguments: dict) -> dict | None:
        kind = JOB_KINDS.get(ctx.step_type)
        if not kind:
            return None
        arn = self.states.started(self.clients.region, ctx.step_type, ctx.job_name,
                                  ctx.arn(kind_slug(ctx.step_type)), arguments)
        stream = f"{ctx.job_name}/algo-1-{int(time.time())}"
        self._shippers[ctx.job_name] = LogShipper(self.clients.client("logs"), LOG_GROUPS[ctx.step_type], stream,
                                                  ctx.work_dir / "job.log")
        return {kind: {"Arn": arn}}

    def _close_logs(self, ctx) -> None:
        shipper = self._shippers.pop(ctx.job_name, None)
        if shipper:
            shipper.close()

    def succeeded(self, ctx, properties: dict) -> None:
        if ctx.step_type in JOB_KINDS:
            self._close_logs(ctx)
            self.states.finished(self.clients.region, ctx.step_type, ctx.job_name, properties)

    def failed(self, ctx, reason: str) -> None:
        if ctx.step_type in JOB_KINDS:
            self._close_logs(ctx)
            self.states.failed(self.clients.region, ctx.step_type, ctx.job_name, reason)

    def stopped(self, ctx) -> None:
        if ctx.step_type in JOB_KINDS:
            self._close_logs(ctx)
            self.states.stopped(self.clients.region, ctx.step_type, ctx.job_name)


def kind_slug(step_type: str) -> str:
    return {"Training": "training-job", "Processing": "processing-job", "Transform": "transform-job"}[step_type]
