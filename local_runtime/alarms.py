"""Evaluates the local CloudWatch's metric alarms, as CloudWatch does, and emits their state changes.

moto stores alarms and metrics but never evaluates an alarm. Here a thread reads the alarms
(DescribeAlarms), the statistic of each of the last EvaluationPeriods complete periods
(GetMetricStatistics), decides the state with CloudWatch's documented rules (ComparisonOperator,
Threshold, DatapointsToAlarm "M out of N", TreatMissingData missing/notBreaching/breaching/ignore),
records a change with SetAlarmState and delivers the "CloudWatch Alarm State Change" event to the
matching EventBridge rules. Only public APIs are used. Periods are whatever the alarm says
(the local configuration uses 10-second periods so a canary's bake is short).
"""
from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from local_runtime.errors import LocalRuntimeError
from local_runtime.event_targets import Delivery, publish
from local_runtime.periodic import PeriodicThread

log = logging.getLogger("local_runtime.alarms")
DETAIL_TYPE = "CloudWatch Alarm State Change"
COMPARISONS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}

PHRASES = {"GreaterThanThreshold": "greater than", "GreaterThanOrEqualToThreshold": "greater than or equal to",
           "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to"}


class UnsupportedAlarmError(LocalRuntimeError, ValueError):
    """An alarm the local evaluator does not evaluate (metric math, anomaly bands, percentiles)."""


@dataclass(frozen=True)
class Decision:
    state: str               # OK | ALARM | INSUFFICIENT_DATA
    reason: str
    values: tuple[float | None, ...]


def decide(alarm: dict, values: Sequence[float | None]) -> Decision:
    """The state CloudWatch gives an alarm whose last N periods hold ``values`` (oldest first, None = no data)."""
    compare = COMPARISONS.get(alarm["ComparisonOperator"])
    if compare is None:
        raise UnsupportedAlarmError(f"alarm {alarm['AlarmName']}: {alarm['ComparisonOperator']} is not evaluated locally")
    threshold, needed = float(alarm["Threshold"]), int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"])
    treat = alarm.get("TreatMissingData", "missing")
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    if not present and treat in ("missing", "ignore"):
        state = "INSUFFICIENT_DATA" if treat == "missing" else alarm.get("StateValue", "INSUFFICIENT_DATA")
        return Decision(state, f"no datapoints in the last {len(values)} period(s) (TreatMissingData {treat})",
                        tuple(values))
    breaching = sum(compare(v, threshold) for v in present) + (missing if treat == "breaching" else 0)
    shown = "[" + ", ".join("-" if v is None else f"{v:g}" for v in values) + "]"
    relation = PHRASES[alarm["ComparisonOperator"]]
    counted = f"{breaching} out of the last {len(values)} datapoints {shown}"
    state = "ALARM" if breaching >= needed else "OK"
    transition = "OK -> ALARM" if state == "ALARM" else "ALARM -> OK"
    return Decision(state, f"Threshold Crossed: {counted} {'was' if breaching == 1 else 'were'} {relation} the "   # CloudWatch's wording
                           f"threshold ({threshold:g}) (minimum {needed} datapoint{'s' if needed > 1 else ''} for "
                           f"{transition} transition).", tuple(values))


def combine(datapoints: Sequence[dict], statistic: str) -> float | None:
    """One period's statistic from the datapoints GetMetricStatistics returned for it."""
    if not datapoints:
        return None
    if statistic == "Average":
        count = sum(p["SampleCount"] for p in datapoints)
        return sum(p["Sum"] for p in datapoints) / count if count else None
    if statistic in ("Sum", "SampleCount"):
        return sum(p[statistic] for p in datapoints)
    if statistic == "Maximum":
        return max(p["Maximum"] for p in datapoints)
    if statistic == "Minimum":
        return min(p["Minimum"] for p in datapoints)
    raise UnsupportedAlarmError(f"statistic {statistic} is not evaluated locally")


