"""Reads the batch-transform predictions of the test split, for the evaluation and the drift baseline.

The transform job writes one ``<relative path>.out`` per test image holding the class
probabilities: the built-in algorithm documents ``{"prediction": [p0, p1]}`` as JSON or one
JSON Lines record; a bare list ``[p0, p1]`` (what its endpoint answers) is read too.
``evaluate.py`` scores them and ``baseline.py`` profiles them; kept here, below both, so that
neither imports the other.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from processing.errors import ProcessingError
from scones_common.contracts.classes import CLASS_NAMES

SUM_TOLERANCE = 1e-3      # softmax output in float32, printed with a few digits, sums to 1 within this


class PredictionsMissingError(ProcessingError):
    """Test images without a prediction: the transform job did not score the whole split."""


class PredictionFormatError(ProcessingError, ValueError):
    """A ``.out`` file is not one prediction in a known shape."""


def parse_prediction(text: str, name: str) -> list[float]:
    """Class probabilities from one ``.out``: ``[p…]`` or ``{"prediction": [p…]}``, as JSON or one JSON line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        records = [line for line in text.splitlines() if line.strip()]
        why = f"holds {len(records)} JSON Lines records" if len(records) > 1 else f"is not JSON ({exc})"
        raise PredictionFormatError(f"{name} {why}; the algorithm writes one prediction per image") from None
    if isinstance(value, dict):
        value = value.get("prediction")
    if not isinstance(value, list) or not value or not all(
            isinstance(p, (int, float)) and not isinstance(p, bool) for p in value):
        raise PredictionFormatError(f"{name} holds {text.strip()[:80]!r}; expected [p0, p1, ...] or "
                                    '{"prediction": [p0, p1, ...]}')
    return [float(p) for p in value]


class NotProbabilitiesError(PredictionFormatError):
    """A prediction is not a probability vector over the classes: finite, each in [0, 1], summing to 1, one per class."""


def check_probabilities(row: list[float], name: str, classes: int = len(CLASS_NAMES)) -> list[float]:
    """``row`` if it is a probability vector over ``classes`` classes, else :class:`NotProbabilitiesError`."""
    why = None
    if len(row) != classes:
        why = f"has {len(row)} value{'s' if len(row) != 1 else ''}; the model has {classes} classes ({', '.join(CLASS_NAMES)})"
    elif not all(math.isfinite(p) for p in row):
        why = "holds a value that is not a finite number"
    elif not all(0.0 <= p <= 1.0 for p in row):
        why = "holds a value outside [0, 1]"
    elif abs(sum(row) - 1.0) > SUM_TOLERANCE:
        why = f"sums to {sum(row):.6g}, not 1 (within {SUM_TOLERANCE})"
    if why:
        raise NotProbabilitiesError(f"{name} = {row!r:.80} {why}: it is not a probability vector, so nothing can be "
                                    "scored from it (is the model's output a softmax over the classes?)")
    return row


def read_predictions(predictions_dir: Path, relatives: list[str]) -> np.ndarray:
    missing = [r for r in relatives if not (predictions_dir / f"{r}.out").exists()]
    if missing:
        raise PredictionsMissingError(f"{len(missing)} of {len(relatives)} test images have no prediction "
                                      f"in {predictions_dir}, e.g. {missing[0]}.out")
    rows = [check_probabilities(parse_prediction((predictions_dir / f"{r}.out").read_text(), f"{r}.out"), f"{r}.out")
            for r in relatives]
    if len({len(row) for row in rows}) != 1:
        raise PredictionFormatError(f"predictions in {predictions_dir} have different numbers of classes")
    return np.array(rows, dtype=float)
