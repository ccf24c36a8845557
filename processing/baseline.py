"""The drift monitor's baseline, written at evaluation time next to ``evaluation.json``.

The test split's predictions (class mix, confidence, low-confidence share) and images
(brightness, colour histograms) summarised with the monitor's own profile code
(``inference_workflow/drift_monitor/drift.py``, shipped in the processing code bundle), so the
baseline and the live window are binned and computed identically.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from inference_workflow.drift_monitor.drift import Profile
from inference_workflow.drift_monitor.png import decode_rgb
from processing.errors import ProcessingError

BASELINE_FILE = "baseline.json"


class BaselineImagesMissingError(ProcessingError, FileNotFoundError):
    """A test image named in test.lst is not in the images directory."""


def build_profile(probabilities: Sequence[Sequence[float]], image_paths: Sequence[Path], class_names: Sequence[str],
                  threshold: float) -> Profile:
    profile = Profile(tuple(class_names), threshold)
    for row in probabilities:
        profile.add_prediction([float(p) for p in row])
    for path in image_paths:
        if not path.exists():
            raise BaselineImagesMissingError(f"test image {path} is missing; the baseline needs every test image")
        profile.add_image(decode_rgb(path.read_bytes()))     # as the monitor decodes captures: one treatment of alpha
    return profile


def write_baseline(output_dir: str | Path, probabilities: Sequence[Sequence[float]], images_dir: str | Path,
                   relatives: Sequence[str], class_names: Sequence[str], threshold: float) -> Path:
    """Writes ``baseline.json`` into ``output_dir`` and returns its path."""
    profile = build_profile(probabilities, [Path(images_dir) / r for r in relatives], class_names, threshold)
    target = Path(output_dir) / BASELINE_FILE
    target.write_text(json.dumps(profile.to_dict(), indent=1))
    return target


def baseline_from_evaluation(output_dir: str | Path, predictions_dir: str | Path, lst_path: str | Path,
                             images_dir: str | Path, threshold: float, report: dict) -> Path:
    """What EvaluateModel calls after scoring: the same predictions and test list, plus the test images."""
    from processing.predictions import read_predictions
    from scones_common.contracts.staged_data import read_lst

    relatives = [entry.path for entry in read_lst(Path(lst_path))]
    probabilities = read_predictions(Path(predictions_dir), relatives)
    class_names = list(report["metrics"]["per_class"])
    return write_baseline(output_dir, probabilities.tolist(), images_dir, relatives, class_names, threshold)
