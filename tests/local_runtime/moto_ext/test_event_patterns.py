"""Canary: TestEventPattern answers through moto's own matcher."""
import json

import pytest
from botocore.exceptions import ClientError

from local_runtime.moto_ext import event_patterns

EVENT = {"id": "1", "account": "123456789012", "source": "aws.cloudwatch", "time": "2026-01-01T00:00:00Z",
         "region": "us-east-1", "detail-type": "CloudWatch Alarm State Change", "resources": ["arn:x"],
         "detail": {"alarmName": "a", "state": {"value": "ALARM"}}}


def test_moto_still_lacks_it_and_the_matcher_is_where_we_use_it():
    from moto.events.models import EventPattern, EventPatternParser, EventsBackend

    with pytest.raises(NotImplementedError):
        EventsBackend.test_event_pattern(None)
    assert EventPattern("{}", EventPatternParser('{"source": ["x"]}').parse()).matches_event({"source": "x"})


def test_matches_nested_detail_and_resources(local_stack):
    assert event_patterns  # installed by the local stack
    events = local_stack.client("events")

    def result(pattern):
        return events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(EVENT))["Result"]

    assert result({"source": ["aws.cloudwatch"], "resources": ["arn:x"], "detail": {"state": {"value": ["ALARM"]}}})
    assert not result({"source": ["aws.cloudwatch"], "detail": {"state": {"value": ["OK"]}}})
    with pytest.raises(ClientError, match="missing id"):
        events.test_event_pattern(EventPattern="{}", Event=json.dumps({"source": "x"}))
