"""What the pipeline executor and the local SageMaker's pipeline-execution actions share.

``moto_ext/pipeline_executions.py`` answers StartPipelineExecution, Describe/List/Stop/Retry from
the records of whichever :class:`ExecutionHandler` ``local_runtime/stack.py`` attached to it (the
executor's ``pipeline/service.py``); it never imports the executor, and the executor never imports
the moto patches. What crosses that seam is defined here, below both, importing neither: the
records, the handler's interface, and the two refusals the handler raises and the actions translate
into SageMaker errors.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from local_runtime.errors import LocalRuntimeError


class ParameterError(LocalRuntimeError, ValueError):
    """A start parameter is not declared by the pipeline, or has the wrong type."""


class ExecutionConflictError(LocalRuntimeError, RuntimeError):
    """Stop or retry asked of an execution in a status that does not allow it."""


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "NotStarted"      # Executing, Succeeded, Failed, Skipped, Cached, Stopped
    seconds: float = 0.0
    failure: str | None = None
    log_path: str | None = None
    progress: str | None = None     # the job's latest progress line while Executing
    started_at: float | None = None     # epoch seconds
    ended_at: float | None = None
    metadata: dict = field(default_factory=dict)    # botocore's PipelineExecutionStepMetadata
    cache_source_arn: str | None = None             # the execution whose result a Cached step reused
    attempts: int = 0


@dataclass
class ExecutionRecord:
    execution_id: str
    pipeline_name: str
    parameters: dict
    status: str = "Executing"       # Executing, Stopping, Stopped, Failed, Succeeded
    failure: str | None = None
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    steps: list[StepRecord] = field(default_factory=list)
    execution_arn: str = ""
    ended_at: float | None = None
    properties: dict[str, dict] = field(default_factory=dict)          # step -> its properties
    property_files: dict[str, dict] = field(default_factory=dict)      # step -> file name -> parsed JSON

    def step(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)

    @classmethod
    def from_dict(cls, data: dict) -> "ExecutionRecord":
        steps = [StepRecord(**step) for step in data.get("steps", [])]
        return cls(**{**data, "steps": steps})


class ExecutionHandler(Protocol):
    """What runs the executions the local SageMaker is asked to start (the executor's ExecutionService)."""

    def submit(self, execution_arn: str, pipeline_name: str, definition: str,
               parameters: dict[str, str]) -> ExecutionRecord:
        """Binds the parameters (:class:`ParameterError` refuses the start) and queues the run."""

    def record(self, execution_arn: str) -> ExecutionRecord | None: ...

    def stop(self, execution_arn: str) -> None:
        """:class:`ExecutionConflictError` unless the execution is Executing."""

    def retry(self, execution_arn: str, definition: str) -> None:
        """:class:`ExecutionConflictError` unless the execution Failed."""

    def restore(self, records: list[ExecutionRecord]) -> None: ...
