"""GetMetricData as CloudWatch answers it: extended statistics and metric math.

moto computes only Sum, Average, Minimum, Maximum and SampleCount; any other statistic (``p99``)
makes it serialise a ``None`` and answer HTTP 500, and it evaluates no metric math (an expression
other than a bare query id returns nothing). Here:

- **Extended statistics** over the values put with PutMetricData: percentiles ``pNN`` /
  ``pNN.NN`` (nearest rank: the value below which NN % of the sorted values lie, an actual sample),
  trimmed mean, winsorized mean, trimmed count and trimmed sum (``tm``/``wm``/``tc``/``ts`` with a
  percentage, or with bounds ``TM(10%:90%)``, ``TM(:0.5)``), ``IQM`` and percentile rank
  ``PR(a:b)``. A period whose data are only statistic sets (no single values) has no such datapoint,
  as on CloudWatch.
- **Metric math**: ``+ - * / ^``, parentheses, numbers, the ids of other queries (time series
  matched by timestamp), and the functions ``ABS``, ``CEIL``, ``FLOOR``, ``FILL(m, value)``,
  ``DIFF``, ``RATE``, ``SUM``/``AVG``/``MIN``/``MAX``/``STDDEV`` (of one series: a scalar; of
  ``[m1, m2]``: a series). Any other function (``METRICS()``, ``SEARCH``, ``ANOMALY_DETECTION_BAND``,
  …) is refused with a ``ValidationError`` naming it, rather than answered wrongly.

The canary test in tests/local_runtime/moto_ext/test_cloudwatch_metrics.py fails loudly if a moto
upgrade moves what is wrapped here.
"""
from __future__ import annotations

import functools
import math
import re
import statistics
from collections.abc import Callable
from datetime import datetime
from typing import Any

from local_runtime.errors import LocalRuntimeError

_WRAPPED = "__scones_cloudwatch_metrics__"
_BASIC = ("Sum", "Average", "Minimum", "Maximum", "SampleCount")


class MetricMathError(LocalRuntimeError, ValueError):
    pass


# -- extended statistics -----------------------------------------------------------------------------------

def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest sample with at least ``fraction`` of the samples at or below it."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _bound(text: str, values: list[float], default: float) -> float:
    if not text:
        return default
    if text.endswith("%"):
        return percentile(values, float(text[:-1]) / 100) if float(text[:-1]) > 0 else -math.inf
    return float(text)


def _trimmed(values: list[float], lower: str, upper: str) -> tuple[list[float], float, float]:
    low, high = _bound(lower, values, -math.inf), _bound(upper, values, math.inf)
    return [v for v in values if low < v <= high], low, high


_SHORT = re.compile(r"^(p|tm|wm|tc|ts)(\d+(?:\.\d+)?)$", re.IGNORECASE)
_RANGE = re.compile(r"^(tm|wm|tc|ts|pr)\(([^:()]*):([^:()]*)\)$", re.IGNORECASE)


def is_extended(stat: str) -> bool:
    return stat == "IQM" or bool(_SHORT.match(stat) or _RANGE.match(stat))


def extended_statistic(stat: str, values: list[float]) -> float | None:
    """The statistic ``stat`` of ``values`` (single values), None when there are none or none fall in range."""
    if not values:
        return None
    if stat == "IQM":
        kind, lower, upper = "tm", "25%", "75%"
    elif match := _SHORT.match(stat):
        kind, number = match.group(1).lower(), match.group(2)
        if kind == "p":
            return percentile(values, float(number) / 100)
        lower, upper = "", f"{number}%"
    elif match := _RANGE.match(stat):
        kind, lower, upper = match.group(1).lower(), match.group(2).strip(), match.group(3).strip()
    else:
        raise MetricMathError(f"statistic {stat} is not a CloudWatch statistic")
    if kind == "pr":
        low, high = _bound(lower, values, -math.inf), _bound(upper, values, math.inf)
        return 100.0 * sum(1 for v in values if low < v <= high) / len(values)
    kept, low, high = _trimmed(values, lower, upper)
    if kind == "wm":
        return statistics.fmean(min(max(v, low), high) for v in values)
    if kind == "tc":
        return float(len(kept))
    if kind == "ts":
        return float(sum(kept))
    return statistics.fmean(kept) if kept else None


def _statistics_for_type(original):
    @functools.wraps(original)
    def get(self, stat: str):
        if stat in _BASIC:
            return original(self, stat)
        if is_extended(stat):
            return extended_statistic(stat, self.metric_single_values_list)
        return None
    setattr(get, _WRAPPED, original)
    return get


# -- metric math -------------------------------------------------------------------------------------------

Series = dict[datetime, float]
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(.))")
_SCALAR_FUNCTIONS = {"ABS": abs, "CEIL": math.ceil, "FLOOR": math.floor}
_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "SUM": sum, "AVG": statistics.fmean, "MIN": min, "MAX": max,
    "STDDEV": lambda vs: statistics.pstdev(vs) if len(vs) > 1 else 0.0}
