"""TestEventPattern for moto's EventBridge, which answers it with an empty body.

The local alarm evaluator matches "CloudWatch Alarm State Change" events against rules through
the EventBridge API (ListRules + TestEventPattern), as any client could; moto has the matcher
(``EventPattern.matches_event``, the one its own rules use) but leaves the action empty. The
canary test in tests/local_runtime/moto_ext/test_event_patterns.py fails loudly if a moto upgrade
moves the matcher or implements the action itself.
"""
from __future__ import annotations

import json


def _test_event_pattern(self):
    from moto.events.models import EventPattern, EventPatternParser

    raw = self._get_param("EventPattern")
    try:
        event = json.loads(self._get_param("Event") or "")
    except ValueError:
        return self.error("InvalidEventPatternException", "Event is not valid JSON.")
    missing = [key for key in ("id", "account", "source", "time", "region", "detail-type") if key not in event]
    if missing:
        return self.error("ValidationException", f"Parameter Event is not valid: missing {', '.join(missing)}.")
    pattern = EventPattern(raw, EventPatternParser(raw).parse())
    return json.dumps({"Result": pattern.matches_event(event)}), self.response_headers


def install() -> None:
    from moto.events.responses import EventsHandler

    if EventsHandler.test_event_pattern is not _test_event_pattern:
        EventsHandler.test_event_pattern = _test_event_pattern
