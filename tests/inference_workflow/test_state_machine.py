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
    tasks = [s for s in asl["States"].values() if s["Type"] == "Task"]
    assert len(tasks) == 3 and "QueryLanguage" not in asl
    for task in tasks:
        assert task["Resource"] == "arn:aws:states:::lambda:invoke"
        assert task["OutputPath"] == "$.Payload" and task["Parameters"]["Payload.$"] == "$"
        assert any("Lambda.TooManyRequestsException" in r["ErrorEquals"] for r in task["Retry"])
        assert task["Catch"][-1]["ErrorEquals"] == ["States.ALL"]              # no error leaves a task uncaught
        assert all(c["ResultPath"] == "$" for c in task["Catch"])              # works for any input shape
    classify_retry = {e for r in asl["States"]["ClassifyImage"]["Retry"] for e in r["ErrorEquals"]}
    assert {"ThrottlingException", "ModelError"} <= classify_retry
    assert asl["States"]["LowConfidence"]["Error"] == "ThresholdConfidenceError"


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


def test_low_confidence_image_fails_with_named_error(local_stack):
    event = _upload(local_stack, "sm-tests/test/motorcycle/grey.png", solid_png(128))
    result = run_execution(local_stack.client("stepfunctions"), local_stack.resources.state_machine_arn, event)
    assert result.status == "FAILED"
    assert result.error.startswith("ThresholdConfidenceError") and "below the threshold 0.93" in result.error


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
