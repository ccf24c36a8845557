"""What every step runner receives, and the one error type a failing step raises."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from local_runtime.aws import ACCOUNT_ID

CONTAINER_ROOT = "/opt/ml"


class StepFailedError(RuntimeError):
    """A step failed; carries where its logs are."""

    def __init__(self, step: str, reason: str, log_path: Path | None = None):
        self.step, self.reason, self.log_path = step, reason, log_path
        where = f" (logs: {log_path})" if log_path else ""
        super().__init__(f"step {step} failed: {reason}{where}")


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

    @cached_property
    def job_name(self) -> str:
        """Unique, SageMaker-valid job name (≤ 63 chars); fixed once asked for, so every use names one job."""
        base = re.sub(r"[^a-zA-Z0-9-]", "-", f"{self.pipeline_name[:24]}-{self.step_name}")[:48]
        return f"{base}-{self.execution_id[:8]}-{int(time.time() * 1000) % 100000:05d}".lower()

    def arn(self, kind: str) -> str:
        """The ARN SageMaker would give this step's job (``training-job``, ``processing-job``…)."""
        return f"arn:aws:sagemaker:{self.clients.region}:{ACCOUNT_ID}:{kind}/{self.job_name.lower()}"

    def container_path(self, path: str) -> Path:
        """Maps /opt/ml/... inside the 'container' to the job directory."""
        if not path.startswith(CONTAINER_ROOT):
            raise StepFailedError(self.step_name, f"container path {path!r} is outside {CONTAINER_ROOT}")
        return self.work_dir / path.lstrip("/")

    def map_container_paths(self, text: str) -> str:
        return re.sub(r"/opt/ml(/[^\s:]*)?", lambda m: str(self.work_dir / m.group(0).lstrip("/")), text)
