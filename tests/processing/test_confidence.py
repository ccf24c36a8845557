import numpy as np
import pytest

from processing.confidence import (
    CURVE_THRESHOLDS,
    confidence_report,
    coverage_at,
    coverage_at_precision,
    coverage_curve,
    reliability,
)

Y = [0, 0, 1, 1, 1]
P = np.array([[0.97, 0.03], [0.60, 0.40], [0.05, 0.95], [0.96, 0.04], [0.30, 0.70]])   # 4th is a confident error


def test_coverage_and_precision_at_threshold():
    at = coverage_at(Y, P, 0.93)
    assert at == {"threshold": 0.93, "coverage": 0.6, "precision": pytest.approx(2 / 3), "confident": 3}


def test_threshold_is_inclusive_and_nothing_confident_has_no_precision():
    assert coverage_at(Y, P, 0.97)["confident"] == 1
    assert coverage_at(Y, P, 0.99) == {"threshold": 0.99, "coverage": 0.0, "precision": None, "confident": 0}


def test_coverage_at_precision_takes_the_most_confident_first():
    # confidence order: 0.97 hit, 0.96 miss, 0.95 hit, 0.70 hit, 0.60 hit: precision 1, 1/2, 2/3, 3/4, 4/5
    assert coverage_at_precision(Y, P, 0.98) == 0.2
    assert coverage_at_precision(Y, P, 0.85) == 0.2 and coverage_at_precision(Y, P, 0.8) == 1.0
    assert coverage_at_precision(Y[1:], P[1:], 0.98) == 0.0            # the most confident is wrong
    assert coverage_at_precision([], np.zeros((0, 2)), 0.98) == 0.0


def test_coverage_at_precision_does_not_split_tied_confidences():
    tied = np.array([[0.99, 0.01], [0.99, 0.01], [0.8, 0.2]])
    assert coverage_at_precision([0, 1, 0], tied, 0.98) == 0.0          # one threshold takes both 0.99s or neither
    assert coverage_at_precision([0, 0, 1], tied, 0.98) == pytest.approx(2 / 3)


def test_curve_is_monotone_in_coverage():
    curve = coverage_curve(Y, P)
    assert curve["thresholds"] == list(CURVE_THRESHOLDS)
    assert curve["coverage"][0] == 1.0 and curve["precision"][0] == 0.8
    assert all(a >= b for a, b in zip(curve["coverage"], curve["coverage"][1:]))
    assert curve["precision"][-1] is None


def test_reliability_bins_and_ece():
    result = reliability(Y, P, bins=5)              # edges 0.5, 0.6, 0.7, 0.8, 0.9, 1.0
    counts = [b["count"] for b in result["bins"]]
    assert counts == [0, 1, 1, 0, 3] and sum(counts) == len(Y)
    top = result["bins"][4]
    assert top["confidence"] == pytest.approx((0.97 + 0.95 + 0.96) / 3) and top["accuracy"] == pytest.approx(2 / 3)
    expected = (1 * abs(1 - 0.60) + 1 * abs(1 - 0.70) + 3 * abs(2 / 3 - top["confidence"])) / 5
    assert result["ece"] == pytest.approx(expected)
    assert result["bins"][0]["accuracy"] is None


def test_perfectly_calibrated_predictions_have_zero_ece():
    y = [0] * 8 + [1] * 2                               # confidence 0.8, right 8 times in 10
    probabilities = np.array([[0.8, 0.2]] * 10)
    assert reliability(y, probabilities)["ece"] == pytest.approx(0.0)


def test_report_fields():
    report = confidence_report(Y, P, 0.93)
    assert report["confidence_threshold"] == {"value": 0.93}
    assert report["coverage"] == {"value": 0.6, "confident": 3}
    assert report["confident_precision"]["value"] == pytest.approx(2 / 3)
    assert set(report["calibration"]) == {"bins", "ece"}
