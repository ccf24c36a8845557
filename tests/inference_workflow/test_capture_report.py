import json
from datetime import UTC, datetime, timedelta

import pytest

from inference_workflow.capture_report import NoCaptureError, draw_report, parse_jsonl
from scones_common.contracts.capture import CaptureFormatError, capture_record
from tests.builders import solid_png


def _jsonl(n, start):
    return "\n".join(json.dumps(capture_record(solid_png(i * 20 % 255), "image/png",
                                               json.dumps([0.5 + i / (2 * n), 0.5 - i / (2 * n)]), "application/json",
                                               start + timedelta(seconds=i))) for i in range(n))


def test_every_record_of_every_line_is_read():
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    records = parse_jsonl(_jsonl(5, start), "a.jsonl")
    assert len(records) == 5
    assert records[0].time == start and records[-1].time == start + timedelta(seconds=4)
    assert records[0].image == solid_png(0) and records[-1].label == "bicycle"


def test_bad_line_is_named():
    with pytest.raises(CaptureFormatError, match="b.jsonl:1"):
        parse_jsonl('{"not": "capture"}\n', "b.jsonl")


def test_report_files(tmp_path):
    records = parse_jsonl(_jsonl(12, datetime(2026, 11, 25, 10, tzinfo=UTC)), "a.jsonl")
    index = draw_report(records, 0.93, tmp_path)
    for name in ("confidence_over_time.png", "confidence_histogram.png", "captured_images.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    assert "12 captured inferences" in index.read_text()


def test_empty_capture_refused(tmp_path):
    with pytest.raises(NoCaptureError, match="no captured inferences"):
        draw_report([], 0.93, tmp_path)


def test_report_draws_the_models_calibration_and_coverage(tmp_path):
    import numpy as np

    from processing.evaluate import score

    records = parse_jsonl(_jsonl(4, datetime(2026, 11, 25, 10, tzinfo=UTC)), "a.jsonl")
    probabilities = np.array([[0.99, 0.01], [0.7, 0.3], [0.2, 0.8], [0.05, 0.95], [0.6, 0.4]])
    evaluation = score([0, 1, 1, 1, 0], probabilities, 0.93)
    index = draw_report(records, 0.93, tmp_path, evaluation=evaluation).read_text()
    for name in ("reliability.png", "coverage_precision.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG") and name in index
