"""Runs the pipeline executions StartPipelineExecution asks for, one at a time, in the background.

The local SageMaker's StartPipelineExecution returns at once, as on AWS, and hands the stored
definition and parameters here; a worker thread of the serving process runs them in order of
arrival (the machine has two cores: executions queue rather than compete). The records are the
executor's own, read by DescribePipelineExecution and ListPipelineExecutionSteps. Every status change of
an execution and of its steps is sent to the default event bus as SageMaker sends it (``events.py``).
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

from local_runtime.execution_records import ExecutionConflictError, ExecutionRecord
from local_runtime.pipeline.events import PipelineEvents
from local_runtime.pipeline.executor import PipelineExecutor
from local_runtime.pipeline.jobs import JobStates, SageMakerJobs
from local_runtime.pipeline.runners.job_process import StopSignal
from local_runtime.pipeline.s3io import JobObjects

log = logging.getLogger("local_runtime.pipeline")
INTERRUPTED = "the local stack stopped while this execution was running"


@dataclass
class _Queued:
    record: ExecutionRecord
    definition: str


class ExecutionService:
    """The :class:`~local_runtime.execution_records.ExecutionHandler` that ``local_runtime/stack.py`` attaches to
    the local SageMaker. ``job_states`` is where the jobs the steps run are recorded (the stack passes the moto
    patches' ``sagemaker_jobs`` functions), so this package never imports the patches."""

    def __init__(self, clients, run_dir: Path, image_environment: dict[str, str] | None = None,
                 persist=None, *, job_states: JobStates, events: PipelineEvents | None = None,
                 objects: JobObjects | None = None):
        self.clients, self.run_dir, self.objects = clients, Path(run_dir), objects
        self.events = events or PipelineEvents(clients)    # status changes to the default bus, as SageMaker sends them
        self.image_environment, self.persist = image_environment, persist
        self.records: dict[str, ExecutionRecord] = {}
        self._stops: dict[str, StopSignal] = {}
        self._queue: queue.Queue[_Queued | None] = queue.Queue()
        self._lock = threading.Lock()
        self._jobs = SageMakerJobs(clients, job_states)
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._work, name="pipeline-executions", daemon=True)
        self._thread.start()

    def submit(self, execution_arn: str, pipeline_name: str, definition: str, parameters: dict[str, str]) -> ExecutionRecord:
        """Binds the parameters now (a ParameterError rejects the start, as AWS validates them) and queues the run."""
        record = self._executor(definition).prepare(pipeline_name, parameters, execution_arn)
        with self._lock:
            self.records[execution_arn] = record
            self._idle.clear()
            self._queue.put(_Queued(record, definition))
        return record

    def record(self, execution_arn: str) -> ExecutionRecord | None:
        return self.records.get(execution_arn)

    def stop(self, execution_arn: str) -> None:
        record = self.records[execution_arn]
        if record.status != "Executing":
            raise ExecutionConflictError(f"execution {execution_arn} is {record.status}; only an Executing "
                                         "execution can be stopped")
        record.status = "Stopping"
        self._stops.setdefault(execution_arn, StopSignal()).set()
        self.events.execution(record)

    def retry(self, execution_arn: str, definition: str) -> None:
        record = self.records[execution_arn]
        if record.status != "Failed":
            raise ExecutionConflictError(f"execution {execution_arn} is {record.status}; only a Failed "
                                         "execution can be retried")
        with self._lock:
            self.events.forget(record)
            record.status, record.failure = "Executing", None
            self._idle.clear()
            self._queue.put(_Queued(record, definition))

    def restore(self, records: list[ExecutionRecord]) -> None:
        """Executions saved by an earlier stack; one that was still running cannot finish: it is Failed."""
        for record in records:
            if record.status in ("Executing", "Stopping"):
                record.status, record.failure = "Failed", INTERRUPTED
                for step in record.steps:
                    if step.status == "Executing":
                        step.status, step.failure = "Failed", INTERRUPTED
            self.records[record.execution_arn] = record

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self.events.close()

    def _executor(self, definition: str, record: ExecutionRecord | None = None) -> PipelineExecutor:
        on_step = (lambda step: self.events.step(record, step)) if record is not None else None
        return PipelineExecutor(definition, self.clients, self.run_dir, jobs=self._jobs, on_step=on_step,
                                image_environment=self.image_environment, persist=self.persist, objects=self.objects)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            record = item.record
            arn = record.execution_arn
            try:
                stop = self._stops.setdefault(arn, StopSignal())
                if stop.is_set():
                    record.status = "Stopped"
                else:
                    self.events.execution(record)
                    self._executor(item.definition, record).run(record, stop)
            except Exception as exc:   # the worker outlives any one execution
                log.exception("execution %s crashed", arn)
                record.status, record.failure = "Failed", f"{type(exc).__name__}: {exc}"
            finally:
                self._stops.pop(arn, None)
                self.events.execution(record)
                with self._lock:
                    if self._queue.empty():
                        self._idle.set()
