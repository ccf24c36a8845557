import numpy as np

from local_runtime.cli import confidence_line
from processing.evaluate import score


def test_summary_line_shows_coverage_precision_and_ece():
    metrics = score([0, 1, 1, 0], np.array([[0.97, 0.03], [0.4, 0.6], [0.02, 0.98], [0.3, 0.7]]), 0.93)["metrics"]
    line = confidence_line(metrics)
    assert line.startswith("At confidence >= 0.93: coverage 50.0% (2 of 4), precision 1.0000 (95% lower bound 0.2236), "
                           "ECE ")     # 0.05 ** (1 / 2): two flawless images prove little


def test_summary_line_of_an_evaluation_from_before_the_bound():
    metrics = score([0, 1], np.array([[0.97, 0.03], [0.02, 0.98]]), 0.93)["metrics"]
    del metrics["confident_precision"]["lower_bound"]
    assert "precision 1.0000, ECE" in confidence_line(metrics)


def test_summary_line_when_nothing_is_confident():
    metrics = score([0, 1], np.array([[0.6, 0.4], [0.4, 0.6]]), 0.93)["metrics"]
    assert "coverage 0.0% (0 of 2), precision n/a" in confidence_line(metrics)
