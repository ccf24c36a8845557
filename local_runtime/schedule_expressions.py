"""EventBridge schedule expressions with AWS semantics: ``cron(...)`` and ``rate(...)``, in UTC.

cron has six fields: minutes hours day-of-month month day-of-week year. One of day-of-month and
day-of-week must be ``?``; day-of-week counts 1-7 from SUN (or SUN-SAT), months 1-12 or JAN-DEC;
``*``, lists, ranges and ``/`` steps are accepted. ``L``, ``W`` and ``#`` are refused with a named
error (the local scheduler does not implement them). rate is ``rate(N minute|minutes|hour|hours|day|days)``
with the singular unit only for 1, as AWS requires.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from local_runtime.errors import LocalRuntimeError

_MONTHS = {name: i for i, name in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                              "NOV", "DEC"], start=1)}
_DAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleExpressionError(LocalRuntimeError, ValueError):
    """The expression is not a valid EventBridge schedule expression (or uses what runs only on AWS)."""


def _field(text: str, low: int, high: int, names: dict[str, int], what: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.upper().split(","):
        if any(mark in part for mark in ("L", "W", "#")) and not any(n in part for n in names):
            raise ScheduleExpressionError(f"{what} {part!r}: L, W and # are not supported by the local scheduler")
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = _value(first, names, what), _value(last, names, what)
        else:
            start = _value(base, names, what)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise ScheduleExpressionError(f"{what} {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: dict[str, int], what: str) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ScheduleExpressionError(f"{what} value {text!r} is not a number{' or a name' if names else ''}")
    return int(text)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None        # None: '?'
    months: frozenset[int]
    weekdays: frozenset[int] | None    # 1 = Sunday; None: '?'
    years: frozenset[int]

    def day_matches(self, day: datetime) -> bool:
        weekday = (day.isoweekday() % 7) + 1
        return (day.month in self.months and day.year in self.years and (self.days is None or day.day in self.days)
                and (self.weekdays is None or weekday in self.weekdays))

    def next_after(self, moment: datetime) -> datetime | None:
        """The first matching minute strictly after ``moment`` (None within five years: never)."""
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        times = sorted((h, m) for h in self.hours for m in self.minutes)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 5):
            if self.day_matches(day):
                for hour, minute in times:
                    candidate = day.replace(hour=hour, minute=minute)
                    if candidate >= start:
                        return candidate
            day += timedelta(days=1)
        return None


@dataclass(frozen=True)
class Rate:
    seconds: int

    def next_after(self, moment: datetime, since: datetime) -> datetime:
        elapsed = (moment - since).total_seconds()
        return since + timedelta(seconds=(int(elapsed // self.seconds) + 1) * self.seconds)


def parse(expression: str) -> Cron | Rate:
    expression = expression.strip()
    rate = _RATE.fullmatch(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1 or (value == 1) != (not unit.endswith("s")):
            raise ScheduleExpressionError(f"{expression!r}: use the singular unit for 1 and the plural otherwise")
        return Rate(value * _UNITS[unit.rstrip("s")])
    if not (expression.startswith("cron(") and expression.endswith(")")):
        raise ScheduleExpressionError(f"{expression!r} is neither cron(...) nor rate(...)")
    fields = expression[5:-1].split()
    if len(fields) != 6:
        raise ScheduleExpressionError(f"{expression!r}: cron needs 6 fields (minutes hours day-of-month month "
                                      f"day-of-week year), got {len(fields)}")
    minutes, hours, days, months, weekdays, years = fields
    if (days == "?") == (weekdays == "?"):
        raise ScheduleExpressionError(f"{expression!r}: exactly one of day-of-month and day-of-week must be '?'")
    return Cron(_field(minutes, 0, 59, {}, "minutes"), _field(hours, 0, 23, {}, "hours"),
                None if days == "?" else _field(days, 1, 31, {}, "day-of-month"),
                _field(months, 1, 12, _MONTHS, "month"),
                None if weekdays == "?" else _field(weekdays, 1, 7, _DAYS, "day-of-week"),
                _field(years, 1970, 2199, {}, "year"))


def next_fire(expression: str, after: datetime, since: datetime) -> datetime | None:
    """When a rule with this expression next fires after ``after``; rate counts from ``since`` (rule creation)."""
    schedule = parse(expression)
    return schedule.next_after(after, since) if isinstance(schedule, Rate) else schedule.next_after(after)
