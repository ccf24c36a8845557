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
    assert "precision 1.0000 (95 % lower bound 0.2236, 2 confident images)" in index     # 0.05 ** (1 / 2)


def test_the_precision_is_shown_with_its_bound_when_the_evaluation_has_one():
    from inference_workflow.capture_report import precision_text

    assert precision_text({"confident_precision": {"value": 0.98, "lower_bound": 0.9412, "confident": 150}}) == \
        "precision 0.9800 (95 % lower bound 0.9412, 150 confident images)"
    assert precision_text({"confident_precision": {"value": 0.98}}) == "precision 0.9800"
    assert precision_text({"confident_precision": {"value": None}}).startswith("precision n/a")


@pytest.fixture
def s3(monkeypatch):
    import boto3
    from moto import mock_aws

    for name, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="reports")
        yield client


@pytest.mark.parametrize("body, message", [(b"not json", "is not JSON"), (b"\xff\xfe", "is not JSON"),
                                           (b"[1, 2]", "has no metrics.confidence_threshold"),
                                           (b'{"metrics": {"accuracy": {"value": 0.9}}}', "metrics.calibration")])
def test_an_object_that_is_not_an_evaluation_is_named(s3, body, message):
    from inference_workflow.capture_report import ReportInputError, read_evaluation

    s3.put_object(Bucket="reports", Key="e.json", Body=body)
    with pytest.raises(ReportInputError, match=message):
        read_evaluation(s3, "s3://reports/e.json")


def test_unreadable_drift_reports_are_skipped_and_the_rest_kept(s3, caplog):
    from inference_workflow.capture_report import read_drift_reports

    good = {"enough_data": True, "window": {"end": "2026-11-25T10:00:00+00:00"}, "drift_score": 0.1,
            "features": [{"feature": "brightness", "psi": 0.1}], "violations": []}
    for key, body in (("r/1.json", json.dumps(good)), ("r/2.json", "not json"), ("r/3.json", '{"enough_data": true}'),
                      ("r/4.json", json.dumps({"enough_data": False}))):
        s3.put_object(Bucket="reports", Key=key, Body=body.encode())
    points = read_drift_reports(s3, "s3://reports/r/")
    assert [p.drift_score for p in points] == [0.1]
    assert "r/2.json" in caplog.text and "r/3.json" in caplog.text


@pytest.mark.parametrize("argument", [".", "/", "~", "users-own"])
def test_the_out_dir_is_refused_before_anything_is_read_unless_new_empty_or_an_earlier_report(
        tmp_path, monkeypatch, capsys, argument):
    from inference_workflow import capture_report

    here = tmp_path / "here"
    (here / "users-own").mkdir(parents=True)
    (here / "users-own" / "index.html").write_text("my page")
    monkeypatch.chdir(here)
    monkeypatch.setattr(capture_report.boto3, "client", lambda *a, **k: pytest.fail("S3 read for a refused --out"))
    assert capture_report.main(["--capture-uri", "s3://b/data-capture/e/", "--out", argument]) == 2
    assert "UnsafeDirectoryError" in capsys.readouterr().err
    assert (here / "users-own" / "index.html").read_text() == "my page"
    assert sorted(p.name for p in here.iterdir()) == ["users-own"]


def test_an_earlier_report_directory_is_accepted_again(tmp_path, monkeypatch):
    from inference_workflow import capture_report

    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    monkeypatch.setattr(capture_report.boto3, "client", lambda *a, **k: None)
    monkeypatch.setattr(capture_report, "read_capture", lambda s3, uri: parse_jsonl(_jsonl(4, start), "a.jsonl"))
    out = tmp_path / "report"
    for _ in range(2):
        assert capture_report.main(["--capture-uri", "s3://b/data-capture/e/", "--out", str(out)]) == 0
    assert (out / "index.html").exists()


def test_the_review_section_gives_rate_agreement_and_time_to_answer():
    from inference_workflow.capture_report import review_html
    from inference_workflow.review import review_metrics

    labels = [{"review_id": "a", "label": "bicycle", "model_prediction": "motorcycle",
               "requested_at": "2026-01-01T00:00:00+00:00", "answered_at": "2026-01-01T00:06:00+00:00"}]
    text = review_html(review_metrics(labels, [{"review_id": "b"}], executions=14), 0.93)
    assert "Review rate 14.3%: 2 of 14 workflow executions" in text and "1 answered, 1 pending" in text
    assert "agree on 0.0%" in text and "median time to answer 6.0 min" in text
    assert "low-confidence share uses the same threshold" in text
    assert review_html(None, 0.93) == ""
