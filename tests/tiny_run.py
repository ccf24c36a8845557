"""The tiny training configuration of the end-to-end tests, and the session's one full pipeline run.

Every e2e test that needs a trained model starts from the same run directory (a copy of it, when it
changes state), so the suite trains once; a test that must train again uses ``TINY`` too.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.builders import make_cifar_archive

TINY_EPOCHS = 3


def tiny_archive(path: Path) -> Path:
    """A small real CIFAR-format archive (30 train / 10 test images a class, plus other classes)."""
    return make_cifar_archive(path, per_class_train=30, per_class_test=10)


def tiny_overrides(archive: Path, cache_dir: Path, **more) -> dict:
    """Config overrides for a short local run on ``archive``: few epochs, a low gate, a short canary."""
    return {"data.source": str(archive), "data.cache_dir": str(cache_dir),
            "training.hyperparameters.epochs": TINY_EPOCHS, "evaluation.accuracy_threshold": 0.6,
            "deployment.wait_seconds": 2, **more}


@dataclass(frozen=True)
class MainJob:
    """The session's main-job run: its directory (never changed after the run), archive and summary."""
    run_dir: Path
    archive: Path
    overrides: dict
    summary: object        # local_runtime.run.RunSummary

    def copy_to(self, target: Path) -> Path:
        """A private copy of the run directory, for tests that change its state."""
        shutil.copytree(self.run_dir, target, symlinks=True)
        (target / ".scones-run.lock").unlink(missing_ok=True)
        return target


def run_main_job(root: Path) -> MainJob:
    from local_runtime.run import run_local
    from local_runtime.settings import load_local_config

    archive = tiny_archive(root / "cifar-100-python.tar.gz")
    overrides = tiny_overrides(archive, root / "cache")
    summary = run_local(load_local_config(environ={}, overrides=overrides), root / "run", executions=6, concurrency=2)
    return MainJob(root / "run", archive, overrides, summary)
