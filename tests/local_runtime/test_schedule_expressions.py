"""EventBridge schedule expressions with AWS semantics."""
from datetime import UTC, datetime, timedelta

import pytest

from local_runtime.schedule_expressions import ScheduleExpressionError, next_fire

WEDNESDAY = datetime(2026, 11, 25, 22, 40, tzinfo=UTC)


@pytest.mark.parametrize("expression, expected", [
    ("cron(0 3 ? * MON *)", datetime(2026, 11, 30, 3, 0, tzinfo=UTC)),
    ("cron(0 3 ? * 2 *)", datetime(2026, 11, 30, 3, 0, tzinfo=UTC)),          # 1 = SUN, so 2 = MON
    ("cron(*/15 * * * ? *)", datetime(2026, 11, 25, 22, 45, tzinfo=UTC)),
    ("cron(0 12 1 JAN-MAR ? 2027)", datetime(2027, 1, 1, 12, 0, tzinfo=UTC)),
    ("cron(30 9 ? * MON-FRI *)", datetime(2026, 11, 26, 9, 30, tzinfo=UTC)),
    ("cron(0 0 29 2 ? *)", datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
    ("cron(40 22 25 11 ? 2026)", None),                                        # only now: not strictly after
])
def test_cron_next_fire(expression, expected):
    assert next_fire(expression, WEDNESDAY, WEDNESDAY) == expected


def test_rate_counts_from_the_rule_creation():
    created = WEDNESDAY - timedelta(minutes=2)
    assert next_fire("rate(5 minutes)", WEDNESDAY, created) == created + timedelta(minutes=5)
    assert next_fire("rate(1 hour)", WEDNESDAY, created) == created + timedelta(hours=1)


@pytest.mark.parametrize("expression, message", [
    ("cron(0 3 * * MON *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 3 ? * *)", "6 fields"),
    ("cron(0 3 L * ? *)", "not supported"),
    ("cron(0 3 ? * 2#1 *)", "not supported"),
    ("cron(61 3 ? * MON *)", "outside 0-59"),
    ("rate(1 minutes)", "singular"),
    ("rate(5 minute)", "singular"),
    ("every monday", "neither cron"),
])
def test_invalid_expressions_are_named(expression, message):
    with pytest.raises(ScheduleExpressionError, match=message):
        next_fire(expression, WEDNESDAY, WEDNESDAY)