SUPPORTED_FUNCTIONS = sorted([*_SCALAR_FUNCTIONS, *_AGGREGATES, "FILL", "DIFF", "RATE"])


def _tokens(expression: str) -> list[tuple[str, str]]:
    out, position = [], 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if not match or match.end() == position:
            break
        number, name, symbol = match.groups()
        if number is not None:
            out.append(("num", number))
        elif name is not None:
            out.append(("name", name))
        elif symbol is not None and not symbol.isspace():
            out.append(("sym", symbol))
        position = match.end()
    return out


def _combine(left, right, operation: Callable[[float, float], float]):
    if isinstance(left, dict) and isinstance(right, dict):
        return {t: _safe(operation, left[t], right[t]) for t in left if t in right}
    if isinstance(left, dict):
        return {t: _safe(operation, v, right) for t, v in left.items()}
    if isinstance(right, dict):
        return {t: _safe(operation, left, v) for t, v in right.items()}
    return _safe(operation, left, right)


def _safe(operation, a: float, b: float) -> float:
    try:
        return float(operation(a, b))
    except ZeroDivisionError:
        return math.nan
    except OverflowError:
        return math.inf


class _Parser:
    def __init__(self, expression: str, series: dict[str, Series], query_id: str):
        self.expression, self.series, self.query_id = expression, series, query_id
        self.tokens, self.position = _tokens(expression), 0

    def fail(self, message: str) -> MetricMathError:
        return MetricMathError(f"Error in expression '{self.query_id}': {message}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, symbol: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (symbol is not None and token != ("sym", symbol)):
            raise self.fail(f"expected {symbol or 'more'} in {self.expression!r}")
        self.position += 1
        return token

    def parse(self):
        value = self.sum()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r} in {self.expression!r}")
        return value

    def sum(self):
        value = self.product()
        while self.peek() in (("sym", "+"), ("sym", "-")):
            symbol = self.take()[1]
            right = self.product()
            value = _combine(value, right, (lambda a, b: a + b) if symbol == "+" else (lambda a, b: a - b))
        return value

    def product(self):
        value = self.power()
        while self.peek() in (("sym", "*"), ("sym", "/")):
            symbol = self.take()[1]
            right = self.power()
            value = _combine(value, right, (lambda a, b: a * b) if symbol == "*" else (lambda a, b: a / b))
        return value

    def power(self):
        value = self.unary()
        if self.peek() == ("sym", "^"):
            self.take()
            value = _combine(value, self.power(), lambda a, b: a ** b)
        return value

    def unary(self):
        if self.peek() == ("sym", "-"):
            self.take()
            return _combine(-1.0, self.unary(), lambda a, b: a * b)
        return self.primary()

    def primary(self):
        token = self.take()
        kind, text = token
        if kind == "num":
            return float(text)
        if token == ("sym", "("):
            value = self.sum()
            self.take(")")
            return value
        if kind == "name" and self.peek() == ("sym", "("):
            return self.call(text)
        if kind == "name":
            if text not in self.series:
                raise self.fail(f"Unrecognized metric or expression id {text!r}")
            return dict(self.series[text])
        raise self.fail(f"unexpected {text!r} in {self.expression!r}")

    def arguments(self) -> list:
        self.take("(")
        values = []
        if self.peek() != ("sym", ")"):
            while True:
                if self.peek() == ("sym", "["):
                    self.take()
                    items = [self.sum()]
                    while self.peek() == ("sym", ","):
                        self.take()
                        items.append(self.sum())
                    self.take("]")
                    values.append(items)
                else:
                    values.append(self.sum())
                if self.peek() != ("sym", ","):
                    break
                self.take()
        self.take(")")
        return values

    def call(self, name: str):
        upper = name.upper()
        if upper not in SUPPORTED_FUNCTIONS:
            raise self.fail(f"the local CloudWatch does not evaluate the metric math function {name}; it "
                            f"evaluates {', '.join(SUPPORTED_FUNCTIONS)} and + - * / ^")
        arguments = self.arguments()
        if upper in _SCALAR_FUNCTIONS:
            (value,) = self._arity(upper, arguments, 1)
            function = _SCALAR_FUNCTIONS[upper]
            return {t: float(function(v)) for t, v in value.items()} if isinstance(value, dict) else float(function(value))
        if upper == "FILL":
            series, filler = self._arity(upper, arguments, 2)
            return self._fill(series, filler)
        if upper in ("DIFF", "RATE"):
            (series,) = self._arity(upper, arguments, 1)
            return self._diff(series, per_second=upper == "RATE")
        (argument,) = self._arity(upper, arguments, 1)
        aggregate = _AGGREGATES[upper]
        if isinstance(argument, list):      # an array of series: one series, point by point
            members = [a for a in argument if isinstance(a, dict)]
            times = sorted(set().union(*members)) if members else []
            return {t: float(aggregate([m[t] for m in members if t in m])) for t in times}
        if isinstance(argument, dict):
            return float(aggregate(list(argument.values()))) if argument else math.nan
        return float(argument)

    def _arity(self, name: str, arguments: list, count: int) -> list:
        if len(arguments) != count or any(isinstance(a, list) for a in arguments[1:]):
            raise self.fail(f"{name} takes {count} argument{'s' if count > 1 else ''}")
        return arguments

    def _fill(self, series, filler):
        if not isinstance(series, dict):
            raise self.fail("FILL's first argument must be a time series")
        times = sorted(set(series) | set(self._all_times()))
        if isinstance(filler, dict):
            return {t: series.get(t, filler.get(t, math.nan)) for t in times}
        return {t: series.get(t, filler) for t in times}

    def _all_times(self) -> set[datetime]:
        return set().union(*self.series.values()) if self.series else set()

    def _diff(self, series, per_second: bool):
        if not isinstance(series, dict):
            raise self.fail("DIFF and RATE take a time series")
        times, out = sorted(series), {}
        for before, after in zip(times, times[1:]):
            change = series[after] - series[before]
            out[after] = change / (after - before).total_seconds() if per_second else change
        return out


