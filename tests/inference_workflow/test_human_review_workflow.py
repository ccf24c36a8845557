"""Human review on the local stack: the real ASL (moto's interpreter), the SQS callback, the in-process recording
Lambda, and ``scones-review``'s functions against the same APIs."""
import json
import time
import uuid

import pytest

from inference_workflow.review import (
    AnswerOutcome,
    ReviewStore,
    answer_review,
    list_reviews,
    task_token,
)
from scones_common.s3uri import parse_s3_uri
from tests.builders import solid_png

pytestmark = pytest.mark.e2e


def _start(stack, key: str, brightness: int = 128) -> str:
    stack.client("s3").put_object(Bucket=stack.config.storage.bucket, Key=key, Body=solid_png(brightness))
    return stack.client("stepfunctions").start_execution(
        stateMachineArn=stack.resources.state_machine_arn, name=uuid.uuid4().hex,
        input=json.dumps({"s3_bucket": stack.config.storage.bucket, "s3_key": key}))["executionArn"]


def _entered(sfn, arn: str) -> list[str]:
    history = sfn.get_execution_history(executionArn=arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def _waiting_for_review(sfn, arn: str, times: int = 1, timeout: float = 20.0) -> None:
    """Until the execution has sent its ``times``-th review request (its TaskSubmitted event)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=arn)["events"]
        if sum(e["type"] == "TaskSubmitted" and e["taskSubmittedEventDetails"]["resourceType"] == "sqs"
               for e in events) >= times:
            return
        time.sleep(0.05)
    raise AssertionError(f"{arn} did not request review {times}: entered {_entered(sfn, arn)}")


def _until_ended(sfn, arn: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
    return described


def _messages(stack) -> list[dict]:
    """What a reviewer's tool receives from the queue (the test plays that tool)."""
    sqs = stack.client("sqs")
    received = sqs.receive_message(QueueUrl=stack.resources.review_queue_url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def _labels(stack) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=stack.config.storage.bucket,
                                                Prefix=f"{stack.config.storage.prefix}/human-labels/")
    return [o["Key"] for o in listed.get("Contents", [])]


@pytest.fixture(scope="module")
def store(local_stack) -> ReviewStore:
    return ReviewStore.of(local_stack.config)


def test_a_low_confidence_image_waits_for_a_person_and_the_answer_ends_it_with_the_label(local_stack, store):
    sfn, s3 = local_stack.client("stepfunctions"), local_stack.client("s3")
    arn = _start(local_stack, "review-tests/incoming/grey.png")
    _waiting_for_review(sfn, arn)
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    body = next(m for m in _messages(local_stack) if m["execution"] == arn)
    assert body["image"] == f"s3://{local_stack.config.storage.bucket}/review-tests/incoming/grey.png"
    assert body["prediction"] in ("bicycle", "motorcycle") and body["confidence"] < 0.93
    assert len(body["inferences"]) == 2 and body["taskToken"] == task_token(sfn, arn)

    pending = list_reviews(s3, sfn, store)
    review = next(p for p in pending if p.record["execution_arn"] == arn)
    assert review.execution_status == "waiting" and len(review.record["image_sha256"]) == 64

    sfn.send_task_success(taskToken=body["taskToken"], output=json.dumps(
        {"label": "motorcycle", "reviewer": "ana@scones", "note": "a scooter, really"}))
    described = _until_ended(sfn, arn)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["predicted_label"] == "motorcycle" and output["label_source"] == "human"
    assert output["reviewer"] == "ana@scones" and output["model_prediction"] == body["prediction"]
    key = f"{local_stack.config.storage.prefix}/human-labels/{review.review_id}.json"
    record = json.loads(s3.get_object(Bucket=local_stack.config.storage.bucket, Key=key)["Body"].read())
    assert record["label"] == "motorcycle" and record["image"] == body["image"]
    assert record["image_sha256"] == review.record["image_sha256"] and record["model_package"] == local_stack.package_arn
    assert record["model_confidence"] == body["confidence"] and record["answered_at"] >= record["requested_at"]
    assert all(p.review_id != review.review_id for p in list_reviews(s3, sfn, store))     # no longer pending

    # the same answer delivered again: the token is spent, nothing is recorded twice
    with pytest.raises(sfn.exceptions.ClientError) as refused:
        sfn.send_task_success(taskToken=body["taskToken"], output=json.dumps({"label": "bicycle", "reviewer": "bo"}))
    assert refused.value.response["Error"]["Code"] in ("InvalidToken", "TaskTimedOut", "TaskDoesNotExist")
    again = answer_review(s3, sfn, local_stack.client("lambda"), store, review.review_id, "bicycle", "bo")
    assert isinstance(again, AnswerOutcome) and again.label == "motorcycle" and "already answered" in again.how
    assert _labels(local_stack).count(key) == 1
    assert json.loads(s3.get_object(Bucket=local_stack.config.storage.bucket, Key=key)["Body"].read()) == record


def test_an_answer_that_is_not_a_class_asks_again_with_a_new_token(local_stack, store):
    sfn, s3 = local_stack.client("stepfunctions"), local_stack.client("s3")
    arn = _start(local_stack, "review-tests/incoming/grey-2.png", 120)
    _waiting_for_review(sfn, arn)
    first = task_token(sfn, arn)
    sfn.send_task_success(taskToken=first, output=json.dumps({"label": "car", "reviewer": "ana"}))
    _waiting_for_review(sfn, arn, times=2)
    second = task_token(sfn, arn)
    assert second and second != first and sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert _entered(sfn, arn)[-3:] == ["RequestReview", "RecordReview", "RequestReview"]
    message = next(m for m in _messages(local_stack) if m["taskToken"] == second)
    assert "car" in message["problem"]["Cause"] and message["problem"]["Error"] == "InvalidReviewAnswerError"

    review = next(p for p in list_reviews(s3, sfn, store) if p.record["execution_arn"] == arn)
    outcome = answer_review(s3, sfn, local_stack.client("lambda"), store, review.review_id[:6], "bicycle", "ana")
    assert outcome.execution_status == "SUCCEEDED" and outcome.record_uri.endswith(f"{review.review_id}.json")
    assert json.loads(_until_ended(sfn, arn)["output"])["predicted_label"] == "bicycle"


def test_nobody_answering_ends_in_review_timed_out(local_stack, store):
    lam, sfn, s3 = local_stack.client("lambda"), local_stack.client("stepfunctions"), local_stack.client("s3")
    function = local_stack.resources.review_function_arn
    variables = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=function,
                                      Environment={"Variables": {**variables, "REVIEW_TIMEOUT_SECONDS": "1"}})
    try:
        arn = _start(local_stack, "review-tests/incoming/grey-3.png")
        described = _until_ended(sfn, arn)
    finally:
        lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    assert described["status"] == "FAILED" and described["error"] == "ReviewTimedOut", described
    assert _entered(sfn, arn)[-1] == "ReviewTimedOut"
    closed = next(p for p in list_reviews(s3, sfn, store, include_closed=True) if p.record["execution_arn"] == arn)
    assert not closed.open and closed.execution_status == "FAILED"
    assert all(p.record["execution_arn"] != arn for p in list_reviews(s3, sfn, store))   # not listed as waiting