def period_values(cloudwatch, alarm: dict, now: datetime) -> list[float | None]:
    """The alarm's statistic over each of its last EvaluationPeriods complete periods, oldest first."""
    if alarm.get("Metrics") or alarm.get("ExtendedStatistic") or not alarm.get("Statistic"):
        raise UnsupportedAlarmError(f"alarm {alarm['AlarmName']}: only single-metric alarms with a statistic "
                                    "are evaluated locally")
    period = int(alarm["Period"])
    end = datetime.fromtimestamp(math.floor(now.timestamp() / period) * period, UTC)
    statistics = ["Sum", "SampleCount"] if alarm["Statistic"] == "Average" else [alarm["Statistic"]]
    values = []
    for index in range(int(alarm["EvaluationPeriods"]), 0, -1):
        start = end - timedelta(seconds=period * index)
        points = cloudwatch.get_metric_statistics(
            Namespace=alarm["Namespace"], MetricName=alarm["MetricName"], Dimensions=alarm.get("Dimensions", []),
            StartTime=start, EndTime=start + timedelta(seconds=period), Period=period,
            Statistics=statistics)["Datapoints"]
        values.append(combine(points, alarm["Statistic"]))
    return values


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def state_change_event(alarm: dict, decision: Decision, previous: str, region: str, account: str,
                       when: datetime) -> dict:
    """The documented "CloudWatch Alarm State Change" event for a single-metric alarm."""
    stamp = _stamp(when)
    reason_data = json.dumps({"version": "1.0", "queryDate": stamp, "statistic": alarm["Statistic"],
                              "period": alarm["Period"], "threshold": alarm["Threshold"],
                              "recentDatapoints": [v for v in decision.values if v is not None]})
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": DETAIL_TYPE, "source": "aws.cloudwatch",
        "account": account, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
        "resources": [alarm["AlarmArn"]],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {"value": decision.state, "reason": decision.reason, "reasonData": reason_data, "timestamp": stamp},
            "previousState": {"value": previous, "reason": alarm.get("StateReason", ""),
                              "reasonData": alarm.get("StateReasonData", ""),
                              "timestamp": _stamp(alarm.get("StateUpdatedTimestamp") or when)},
            "configuration": {"description": alarm.get("AlarmDescription", ""), "metrics": [{
                "id": "m1", "returnData": True,
                "metricStat": {"metric": {"namespace": alarm["Namespace"], "name": alarm["MetricName"],
                                          "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}},
                               "period": alarm["Period"], "stat": alarm["Statistic"]}}]},
        },
    }


class AlarmEvaluator(PeriodicThread):
    """``tick(now)`` evaluates every alarm once; ``start()`` does so every ``tick_seconds`` in a thread."""
    name = "alarm-evaluator"

    def __init__(self, clients, tick_seconds: float = 1.0):
        super().__init__(tick_seconds)
        self.clients = clients
        self._unsupported: set[str] = set()
        self.changes: list[tuple[str, str, list[Delivery]]] = []    # (alarm, new state, deliveries), newest last

    def tick(self, now: datetime | None = None) -> list[tuple[str, str, list[Delivery]]]:
        now = now or datetime.now(UTC)
        cloudwatch = self.clients.client("cloudwatch")
        changed = []
        pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
        for alarm in [a for page in pages for a in page["MetricAlarms"]]:
            try:
                decision = decide(alarm, period_values(cloudwatch, alarm, now))
            except UnsupportedAlarmError as exc:
                if alarm["AlarmName"] not in self._unsupported:
                    self._unsupported.add(alarm["AlarmName"])
                    log.warning("%s", exc)
                continue
            previous = alarm.get("StateValue", "INSUFFICIENT_DATA")
            if decision.state == previous:
                continue
            event = state_change_event(alarm, decision, previous, self.clients.region,
                                       alarm["AlarmArn"].split(":")[4], now)
            cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=decision.state,
                                       StateReason=decision.reason[:1023],
                                       StateReasonData=event["detail"]["state"]["reasonData"])
            log.info("alarm %s: %s -> %s (%s)", alarm["AlarmName"], previous, decision.state, decision.reason)
            deliveries = publish(self.clients, event)    # EventBridge gets state changes whatever ActionsEnabled says
            changed.append((alarm["AlarmName"], decision.state, deliveries))
        self.changes.extend(changed)
        return changed


def wait_for_state(cloudwatch, alarm_name: str, state: str, timeout: float = 60.0) -> float:
    """Seconds until ``alarm_name`` is in ``state`` (tests, benchmarks); TimeoutError after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        alarms = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
        if alarms and alarms[0]["StateValue"] == state:
            return time.monotonic() - started
        time.sleep(0.2)
    raise TimeoutError(f"alarm {alarm_name} did not reach {state} within {timeout:g} s")
