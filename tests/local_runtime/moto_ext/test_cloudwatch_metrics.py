"""Extended statistics and metric math as CloudWatch computes them; canary for moto_ext/cloudwatch_metrics.py."""
import datetime
import inspect

import pytest

from local_runtime.moto_ext import cloudwatch_metrics as cw

VALUES = [float(v) for v in range(1, 101)]


def test_moto_still_computes_only_the_basic_statistics():
    from moto.cloudwatch import models

    source = inspect.getsource(models.Statistics.get_statistics_for_type.__dict__.get(
        "__wrapped__", models.Statistics.get_statistics_for_type))
    assert 'if stat == "SampleCount":' in source and "p99" not in source
    assert "parse_expression" in inspect.getsource(models.CloudWatchBackend.get_metric_data.__dict__.get(
        "__wrapped__", models.CloudWatchBackend.get_metric_data))


@pytest.mark.parametrize("stat, expected", [
    ("p99", 99.0), ("p50", 50.0), ("p100", 100.0), ("p99.9", 100.0), ("tm90", 45.5), ("TM(10%:90%)", 50.5),
    ("IQM", 50.5), ("tc90", 90.0), ("ts10", 55.0), ("wm90", None), ("PR(:50)", 50.0), ("TM(:10)", 5.5)])
def test_extended_statistics(stat, expected):
    value = cw.extended_statistic(stat, VALUES)
    if expected is None:
        assert 45.5 < value < 50.5
    else:
        assert value == pytest.approx(expected)


def test_metric_math_matches_series_by_timestamp():
    t = [datetime.datetime(2026, 1, 1, 0, m, tzinfo=datetime.UTC) for m in range(3)]
    series = {"a": {t[0]: 1.0, t[1]: 2.0, t[2]: 4.0}, "b": {t[1]: 10.0, t[2]: 20.0}}
    assert cw.evaluate("a + b", series) == {t[1]: 12.0, t[2]: 24.0}
    assert cw.evaluate("-a * 2 ^ 2 / AVG(b)", series)[t[2]] == pytest.approx(-16 / 15)
    assert cw.evaluate("FILL(b, 0) + a", series) == {t[0]: 1.0, t[1]: 12.0, t[2]: 24.0}
    assert cw.evaluate("SUM([a, b])", series) == {t[0]: 1.0, t[1]: 12.0, t[2]: 24.0}
    assert cw.evaluate("RATE(a)", series) == {t[1]: 1 / 60, t[2]: 2 / 60}
    with pytest.raises(cw.MetricMathError, match="does not evaluate the metric math function METRICS"):
        cw.evaluate("METRICS()", series)
    with pytest.raises(cw.MetricMathError, match="returns a single number"):
        cw.evaluate("AVG(a)", series)
