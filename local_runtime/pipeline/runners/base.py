"""What every step runner receives, and the one error type a failing step raises."""
from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from local_runtime.aws_env import ACCOUNT_ID
from local_runtime.errors import LocalRuntimeError
from local_runtime.pipeline.runners.job_process import StopSignal
from local_runtime.pipeline.s3io import ApiObjects, JobObjects
from scones_common.contracts.container import OPT_ML

_CONTAINER_PATH = re.compile(re.escape(OPT_ML) + r"(/[^\s:]*)?")


class StepFailedError(LocalRuntimeError, RuntimeError):
    """A step failed; carries where its logs are."""

    def __init__(self, step: str, reason: str, log_path: Path | None = None):
        self.step, self.reason, self.log_path = step, reason, log_path
        where = f" (logs: {log_path})" if log_path else ""
        super().__init__(f"step {step} failed: {reason}{where}")


class JobStoppedError(LocalRuntimeError, RuntimeError):
    """The step's job ended because StopPipelineExecution stopped it: the step is Stopped, not Failed."""

    def __init__(self, step: str):
        self.step = step
        super().__init__(f"step {step} stopped by StopPipelineExecution")


@dataclass
class StepContext:
    step_name: str
    step_type: str
    pipeline_name: str
    execution_id: str
    work_dir: Path          # this step's job directory
    clients: "object"       # LocalAws-like: .client(service)
    spec: dict              # the step's definition (unresolved)
    report: Callable[[str], None] = lambda message: None   # progress while the job runs
    image_environment: dict[str, str] = field(default_factory=dict)   # the local algorithm image's environment
    objects: JobObjects | None = None     # moves job data (s3io.py); None: through the clients' S3 API
    stop: StopSignal = field(default_factory=StopSignal)    # set by StopPipelineExecution

    @functools.cached_property
    def job_objects(self) -> JobObjects:
        return self.objects or ApiObjects(self.clients.client("s3"))

    @functools.cached_property
    def job_name(self) -> str:
        """Unique, SageMaker-valid job name (≤ 63 chars); fixed once asked for, so every use names one job."""
        base = re.sub(r"[^a-zA-Z0-9-]", "-", f"{self.pipeline_name[:24]}-{self.step_name}")[:48]
        return f"{base}-{self.execution_id[:8]}-{int(time.time() * 1000) % 100000:05d}".lower()

    def raise_if_stopped(self) -> None:
        """After a job process failed: when StopPipelineExecution ended it, the step is Stopped."""
        if self.stop.is_set():
            raise JobStoppedError(self.step_name)

    def arn(self, kind: str) -> str:
        """The ARN SageMaker would give this step's job (``training-job``, ``processing-job``…)."""
        return f"arn:aws:sagemaker:{self.clients.region}:{ACCOUNT_ID}:{kind}/{self.job_name.lower()}"

    def container_path(self, path: str) -> Path:
        """Maps /opt/ml/... inside the 'container' to the job directory."""
        if not path.startswith(OPT_ML):
            raise StepFailedError(self.step_name, f"container path {path!r} is outside {OPT_ML}")
        return self.work_dir / path.lstrip("/")

    def map_container_paths(self, text: str) -> str:
        return _CONTAINER_PATH.sub(lambda m: str(self.work_dir / m.group(0).lstrip("/")), text)
