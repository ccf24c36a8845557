"""Fires the local EventBridge's enabled schedule rules on time, as EventBridge does on AWS.

moto stores schedule rules but never fires them. While ``scones-local serve`` runs, a thread
reads the rules through the EventBridge API once per tick and, when an enabled rule's schedule
comes due, delivers to its targets what EventBridge would: a SageMaker pipeline target gets
StartPipelineExecution with the target's PipelineParameterList, a Lambda target an Invoke with
the scheduled event. :func:`fire_rule` does the same for one rule on demand (``scones-local
fire-schedule``), enabled or not.
"""
from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from local_runtime.errors import LocalRuntimeError
from local_runtime.event_targets import Delivery, deliver
from local_runtime.periodic import PeriodicThread
from local_runtime.schedule_expressions import ScheduleExpressionError, next_fire

log = logging.getLogger("local_runtime.schedules")
TICK_SECONDS = 1.0


class RuleNotFoundError(LocalRuntimeError, LookupError):
    """No EventBridge rule has this name."""


def scheduled_event(rule_arn: str, region: str, account: str, when: datetime) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": account, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
            "resources": [rule_arn], "detail": {}}


def fire_rule(clients, name: str, when: datetime | None = None) -> list[Delivery]:
    """Delivers rule ``name`` to each of its targets now, whatever its state; returns what happened per target."""
    events = clients.client("events")
    try:
        rule = events.describe_rule(Name=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise RuleNotFoundError(f"no EventBridge rule named {name!r}") from None
        raise
    when = when or datetime.now(UTC)
    _, _, _, region, account, _ = rule["Arn"].split(":", 5)
    event = scheduled_event(rule["Arn"], region, account, when)
    deliveries = [deliver(clients, name, target, event)
                  for target in events.list_targets_by_rule(Rule=name).get("Targets", [])]
    for delivery in deliveries:
        log.log(logging.INFO if delivery.ok else logging.WARNING, "rule %s -> %s: %s", name, delivery.arn,
                delivery.result)
    return deliveries


class Scheduler(PeriodicThread):
    """Tracks each enabled schedule rule's next fire time; ``tick(now)`` fires the ones due."""
    name = "schedules"

    def __init__(self, clients, started: datetime | None = None):
        super().__init__(TICK_SECONDS)
        self.clients = clients
        self.started = started or datetime.now(UTC)
        self._due: dict[tuple[str, str], datetime | None] = {}

    def tick(self, now: datetime | None = None) -> list[tuple[str, list[Delivery]]]:
        now = now or datetime.now(UTC)
        fired = []
        pages = self.clients.client("events").get_paginator("list_rules").paginate()
        rules = [r for page in pages for r in page["Rules"] if r.get("ScheduleExpression") and r.get("State") == "ENABLED"]
        for rule in rules:
            key = (rule["Name"], rule["ScheduleExpression"])
            if key not in self._due:
                try:
                    self._due[key] = next_fire(rule["ScheduleExpression"], max(now, self.started), self.started)
                except ScheduleExpressionError as exc:
                    log.warning("rule %s never fires locally: %s", rule["Name"], exc)
                    self._due[key] = None
            due = self._due[key]
            if due is not None and due <= now:
                fired.append((rule["Name"], fire_rule(self.clients, rule["Name"], due)))
                self._due[key] = next_fire(rule["ScheduleExpression"], now, self.started)
        enabled = {(r["Name"], r["ScheduleExpression"]) for r in rules}
        for key in [k for k in self._due if k not in enabled]:     # disabled or changed: start over when enabled
            del self._due[key]
        return fired
