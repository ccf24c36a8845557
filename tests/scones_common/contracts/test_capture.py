import base64
import json
from datetime import UTC, datetime

import pytest

from scones_common.contracts.capture import (
    CaptureFormatError,
    capture_file_key,
    capture_record,
    inference_hour,
    parse_capture_record,
)

WHEN = datetime(2026, 11, 25, 7, 5, 9, 123456, tzinfo=UTC)


def test_record_has_the_model_monitor_shape():
    record = capture_record(b"\x89PNG-bytes", "image/png", "[0.25, 0.75]", "application/json", WHEN)
    assert set(record) == {"captureData", "eventMetadata", "eventVersion"} and record["eventVersion"] == "0"
    assert record["captureData"]["endpointInput"] == {"observedContentType": "image/png", "mode": "INPUT",
                                                      "data": base64.b64encode(b"\x89PNG-bytes").decode(),
                                                      "encoding": "BASE64"}
    assert record["captureData"]["endpointOutput"] == {"observedContentType": "application/json", "mode": "OUTPUT",
                                                       "data": "[0.25, 0.75]", "encoding": "JSON"}
    assert record["eventMetadata"]["inferenceTime"] == "2026-11-25T07:05:09.123Z"
    assert inference_hour(record) == "2026-11-25T07"


def test_json_types_follow_the_capture_config():
    record = capture_record(b"{}", "application/json", "[1]", "application/json", WHEN, json_types=())
    assert record["captureData"]["endpointInput"]["encoding"] == "BASE64"


def test_written_record_reads_back():
    line = json.dumps(capture_record(b"\x89PNG-bytes", "image/png", "[0.25, 0.75]", "application/json", WHEN))
    parsed = parse_capture_record(line, "a.jsonl:1")
    assert parsed.inference_time == datetime(2026, 11, 25, 7, 5, 9, 123000, tzinfo=UTC)
    assert (parsed.request.content_type, parsed.request.data) == ("image/png", b"\x89PNG-bytes")
    assert (parsed.response.content_type, parsed.response.data) == ("application/json", b"[0.25, 0.75]")


@pytest.mark.parametrize("line", ['{"not": "capture"}', "not json", "[]",
                                  '{"captureData": {"endpointInput": {"data": "!!", "encoding": "BASE64"}}}'])
def test_anything_else_is_named(line):
    with pytest.raises(CaptureFormatError, match="b.jsonl:3: not a data capture record"):
        parse_capture_record(line, "b.jsonl:3")


def test_file_layout():
    key = capture_file_key("p/data-capture", "ep", "AllTraffic", WHEN)
    assert key.startswith("p/data-capture/ep/AllTraffic/2026/11/25/07/05-09-123-") and key.endswith(".jsonl")
    assert capture_file_key("", "ep", "AllTraffic", WHEN).startswith("ep/AllTraffic/")
