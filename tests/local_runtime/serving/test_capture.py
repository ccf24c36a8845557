"""Data capture files on S3: records built at flush, one file per hour, nothing lost when a write fails."""
import json
from datetime import UTC, datetime
from functools import partial

import boto3
from moto import mock_aws

from local_runtime.serving.capture import DataCapture
from scones_common.contracts.capture import capture_record

DESTINATION = "s3://capture-bucket/data-capture"


def _records(s3) -> list[dict]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="capture-bucket").get("Contents", [])]
    return [json.loads(line) for key in sorted(keys)
            for line in s3.get_object(Bucket="capture-bucket", Key=key)["Body"].read().decode().splitlines()]


def test_a_failed_write_keeps_the_records_as_they_were_for_the_next_flush():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        capture = DataCapture(s3)
        hours = (datetime(2026, 11, 26, 9, 59, tzinfo=UTC), datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
        for index, when in enumerate(hours):
            capture.record(DESTINATION, "ep", "AllTraffic", 100,
                           partial(capture_record, b"png %d" % index, "image/png", "[0.9, 0.1]", "application/json", when))
        capture.flush()                                  # the bucket does not exist yet
        assert capture.files_written == 0
        s3.create_bucket(Bucket="capture-bucket")
        capture.flush()
        written = _records(s3)
        capture.flush()                                  # nothing left over
    assert capture.files_written == 2                    # one file per hour of inference
    assert sorted(r["eventMetadata"]["inferenceTime"] for r in written) == ["2026-11-26T09:59:00.000Z",
                                                                             "2026-11-26T10:00:00.000Z"]
    assert len({r["eventMetadata"]["eventId"] for r in written}) == 2


def test_a_record_that_cannot_be_built_is_dropped_alone():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="capture-bucket")
        capture = DataCapture(s3)
        when = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
        for body, json_types in ((b"png", ()), (b"\x89PNG\xff", ("image/png",)), (b"png 2", ())):
            capture.record(DESTINATION, "ep", "AllTraffic", 100,
                           partial(capture_record, body, "image/png", "[0.9, 0.1]", "application/json", when,
                                   ("application/json", *json_types)))
        capture.flush()
        written = _records(s3)
    assert [r["captureData"]["endpointInput"]["data"] for r in written] == ["cG5n", "cG5nIDI="]
