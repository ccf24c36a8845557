"""A Lambda function a user creates runs, in its own execution environment, answering and logging as Lambda
does: print() in the log stream between START and END/REPORT, integer timestamps, Runtime.MarshalError, the
handler's own frames in stack traces, Runtime.ExitError for sys.exit, Sandbox.Timedout, and serve untouched."""
import base64
import json
import os

import pytest

from tests.builders import lambda_zip

HANDLER = '''import json, logging, os, sys, time
import helper

def lambda_handler(event, context):
    mode = event.get("mode") if isinstance(event, dict) else None
    print("hello from", context.function_name)
    if mode == "set":
        return {1, 2}
    if mode == "raise":
        helper.fail("bad input")
    if mode == "exit":
        sys.exit(3)
    if mode == "sleep":
        time.sleep(10)
    if mode == "log":
        logging.getLogger().warning("first\\nsecond")
    return {"env": os.environ.get("MY_SETTING"), "serve_env": os.environ.get("SCONES_ENVIRONMENT"),
            "helper": helper.__file__, "remaining": context.get_remaining_time_in_millis() > 0}
'''
HELPER = "def fail(message):\n    raise ValueError(message)\n"


@pytest.fixture(scope="module")
def function(local_stack):
    lam = local_stack.client("lambda")
    name = "users-own-function"
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=local_stack.resources.role_arn,
                        Handler="lambda_function.lambda_handler", Timeout=10,
                        Code={"ZipFile": lambda_zip({"lambda_function.py": HANDLER, "helper.py": HELPER})},
                        Environment={"Variables": {"MY_SETTING": "mine"}})
    return lam, name


def invoke(lam, name, event, **options):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **options)
    return response, json.loads(response["Payload"].read())


def test_a_users_function_runs_with_its_own_modules_and_environment(function):
    lam, name = function
    response, payload = invoke(lam, name, {"mode": "ok"}, LogType="Tail")
    assert "FunctionError" not in response
    assert payload["env"] == "mine" and payload["serve_env"] is None and payload["remaining"]
    assert payload["helper"].endswith("/helper.py")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert tail.startswith("START RequestId: ") and "hello from users-own-function" in tail
    assert "\nEND RequestId: " in tail and "\nREPORT RequestId: " in tail and "Billed Duration: " in tail


def test_print_and_logging_reach_the_log_stream_with_integer_timestamps(function, local_stack):
    lam, name = function
    invoke(lam, name, {"mode": "log"})
    logs = local_stack.client("logs")
    group = f"/aws/lambda/{name}"
    events = [e for s in logs.describe_log_streams(logGroupName=group)["logStreams"]
              for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]]
    messages = [e["message"] for e in events]
    assert any(m.startswith("hello from") for m in messages)
    warning = next(m for m in messages if m.startswith("[WARNING]\t"))
    assert warning.endswith("\tfirst\nsecond")          # one event per record, as the runtime logs it
    assert all(isinstance(e["timestamp"], int) for e in events)
    assert any(m.startswith("REPORT RequestId: ") for m in messages)


def test_a_result_that_is_not_json_is_a_marshal_error(function):
    lam, name = function
    response, payload = invoke(lam, name, {"mode": "set"})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.MarshalError"
    assert payload["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"


def test_a_stack_trace_shows_the_handlers_frames_only(function):
    lam, name = function
    response, payload = invoke(lam, name, {"mode": "raise"})
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "bad input"
    frames = payload["stackTrace"]
    assert frames[0].startswith('  File "/var/task/lambda_function.py"')
    assert frames[-1].startswith('  File "/var/task/helper.py"')
    assert not any("local_runtime" in frame or os.getcwd() in frame for frame in frames)


def test_sys_exit_ends_only_the_functions_environment(function, local_stack):
    lam, name = function
    response, payload = invoke(lam, name, {"mode": "exit"})
    assert payload["errorType"] == "Runtime.ExitError" and "exit status 3" in payload["errorMessage"]
    assert "FunctionError" not in invoke(lam, name, {"mode": "ok"})[0]       # a new environment, serve still up


def test_the_timeout_is_enforced(local_stack):
    lam = local_stack.client("lambda")
    lam.create_function(FunctionName="users-slow-function", Runtime="python3.12", Role=local_stack.resources.role_arn,
                        Handler="lambda_function.lambda_handler", Timeout=1,
                        Code={"ZipFile": lambda_zip({"lambda_function.py": HANDLER, "helper.py": HELPER})})
    response, payload = invoke(lam, "users-slow-function", {"mode": "sleep"})
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]


def test_an_import_error_is_the_runtimes(local_stack):
    lam = local_stack.client("lambda")
    lam.create_function(FunctionName="users-broken-function", Runtime="python3.12",
                        Role=local_stack.resources.role_arn, Handler="lambda_function.lambda_handler",
                        Code={"ZipFile": lambda_zip({"lambda_function.py": "import not_installed_anywhere\n"})})
    _, payload = invoke(lam, "users-broken-function", {})
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"].startswith("Unable to import module 'lambda_function': No module named")


def test_the_stacks_own_function_logs_start_end_and_report(local_stack):
    name = f"{local_stack.config.project.name}-filter-inferences"
    response, payload = invoke(local_stack.client("lambda"), name, {"inferences": [0.5, 0.5]}, LogType="Tail")
    assert payload["errorType"] == "ThresholdConfidenceError"
    assert payload["stackTrace"][0].startswith('  File "/var/task/lambda_function.py"')
    tail = base64.b64decode(response["LogResult"]).decode()
    assert tail.startswith("START RequestId: ") and "[ERROR] ThresholdConfidenceError: " in tail
    assert "\nREPORT RequestId: " in tail
