"""What the confidence threshold does to a model's predictions: coverage, precision, calibration.

An inference at or above the threshold routes a driver without a human; coverage is the share of
images that reach it and precision is the accuracy among those. Pure functions of the true
classes and the predicted probabilities, so any model the pipeline evaluates gets them.
"""
from __future__ import annotations

import numpy as np

CURVE_THRESHOLDS = tuple(round(0.5 + 0.01 * i, 2) for i in range(50)) + (0.995, 0.999)
RELIABILITY_BINS = 10


def _confidence_and_hits(y_true, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=float)
    return probabilities.max(axis=1), probabilities.argmax(axis=1) == np.asarray(y_true)


def coverage_at(y_true, probabilities: np.ndarray, threshold: float) -> dict:
    """Share of images with max probability ≥ threshold and the accuracy among them (None if none)."""
    confidence, hits = _confidence_and_hits(y_true, probabilities)
    confident = confidence >= threshold
    return {"threshold": float(threshold), "coverage": float(confident.mean()) if len(hits) else 0.0,
            "precision": float(hits[confident].mean()) if confident.any() else None,
            "confident": int(confident.sum())}


def coverage_curve(y_true, probabilities: np.ndarray, thresholds=CURVE_THRESHOLDS) -> dict:
    """Coverage and precision at each threshold of a grid (how far the threshold is from a cliff)."""
    points = [coverage_at(y_true, probabilities, t) for t in thresholds]
    return {"thresholds": [p["threshold"] for p in points], "coverage": [p["coverage"] for p in points],
            "precision": [p["precision"] for p in points]}


def coverage_at_precision(y_true, probabilities: np.ndarray, precision: float) -> float:
    """The largest share of images, taken most confident first, whose accuracy is at least ``precision``.

    What a perfectly placed threshold would cover: a figure of how well the model ranks its
    images, apart from how well its probabilities are calibrated. Ties in confidence count
    together (one threshold cannot split them).
    """
    confidence, hits = _confidence_and_hits(y_true, probabilities)
    if not len(hits):
        return 0.0
    order = np.argsort(-confidence, kind="stable")
    confidence, hits = confidence[order], hits[order]
    running = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    ends = np.r_[confidence[1:] != confidence[:-1], True]     # where a threshold can fall
    reachable = np.flatnonzero(ends & (running >= precision))
    return float((reachable[-1] + 1) / len(hits)) if len(reachable) else 0.0


def reliability(y_true, probabilities: np.ndarray, bins: int = RELIABILITY_BINS) -> dict:
    """Equal-width bins of max probability from 1/classes to 1: mean confidence vs accuracy, and the ECE.

    ECE (expected calibration error) is the count-weighted mean |accuracy − confidence| over bins.
    """
    confidence, hits = _confidence_and_hits(y_true, probabilities)
    lowest = 1.0 / np.asarray(probabilities).shape[1]
    edges = np.linspace(lowest, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        row = {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count,
               "confidence": float(confidence[inside].mean()) if count else None,
               "accuracy": float(hits[inside].mean()) if count else None}
        if count:
            ece += count / len(hits) * abs(row["accuracy"] - row["confidence"])
        rows.append(row)
    return {"bins": rows, "ece": float(ece)}


def confidence_report(y_true, probabilities: np.ndarray, threshold: float) -> dict:
    """The fields evaluation.json carries about the threshold (see processing/evaluate.py)."""
    at = coverage_at(y_true, probabilities, threshold)
    return {"confidence_threshold": {"value": at["threshold"]},
            "coverage": {"value": at["coverage"], "confident": at["confident"]},
            "confident_precision": {"value": at["precision"]},
            "coverage_curve": coverage_curve(y_true, probabilities),
            "calibration": reliability(y_true, probabilities)}