def evaluate(expression: str, series: dict[str, Series], query_id: str = "e1") -> Series:
    """One metric math expression over the named series; :class:`MetricMathError` names what is wrong."""
    value = _Parser(expression, series, query_id).parse()
    if not isinstance(value, dict):
        raise MetricMathError(f"Error in expression '{query_id}': the expression must return a time series, "
                              f"{expression!r} returns a single number")
    return value


def _without_gaps(result: dict) -> dict:
    """A period whose statistic cannot be computed (no single values for a percentile) has no datapoint."""
    kept = [(t, v) for t, v in zip(result["timestamps"], result["values"]) if v is not None]
    return {**result, "timestamps": [t for t, _ in kept], "values": [v for _, v in kept]}


def _series(result: dict) -> Series:
    return dict(zip(result["timestamps"], (float(v) for v in result["values"])))


def _result(query: dict, values: Series, scan_by: str) -> dict:
    times = sorted(values, reverse=scan_by == "TimestampDescending")
    return {"id": query["Id"], "label": query.get("Label") or query["Id"], "timestamps": times,
            "values": [values[t] for t in times], "status_code": "Complete"}


def _get_metric_data(original):
    @functools.wraps(original)
    def get(self, queries: list[dict[str, Any]], start_time, end_time, scan_by: str = "TimestampAscending"):
        from moto.cloudwatch.exceptions import ValidationError

        math_queries = [q for q in queries if "Expression" in q and not q["Expression"].lstrip().upper()
                        .startswith("SELECT")]
        others = [{**q, "ReturnData": True} for q in queries if q not in math_queries]
        for index, query in enumerate(queries, start=1):
            stat = (query.get("MetricStat") or {}).get("Stat")
            if stat is not None and stat not in _BASIC and not is_extended(stat):
                raise ValidationError(f"The value {stat} for parameter MetricDataQueries.member.{index}.MetricStat."
                                      "Stat is not a valid statistic.")
        answered = {r["id"]: _without_gaps(r) for r in original(self, others, start_time, end_time, scan_by)}
        series = {query_id: _series(result) for query_id, result in answered.items()}
        pending = list(math_queries)
        while pending:           # expressions may use other expressions: evaluate those whose ids are known
            progressed = False
            for query in list(pending):
                names = {text for kind, text in _tokens(query["Expression"]) if kind == "name"}
                if any(n in {p["Id"] for p in pending} and n != query["Id"] for n in names):
                    continue
                try:
                    values = evaluate(query["Expression"], series, query["Id"])
                except MetricMathError as exc:
                    raise ValidationError(str(exc)) from None
                series[query["Id"]] = values
                answered[query["Id"]] = _result(query, values, scan_by)
                pending.remove(query)
                progressed = True
            if not progressed:
                raise ValidationError(f"Error in expression '{pending[0]['Id']}': the expressions "
                                      f"{', '.join(q['Id'] for q in pending)} refer to one another in a circle")
        return [answered[q["Id"]] for q in queries if q.get("ReturnData", True) and q["Id"] in answered]
    setattr(get, _WRAPPED, original)
    return get


def install() -> None:
    from moto.cloudwatch.models import CloudWatchBackend, Statistics

    if not hasattr(Statistics.get_statistics_for_type, _WRAPPED):
        Statistics.get_statistics_for_type = _statistics_for_type(Statistics.get_statistics_for_type)
    if not hasattr(CloudWatchBackend.get_metric_data, _WRAPPED):
        CloudWatchBackend.get_metric_data = _get_metric_data(CloudWatchBackend.get_metric_data)
