"""Scores batch-transform predictions of the test split and writes ``evaluation.json``.

The transform job writes one ``<relative path>.out`` per test image holding the class
probabilities (read by ``predictions.py``, which the drift baseline shares). ``test.lst``
holds the true class of each relative path.
``metrics.accuracy.value`` is what the pipeline's CheckAccuracy condition reads.
Besides accuracy, ROC AUC and per-class figures, the report says what the confidence threshold
does: coverage, precision of the confident with its 95 % lower confidence bound (one-sided
Clopper–Pearson, ``confident_precision.lower_bound``, and the ``confident`` images behind it), a
coverage/precision curve and calibration bins with ECE.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

from processing.baseline import baseline_from_evaluation
from processing.confidence import confidence_report
from processing.confidence_bounds import precision_bound
from processing.errors import ProcessingError
from processing.predictions import read_predictions
from scones_common.contracts.classes import CLASS_NAMES
from scones_common.contracts.container import (
    EVALUATION_OUTPUT,
    EVALUATION_REPORT,
    PREDICTIONS_INPUT,
    TEST_IMAGES_INPUT,
    TEST_LST,
)
from scones_common.contracts.staged_data import read_lst
from scones_common.directories import check_output_dir
from scones_common.errors import cli_entry

log = logging.getLogger("evaluate")
COMMAND = "scones-evaluate"


class ThresholdError(ProcessingError, ValueError):
    """The confidence threshold is not a number in [0, 1]."""


def score(y_true: list[int] | np.ndarray, probabilities: np.ndarray, confidence_threshold: float) -> dict:
    """Accuracy, per-class precision/recall/F1, confusion matrix, ROC AUC for two classes, and what the
    confidence threshold does (coverage, precision of the confident, curve, calibration)."""
    if not 0 <= confidence_threshold <= 1:
        raise ThresholdError(f"confidence threshold {confidence_threshold} is outside [0, 1]")
    y_true = np.asarray(y_true)
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(len(CLASS_NAMES)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    auc = roc_auc_score(y_true, probabilities[:, 1]) if len(set(y_true.tolist())) == 2 else None
    report = {
        "metrics": {
            "accuracy": {"value": float(accuracy_score(y_true, y_pred))},
            "roc_auc": {"value": None if auc is None else float(auc)},
            "count": int(len(y_true)),
            "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                                 "f1": float(f1[i]), "support": int(support[i])}
                          for i, name in enumerate(CLASS_NAMES)},
            "confusion_matrix": {"labels": list(CLASS_NAMES),
                                 "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
            **confidence_report(y_true, probabilities, confidence_threshold),
        }
    }
    report["metrics"]["confident_precision"].update(_precision_bound(y_true, probabilities, confidence_threshold))
    return report


def _precision_bound(y_true: np.ndarray, probabilities: np.ndarray, confidence_threshold: float) -> dict:
    """The 95 % lower confidence bound of the precision at the threshold and the confident images behind it
    (processing/confidence_bounds.py): information beside the point estimate, not a gate."""
    probabilities = np.asarray(probabilities, dtype=float)
    confident = probabilities.max(axis=1) >= confidence_threshold
    correct = int((probabilities.argmax(axis=1) == y_true)[confident].sum())
    return precision_bound(correct, int(confident.sum()))


def evaluate(predictions_dir: str | Path, lst_path: str | Path, output_dir: str | Path,
             confidence_threshold: float) -> dict:
    entries = read_lst(Path(lst_path))
    probabilities = read_predictions(Path(predictions_dir), [e.path for e in entries])
    report = {"written_by": COMMAND, **score([e.class_id for e in entries], probabilities, confidence_threshold)}
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / EVALUATION_REPORT).write_text(json.dumps(report, indent=2))
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions-dir", default=PREDICTIONS_INPUT)
    parser.add_argument("--lst", default=TEST_LST)
    parser.add_argument("--output-dir", default=EVALUATION_OUTPUT)
    parser.add_argument("--images-dir", default=TEST_IMAGES_INPUT,
                        help="the test images, profiled into the drift monitor's baseline.json; 'none' to skip")
    parser.add_argument("--confidence-threshold", type=float, required=True,
                        help="the inference workflow's threshold (config inference.confidence_threshold)")
    return parser.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # new, empty or an earlier evaluation (never ~, / or . nor a folder with someone's own evaluation.json)
    check_output_dir(args.output_dir, "--output-dir", COMMAND, EVALUATION_REPORT, "evaluation/")
    report = evaluate(args.predictions_dir, args.lst, args.output_dir, args.confidence_threshold)
    if args.images_dir != "none":
        baseline_from_evaluation(args.output_dir, args.predictions_dir, args.lst, args.images_dir,
                                 args.confidence_threshold, report)
    metrics = report["metrics"]
    precision = metrics["confident_precision"]
    log.info("accuracy %.4f on %d test images; %.1f %% at or above confidence %.2f, precision %s",
             metrics["accuracy"]["value"], metrics["count"], 100 * metrics["coverage"]["value"],
             args.confidence_threshold, "n/a" if precision["value"] is None else
             f"{precision['value']:.4f} (95 % lower bound {precision['lower_bound']:.4f}, "
             f"{precision['confident']} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
