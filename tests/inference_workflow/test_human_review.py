"""The review's pure parts: checking an answer, building the request and the record, finding a review, the metrics."""
import base64
import hashlib

import pytest

from inference_workflow.human_review import lambda_function as review_lambda
from inference_workflow.review import (
    AmbiguousReviewIdError,
    InvalidAnswerError,
    PendingReview,
    ReviewNotFoundError,
    answer_review,
    find_review,
    review_metrics,
)

ARN = "arn:aws:states:us-east-1:123456789012:execution:scones-inference-workflow:abc"


@pytest.mark.parametrize("answer, expected", [
    ({"label": "bicycle", "reviewer": "ana"}, {"label": "bicycle", "reviewer": "ana", "note": ""}),
    ({"label": " Motorcycle ", "reviewer": " bo ", "note": " dark "}, {"label": "motorcycle", "reviewer": "bo",
                                                                       "note": "dark"}),
    ('{"label": "bicycle", "reviewer": "ana", "note": null}', {"label": "bicycle", "reviewer": "ana", "note": ""}),
])
def test_a_valid_answer_is_cleaned(answer, expected):
    assert review_lambda.validate_answer(answer) == expected


@pytest.mark.parametrize("answer, message", [
    ({"label": "car", "reviewer": "ana"}, "'car' is not one of the classes bicycle, motorcycle"),
    ({"label": True, "reviewer": "ana"}, "is not one of the classes"),
    ({"label": "bicycle"}, "reviewer must name who answered"),
    ({"label": "bicycle", "reviewer": "x" * 200}, "reviewer must name who answered"),
    ({"label": "bicycle", "reviewer": "ana", "note": 3}, "note must be text"),
    (["bicycle"], "got a JSON array"),
    ("bicycle", "the answer is not JSON"),
])
def test_an_answer_that_is_not_valid_is_named(answer, message):
    with pytest.raises(review_lambda.InvalidReviewAnswerError, match=message):
        review_lambda.validate_answer(answer)


def test_the_request_carries_prediction_confidence_image_and_hash():
    image = b"\x89PNG\r\n\x1a\nbytes"
    workflow = {"s3_bucket": "b", "s3_key": "incoming/1.png", "inferences": [0.4, 0.6],
                "image_data": base64.b64encode(image).decode(), "low_confidence": {"Error": "ThresholdConfidenceError"}}
    request = review_lambda.build_request(workflow, ARN, "pkg/3", 60, "2026-01-01T00:00:00+00:00")
    assert request["image"] == "s3://b/incoming/1.png" and request["image_sha256"] == hashlib.sha256(image).hexdigest()
    assert request["prediction"] == "motorcycle" and request["confidence"] == 0.6 and request["timeout_seconds"] == 60
    assert request["review_id"] == review_lambda.review_id_of(ARN) and len(request["review_id"]) == 16
    assert request["labels"] == ["bicycle", "motorcycle"] and request["problem"] is None
    with pytest.raises(review_lambda.InvalidEventError, match="probabilities"):
        review_lambda.build_request({**workflow, "inferences": [float("nan")]}, ARN, "", 60, "")
    with pytest.raises(review_lambda.InvalidEventError, match="s3_bucket"):
        review_lambda.build_request({"inferences": [0.5, 0.5]}, ARN, "", 60, "")


def test_the_record_holds_what_retraining_and_the_report_need():
    review = review_lambda.build_request({"s3_bucket": "b", "s3_key": "k.png", "inferences": [0.55, 0.45]}, ARN,
                                         "pkg/3", 60, "2026-01-01T00:00:00+00:00")
    record = review_lambda.build_record(review, {"label": "motorcycle", "reviewer": "ana", "note": ""},
                                        "2026-01-01T00:05:00+00:00")
    assert {k: record[k] for k in ("image", "label", "reviewer", "model_prediction", "model_confidence",
                                   "model_package", "answered_at")} == {
        "image": "s3://b/k.png", "label": "motorcycle", "reviewer": "ana", "model_prediction": "bicycle",
        "model_confidence": 0.55, "model_package": "pkg/3", "answered_at": "2026-01-01T00:05:00+00:00"}
    assert "image_sha256" in record and record["recorded_by"] == "workflow"


@pytest.mark.parametrize("event, message", [(None, "JSON object"), ({"step": "guess"}, "'request' or 'record'"),
                                            ({"step": "record", "workflow": {}}, "with its 'review'")])
def test_events_that_are_not_a_step_are_named(event, message):
    with pytest.raises(review_lambda.InvalidEventError, match=message):
        review_lambda.lambda_handler(event, None)


def test_the_review_time_must_be_sensible(monkeypatch):
    monkeypatch.setenv("REVIEW_TIMEOUT_SECONDS", "0")
    with pytest.raises(review_lambda.ReviewConfigError, match="outside 1 s to one year"):
        review_lambda._timeout_seconds()


def _pending(review_id: str, status: str = "waiting") -> PendingReview:
    return PendingReview({"review_id": review_id, "execution_arn": ARN}, status)


def test_a_review_is_found_by_its_id_or_an_unambiguous_start():
    pending = [_pending("abcd1234ef"), _pending("abcd9999ef"), _pending("ffff0000aa")]
    assert find_review(pending, "ffff").review_id == "ffff0000aa"
    assert find_review(pending, "ABCD1234EF").review_id == "abcd1234ef"
    with pytest.raises(AmbiguousReviewIdError, match="give more of it"):
        find_review(pending, "abcd")
    with pytest.raises(ReviewNotFoundError, match="scones-review list"):
        find_review(pending, "abc")          # too short to be a prefix


def test_an_answer_is_checked_before_any_aws_call():
    with pytest.raises(InvalidAnswerError, match="not one of the classes"):
        answer_review(None, None, None, None, "abcd", "car", "ana")


def test_review_rate_agreement_and_median_time_to_answer():
    labels = [{"review_id": "a", "label": "bicycle", "model_prediction": "bicycle",
               "requested_at": "2026-01-01T00:00:00+00:00", "answered_at": "2026-01-01T00:01:00+00:00"},
              {"review_id": "b", "label": "motorcycle", "model_prediction": "bicycle",
               "requested_at": "2026-01-01T00:00:00+00:00", "answered_at": "2026-01-01T00:03:00+00:00"},
              {"review_id": "c", "label": "motorcycle", "model_prediction": "motorcycle",
               "requested_at": "2026-01-01T00:00:00+00:00", "answered_at": "2026-01-01T00:10:00+00:00"}]
    metrics = review_metrics(labels, [{"review_id": "d"}, {"review_id": "a"}], executions=20)
    assert (metrics.requested, metrics.answered, metrics.pending) == (4, 3, 1)
    assert metrics.review_rate == 0.2 and metrics.agreement == pytest.approx(2 / 3)
    assert metrics.median_answer_seconds == 180 and metrics.by_label == {"bicycle": 1, "motorcycle": 2}
    empty = review_metrics([], [], executions=0)
    assert empty.review_rate is None and empty.agreement is None and empty.median_answer_seconds is None