def test_the_queue_has_a_dead_letter_queue(local_stack):
    sqs = local_stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=local_stack.resources.review_queue_url,
                                          AttributeNames=["RedrivePolicy", "QueueArn"])["Attributes"]
    dead_letter = sqs.get_queue_attributes(QueueUrl=local_stack.resources.review_dead_letter_queue_url,
                                           AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert "review" in attributes["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dead_letter, "maxReceiveCount": 5}


def test_a_review_whose_execution_is_gone_is_still_listed_and_answered_from_the_command_line(local_stack, store,
                                                                                             capsys):
    """Locally a waiting execution lives in the serving process; after a restart its saved request remains (an S3
    record, saved like every object) and ``scones-review answer`` records the label through the recording function."""
    from inference_workflow import review as cli

    sfn, s3 = local_stack.client("stepfunctions"), local_stack.client("s3")
    arn = _start(local_stack, "review-tests/incoming/grey-4.png")
    _waiting_for_review(sfn, arn)
    saved = next(p for p in list_reviews(s3, sfn, store) if p.record["execution_arn"] == arn).record
    sfn.stop_execution(executionArn=arn)
    gone = {**saved, "review_id": "0123456789abcdef", "execution_arn": arn.replace(arn.rsplit(":", 1)[1], "gone")}
    pending = parse_s3_uri(f"{store.pending_uri}/{gone['review_id']}.json")
    s3.put_object(Bucket=pending.bucket, Key=pending.key, Body=json.dumps(gone).encode())
    s3.delete_object(Bucket=pending.bucket, Key=f"{parse_s3_uri(store.pending_uri).key}/{saved['review_id']}.json")

    assert cli.main(["--environment", "local", "list"]) == 0
    listed = capsys.readouterr().out
    assert "0123456789abcdef" in listed and "gone" in listed and "scones-review answer ID" in listed
    assert cli.main(["--environment", "local", "answer", "01234567", "bicycle", "--reviewer", "cy"]) == 0
    assert "recorded directly (the execution that asked is gone)" in capsys.readouterr().out
    record = json.loads(s3.get_object(Bucket=local_stack.config.storage.bucket,
                                      Key=f"{local_stack.config.storage.prefix}/human-labels/0123456789abcdef.json")[
        "Body"].read())
    assert record["label"] == "bicycle" and record["reviewer"] == "cy" and record["recorded_by"] == "direct"
    assert cli.main(["--environment", "local", "answer", "0123456789abcdef", "motorcycle", "--reviewer", "dee"]) == 0
    assert "already answered by cy" in capsys.readouterr().out                         # not recorded twice
    assert cli.main(["--environment", "local", "answer", "0123456789abcdef", "car", "--reviewer", "dee"]) == 2
    assert "InvalidAnswerError" in capsys.readouterr().err
