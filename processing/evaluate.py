"""Scores batch-transform predictions of the test split and writes ``evaluation.json``.

The transform job writes one ``<relative path>.out`` per test image holding the class
probabilities as a JSON list; ``test.lst`` holds the true class of each relative path.
``metrics.accuracy.value`` is what the pipeline's CheckAccuracy condition reads.
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
from processing.staging import CLASS_NAMES
from scones_common.logs import setup_logging

CONTAINER = "/opt/ml/processing"
log = logging.getLogger("evaluate")


class PredictionsMissingError(RuntimeError):
    """Test images without a prediction: the transform job did not score the whole split."""


def read_lst(path: Path) -> list[tuple[str, int]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            _, class_id, relative = line.split("\t")
            rows.append((relative, int(float(class_id))))
    return rows


def read_predictions(predictions_dir: Path, relatives: list[str]) -> np.ndarray:
    missing = [r for r in relatives if not (predictions_dir / f"{r}.out").exists()]
    if missing:
        raise PredictionsMissingError(f"{len(missing)} of {len(relatives)} test images have no prediction "
                                      f"in {predictions_dir}, e.g. {missing[0]}.out")
    return np.array([json.loads((predictions_dir / f"{r}.out").read_text()) for r in relatives], dtype=float)


def score(y_true: list[int] | np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, per-class precision/recall/F1, confusion matrix and ROC AUC for two classes."""
    y_true = np.asarray(y_true)
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(len(CLASS_NAMES)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    auc = roc_auc_score(y_true, probabilities[:, 1]) if len(set(y_true.tolist())) == 2 else None
    return {
        "metrics": {
            "accuracy": {"value": float(accuracy_score(y_true, y_pred))},
            "roc_auc": {"value": None if auc is None else float(auc)},
            "count": int(len(y_true)),
            "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                                 "f1": float(f1[i]), "support": int(support[i])}
                          for i, name in enumerate(CLASS_NAMES)},
            "confusion_matrix": {"labels": list(CLASS_NAMES),
                                 "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
        }
    }


def evaluate(predictions_dir: str | Path, lst_path: str | Path, output_dir: str | Path) -> dict:
    rows = read_lst(Path(lst_path))
    probabilities = read_predictions(Path(predictions_dir), [r for r, _ in rows])
    report = score([c for _, c in rows], probabilities)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions-dir", default=f"{CONTAINER}/input/predictions")
    parser.add_argument("--lst", default=f"{CONTAINER}/input/lst/test.lst")
    parser.add_argument("--output-dir", default=f"{CONTAINER}/evaluation")
    parser.add_argument("--images-dir", help="test images: also write the drift monitor's baseline.json")
    parser.add_argument("--confidence-threshold", type=float, default=0.93)
    args = parser.parse_args(argv)
    try:
        report = evaluate(args.predictions_dir, args.lst, args.output_dir)
        if args.images_dir:
            baseline_from_evaluation(args.output_dir, args.predictions_dir, args.lst, args.images_dir,
                                     args.confidence_threshold, report)
    except Exception as exc:   # one clear line for the job log
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    log.info("accuracy %.4f on %d test images", report["metrics"]["accuracy"]["value"], report["metrics"]["count"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
