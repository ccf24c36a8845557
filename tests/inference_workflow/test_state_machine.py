"""The real ASL, validated and executed on the local runtime (moto's interpreter, in-process Lambdas)."""
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from inference_workflow.executions import run_execution
from local_runtime.provision import ASL_PATH, render_definition
from tests.builders import solid_png

STATELINT = shutil.which("statelint") or str(Path(sys.executable).parent / "statelint")


def test_statelint_accepts_definition():
    result = subprocess.run([STATELINT, "--ignore=FLOAT", str(ASL_PATH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_statelint_catches_a_deliberate_error(tmp_path):
    broken = json.loads(ASL_PATH.read_text())
    broken["States"]["ClassifyImage"]["Next"] = "NoSuchState"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(broken))
    result = subprocess.run([STATELINT, "--ignore=FLOAT", str(path)], capture_output=True, text=True)
    assert result.returncode != 0 and "NoSuchState" in result.stdout + result.stderr


def test_structure_is_jsonpath_lambda_invoke():
    asl = json.loads(ASL_PATH.read_text())
    assert asl["StartAt"] == "SerializeImageData"
    tasks = {name: s for name, s in asl["States"].items() if s["Type"] == "Task"}
    assert len(tasks) == 6 and "QueryLanguage" not in asl
    for name, task in tasks.items():
        assert task["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name          # no error leaves a task uncaught
        for catch in task["Catch"]:     # into a Fail state the error replaces the input (works for any input shape)
            assert catch["ResultPath"] == "$" or asl["States"][catch["Next"]]["Type"] == "Task", (name, catch)
        if name == "RequestReview":
            continue
        assert task["Resource"] == "arn:aws:states:::lambda:invoke"
        assert task["OutputPath"] == "$.Payload"
        assert any("Lambda.TooManyRequestsException" in r["ErrorEquals"] for r in task["Retry"])
    classify_retry = {e for r in asl["States"]["ClassifyImage"]["Retry"] for e in r["ErrorEquals"]}
    assert {"ThrottlingException", "ModelError"} <= classify_retry


def test_low_confidence_goes_to_a_person_through_the_sqs_callback():
    states = json.loads(ASL_PATH.read_text())["States"]
    assert "LowConfidence" not in states           # the image is no longer dropped
    to_review = states["FilterInferences"]["Catch"][0]
    assert to_review == {"ErrorEquals": ["ThresholdConfidenceError"], "ResultPath": "$.low_confidence",
                         "Next": "PrepareReview"}
    request = states["RequestReview"]
    assert request["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    body = request["Parameters"]["MessageBody"]
    assert body["taskToken.$"] == "$$.Task.Token"
    assert {"image.$", "prediction.$", "confidence.$", "inferences.$"} <= set(body)
    assert request["TimeoutSecondsPath"] == "$.review.timeout_seconds"
    assert request["Catch"][0] == {"ErrorEquals": ["States.Timeout", "States.HeartbeatTimeout"], "ResultPath": "$",
                                   "Next": "ReviewTimedOut"}
    assert states["ReviewTimedOut"] == {**states["ReviewTimedOut"], "Type": "Fail", "Error": "ReviewTimedOut"}
    invalid = states["RecordReview"]["Catch"][0]
    assert invalid["ErrorEquals"] == ["InvalidReviewAnswerError"] and invalid["Next"] == "RequestReview"
    assert states["RecordReview"].get("End") is True


def test_rendering_leaves_no_placeholder():
    with pytest.raises(ValueError, match="unsubstituted"):
        render_definition({"SerializeImageDataFunctionArn": "arn:x"})


def _upload(stack, key: str, body: bytes) -> dict:
    stack.client("s3").put_object(Bucket=stack.config.storage.bucket, Key=key, Body=body)
    return {"s3_bucket": stack.config.storage.bucket, "s3_key": key}


def test_confident_image_succeeds(local_stack):
    event = _upload(local_stack, "sm-tests/test/bicycle/bright.png", solid_png(255))
    result = run_execution(local_stack.client("stepfunctions"), local_stack.resources.state_machine_arn, event)
    assert result.status == "SUCCEEDED", result.error
    assert result.predicted_label == "bicycle" and result.confidence > 0.99
    history = local_stack.client("stepfunctions").get_execution_history(executionArn=result.execution_arn)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["SerializeImageData", "ClassifyImage", "FilterInferences"]


def test_low_confidence_image_waits_for_review(local_stack):
    event = _upload(local_stack, "sm-tests/test/motorcycle/grey.png", solid_png(128))
    sfn = local_stack.client("stepfunctions")
    result = run_execution(sfn, local_stack.resources.state_machine_arn, event, timeout=30)
    assert result.status == "RUNNING"          # answered in tests/inference_workflow/test_human_review_workflow.py
    assert result.outcome == "WAITING_FOR_REVIEW" and result.seconds < 10     # returned once the request was sent
    history = sfn.get_execution_history(executionArn=result.execution_arn)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["SerializeImageData", "ClassifyImage", "FilterInferences", "PrepareReview", "RequestReview"]
    sfn.stop_execution(executionArn=result.execution_arn)


def test_missing_object_fails_as_bad_input(local_stack):
    event = {"s3_bucket": local_stack.config.storage.bucket, "s3_key": "sm-tests/test/none.png"}
    result = run_execution(local_stack.client("stepfunctions"), local_stack.resources.state_machine_arn, event)
    assert result.status == "FAILED" and result.error.startswith("ImageNotFoundError")


def test_corrupt_image_is_a_model_error_after_retries(local_stack):
    event = _upload(local_stack, "sm-tests/test/bicycle/corrupt.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    result = run_execution(local_stack.client("stepfunctions"), local_stack.resources.state_machine_arn, event,
                           timeout=30)
    assert result.status == "FAILED" and result.error.startswith("ModelError")


@pytest.mark.parametrize("workflow_input", ["[1, 2]", "3", "null", '"an image please"', "true", "{}"])
def test_input_that_is_not_an_object_ends_in_bad_input(local_stack, workflow_input):
    sfn = local_stack.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=local_stack.resources.state_machine_arn, name=uuid.uuid4().hex,
                              input=workflow_input)["executionArn"]
    deadline = time.monotonic() + 30
    while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert description["status"] == "FAILED" and description["error"] == "InvalidEventError"
    message = json.loads(description["cause"])["errorMessage"]
    assert "must be a JSON object" in message or "needs non-empty 's3_bucket' and 's3_key'" in message
    history = sfn.get_execution_history(executionArn=arn)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["SerializeImageData", "BadInput"]
