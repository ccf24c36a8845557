"""The Model Monitor data-capture record and where its files go, as a SageMaker endpoint writes them.

Files: ``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<id>.jsonl``, one record
per line::

    {"captureData": {"endpointInput":  {"observedContentType", "mode": "INPUT",  "data", "encoding"},
                     "endpointOutput": {"observedContentType", "mode": "OUTPUT", "data", "encoding"}},
     "eventMetadata": {"eventId", "inferenceTime": "2026-11-25T07:05:09.123Z"},
     "eventVersion": "0"}

``encoding`` is ``JSON`` (``data`` is the text itself) for the content types the endpoint's
capture config lists as JSON, else ``BASE64``.
"""
from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from scones_common.errors import SconesError

CAPTURE_FILE_SUFFIX = ".jsonl"
DEFAULT_JSON_TYPES = ("application/json",)


class CaptureFormatError(SconesError, ValueError):
    """A capture line is not a Model Monitor record."""


@dataclass(frozen=True)
class CapturedPayload:
    content_type: str
    data: bytes


@dataclass(frozen=True)
class CaptureRecord:
    event_id: str
    inference_time: datetime
    request: CapturedPayload
    response: CapturedPayload


def _encode(data: bytes | str, content_type: str, mode: str, json_types: tuple[str, ...]) -> dict:
    if content_type in json_types:
        text = data.decode() if isinstance(data, bytes) else data
        return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": "JSON"}
    raw = data if isinstance(data, bytes) else data.encode()
    return {"observedContentType": content_type, "mode": mode, "data": base64.b64encode(raw).decode(),
            "encoding": "BASE64"}


def _decode(part: dict) -> CapturedPayload:
    data = base64.b64decode(part["data"], validate=True) if part["encoding"] == "BASE64" else part["data"].encode()
    return CapturedPayload(part.get("observedContentType", ""), data)


def capture_record(request_body: bytes, request_type: str, response_body: bytes | str, response_type: str,
                   inference_time: datetime, json_types: tuple[str, ...] = DEFAULT_JSON_TYPES) -> dict:
    """One invocation as a capture record (a JSON-ready dict)."""
    return {"captureData": {"endpointInput": _encode(request_body, request_type, "INPUT", json_types),
                            "endpointOutput": _encode(response_body, response_type, "OUTPUT", json_types)},
            "eventMetadata": {"eventId": str(uuid.uuid4()),
                              "inferenceTime": inference_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"},
            "eventVersion": "0"}


def inference_hour(record: dict) -> str:
    """``yyyy-mm-ddThh`` of a record's inference: records of one hour share capture files."""
    return record["eventMetadata"]["inferenceTime"][:13]


def parse_capture_record(line: str, source: str) -> CaptureRecord:
    """Reads one line of a capture file; anything else is a :class:`CaptureFormatError` naming ``source``."""
    try:
        record = json.loads(line)
        data = record["captureData"]
        return CaptureRecord(record["eventMetadata"]["eventId"],
                             datetime.fromisoformat(record["eventMetadata"]["inferenceTime"]),
                             _decode(data["endpointInput"]), _decode(data["endpointOutput"]))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise CaptureFormatError(f"{source}: not a data capture record ({type(exc).__name__}: {exc})") from None


def capture_file_key(prefix: str, endpoint: str, variant: str, when: datetime) -> str:
    """The S3 key of a capture file written at ``when`` under the capture destination's key ``prefix``."""
    return (f"{prefix.strip('/')}/{endpoint}/{variant}/{when:%Y/%m/%d/%H}/"
            f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4().hex[:8]}{CAPTURE_FILE_SUFFIX}").lstrip("/")
