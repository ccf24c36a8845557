"""StartExecution's input is held to AWS's limits and error codes: over 256 KiB (UTF-8 bytes) is refused with the
service model's ValidationException, malformed JSON with InvalidExecutionInput and its message (not an empty code)."""
import json

import pytest
from botocore.exceptions import ClientError

from local_runtime.aws import local_aws
from local_runtime.moto_ext.step_functions import MAX_INPUT_BYTES

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture(scope="module")
def machine():
    with local_aws("us-east-1") as aws:
        sfn = aws.client("stepfunctions")
        arn = sfn.create_state_machine(name="limits", definition=DEFINITION,
                                       roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
        yield sfn, arn


def test_an_input_over_256_kib_is_refused_as_the_service_refuses_it(machine):
    sfn, arn = machine
    payload = json.dumps({"image": "x" * (300 * 1024)})            # the 300 KB probe
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=arn, input=payload)
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "Member must have length less than or equal to 262144" in error["Message"]
    assert "xxxx" not in error["Message"]                          # a sensitive value is never echoed


def test_the_limit_counts_utf8_bytes_and_an_input_at_the_limit_runs(machine):
    sfn, arn = machine
    at_limit = json.dumps({"t": "x" * (MAX_INPUT_BYTES - 9)})
    assert len(at_limit.encode()) == MAX_INPUT_BYTES
    assert sfn.start_execution(stateMachineArn=arn, input=at_limit)["executionArn"]
    wide = json.dumps({"t": "é" * (MAX_INPUT_BYTES // 2)}, ensure_ascii=False)     # fewer characters, more bytes
    assert len(wide) < MAX_INPUT_BYTES < len(wide.encode())
    with pytest.raises(ClientError, match="ValidationException"):
        sfn.start_execution(stateMachineArn=arn, input=wide)


@pytest.mark.parametrize("text", ["{not json", "", "{\"a\": 1"])
def test_malformed_json_is_invalid_execution_input_with_its_message(machine, text):
    sfn, arn = machine
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=arn, input=text)
    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidExecutionInput"
    assert error["Message"].startswith("Invalid State Machine Execution Input:")
