"""Paths inside the SageMaker job containers.

Processing: the pipeline definition mounts S3 at these paths and passes them to the scripts,
whose defaults are the same paths. Training: the SageMaker training-container contract under
``/opt/ml`` (:class:`TrainingContainer`), which the local runner lays out for the local trainer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scones_common.contracts.staged_data import lst_name

OPT_ML = "/opt/ml"
PROCESSING = f"{OPT_ML}/processing"
CODE_LIB = f"{PROCESSING}/input/lib"                    # the code bundle, on PYTHONPATH

STAGING_INPUT = f"{PROCESSING}/input/data"              # PrepareData: the source archive
STAGING_OUTPUT = f"{PROCESSING}/output"                 # PrepareData: splits, .lst files, staging report
HUMAN_LABELS_INPUT = f"{PROCESSING}/input/human-labels"  # PrepareData: the human-label set (manifest + images)

PREDICTIONS_INPUT = f"{PROCESSING}/input/predictions"   # EvaluateModel: the batch transform's output
TEST_LST_INPUT = f"{PROCESSING}/input/lst"              # EvaluateModel: the folder of the test split's .lst
TEST_LST = f"{TEST_LST_INPUT}/{lst_name('test')}"
TEST_IMAGES_INPUT = f"{PROCESSING}/input/images"        # EvaluateModel: the test images, for the drift baseline
EVALUATION_OUTPUT = f"{PROCESSING}/evaluation"          # EvaluateModel: the evaluation report
EVALUATION_REPORT = "evaluation.json"


@dataclass(frozen=True)
class TrainingContainer:
    """The training job's view of ``root`` (``/opt/ml`` on SageMaker, a job folder locally)."""

    root: Path

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def failure(self) -> Path:
        """One line saying why the job failed; SageMaker shows it as the job's FailureReason."""
        return self.root / "output" / "failure"

    @property
    def metrics(self) -> Path:
        """The local trainer's final metrics (the built-in algorithm reports them in its log)."""
        return self.root / "output" / "metrics.json"
