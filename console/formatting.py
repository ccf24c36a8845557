"""How the console writes times, durations, numbers and statuses (pure; the templates call these as ``fmt.*``)."""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

RUNNING = ("Executing", "Stopping", "Starting", "Creating", "Updating", "SystemUpdating", "RollingBack", "InProgress",
           "Deleting")
GOOD = ("Succeeded", "Completed", "InService", "Approved", "OK")
BAD = ("Failed", "Rejected", "ALARM", "Stopped", "OutOfService")


def when(value: datetime | None) -> str:
    """UTC, to the second: the console may run on a laptop in one zone and read an account in another."""
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return max(0.0, (end - start).total_seconds())


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def number(value: Any, digits: int = 4) -> str:
    if value is None or isinstance(value, bool):
        return "–"
    try:
        figure = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{figure:.{digits}f}" if math.isfinite(figure) else "–"


def percent(value: Any, digits: int = 1) -> str:
    if value is None or isinstance(value, bool):
        return "–"
    try:
        return f"{100 * float(value):.{digits}f} %"
    except (TypeError, ValueError):
        return str(value)


def status_class(status: str | None) -> str:
    """The CSS class of a status badge."""
    if not status:
        return "status-none"
    if status in RUNNING:
        return "status-running"
    if status in GOOD:
        return "status-good"
    if status in BAD:
        return "status-bad"
    return "status-other"


def short_source(source: str | None, digits: int = 12) -> str:
    """A data source label with its SHA-256 shortened (``sha256:632e77a0d46a… sample``); the full text goes in a
    tooltip."""
    if not source:
        return "–"
    return re.sub(rf"sha256:([0-9a-f]{{{digits}}})[0-9a-f]+", r"sha256:\1…", source)


def version_of(arn: str | None) -> str:
    """A model package ARN's version (its last path element)."""
    return arn.rsplit("/", 1)[-1] if arn else ""


def last_part(arn: str | None) -> str:
    return arn.rsplit("/", 1)[-1] if arn else ""


def started_by(execution: Mapping[str, Any]) -> str:
    """Who started a pipeline execution, from DescribePipelineExecution's CreatedBy (a Studio user profile or an
    IAM identity); empty when the service does not say (local stack, EventBridge)."""
    created = execution.get("CreatedBy") or {}
    if created.get("UserProfileName"):
        return f"Studio user {created['UserProfileName']}"
    identity = created.get("IamIdentity") or {}
    return identity.get("Arn") or identity.get("PrincipalId") or ""


def trigger(execution: Mapping[str, Any]) -> str:
    """What started it: the description an EventBridge target or a CLI wrote, else the display name's convention
    (``run-<commit>`` is run-pipeline / scones-local run, ``<rule>-<time>`` a schedule or alarm rule)."""
    description = (execution.get("PipelineExecutionDescription") or "").strip()
    if description:
        return description
    name = execution.get("PipelineExecutionDisplayName") or ""
    if name.startswith("run-"):
        return f"run-pipeline / scones-local run ({name})"
    if name.startswith("console-"):
        return f"operator console ({name})"
    return name


COMPARISONS = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": "≥", "LessThanThreshold": "<",
               "LessThanOrEqualToThreshold": "≤"}


def alarm_condition(alarm: Mapping[str, Any]) -> str:
    """``AWS/SageMaker ModelLatency Average > 500 ms over 1 × 60 s``: what an alarm watches, in its own units
    (SageMaker's latencies are microseconds)."""
    threshold = alarm.get("Threshold")
    shown = "–" if threshold is None else f"{threshold:g}"
    if alarm.get("MetricName", "").endswith("Latency") and threshold is not None:
        shown = f"{threshold / 1000:g} ms"
    periods = f" over {alarm.get('EvaluationPeriods', 1)} × {alarm.get('Period', '?')} s" if alarm.get("Period") else ""
    return (f"{alarm.get('Namespace', '')} {alarm.get('MetricName', '')} {alarm.get('Statistic') or ''} "
            f"{COMPARISONS.get(alarm.get('ComparisonOperator', ''), alarm.get('ComparisonOperator', ''))} "
            f"{shown}{periods}").replace("  ", " ")
