"""Canary for the one moto internal we replace: fails loudly if a moto upgrade moves it."""
import inspect
import json

from moto.awslambda.models import LambdaFunction

from local_runtime.moto_ext import lambda_invoker


def test_moto_hook_still_has_the_expected_signature():
    lambda_invoker.install()
    assert LambdaFunction._invoke_lambda is lambda_invoker.invoke_lambda
    from moto.awslambda import models

    source = inspect.getsource(models.LambdaFunction.invoke)
    assert "self._invoke_lambda(event=body)" in source, "moto's LambdaFunction.invoke no longer calls _invoke_lambda(event=...)"
    assert "res, errored, logs" in source, "moto expects a different return shape from _invoke_lambda"
    assert 'body = "{}"' in source and "json.loads(body)" in source, \
        "moto no longer decodes payloads and passes an empty one as the string '{}': see lambda_invoker._EMPTY_PAYLOAD"
    assert '"Handled"' in source, "moto reports function errors differently now: see lambda_invoker._reporting_unhandled"
    assert getattr(LambdaFunction.invoke, "__scones_unhandled__", False)


def test_error_document_names_the_exception():
    class ThresholdConfidenceError(Exception):
        pass

    document = lambda_invoker.error_document(ThresholdConfidenceError("too low"))
    assert document["errorType"] == "ThresholdConfidenceError" and document["errorMessage"] == "too low"
    json.dumps(document)


def test_function_environment_applies_and_restores(local_stack):
    import os

    lam = local_stack.client("lambda")
    name = f"{local_stack.config.project.name}-filter-inferences"
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"inferences": [0.5, 0.5]}).encode())
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] and payload["errorType"] == "ThresholdConfidenceError"
    assert "THRESHOLD" not in os.environ


def test_handler_logs_reach_cloudwatch_and_leave_the_process_log_level_alone(local_stack):
    import logging

    from tests.builders import solid_png

    root_level = logging.getLogger().level
    bucket = local_stack.config.storage.bucket
    local_stack.client("s3").put_object(Bucket=bucket, Key="logs-test/a.png", Body=solid_png(10))
    name = f"{local_stack.config.project.name}-serialize-image-data"
    response = local_stack.client("lambda").invoke(
        FunctionName=name, Payload=json.dumps({"s3_bucket": bucket, "s3_key": "logs-test/a.png"}).encode())
    assert "FunctionError" not in response
    assert logging.getLogger().level == root_level
    logs = local_stack.client("logs")
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    messages = [e["message"] for s in streams
                for e in logs.get_log_events(logGroupName=f"/aws/lambda/{name}", logStreamName=s["logStreamName"])["events"]]
    assert any("serialized s3://" in m and "logs-test/a.png" in m for m in messages)


def test_code_is_unpacked_into_a_private_folder_never_a_planted_one(local_stack, tmp_path, monkeypatch):
    """The old invoker unpacked into <tmp>/scones-local-lambda/<function>-<sha> and reused it if present.
    The temp folder is this test's own, so nothing is planted where other processes look."""
    import os
    import stat
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    name = f"{local_stack.config.project.name}-filter-inferences"
    sha = local_stack.client("lambda").get_function(FunctionName=name)["Configuration"]["CodeSha256"]
    planted = tmp_path / "scones-local-lambda" / f"{name}-{sha[:16].replace('/', '_')}"
    planted.mkdir(parents=True)
    marker = tmp_path / "marker"
    (planted / "lambda_function.py").write_text(
        f"import pathlib\ndef lambda_handler(event, context):\n    pathlib.Path({str(marker)!r}).write_text('ran')\n")
    lambda_invoker.install()        # a fresh server: a new private folder, every function cold and unpacked again
    response = local_stack.client("lambda").invoke(FunctionName=name,
                                                   Payload=json.dumps({"inferences": [0.99, 0.01]}).encode())
    assert "FunctionError" not in response and not marker.exists()
    root = lambda_invoker.unpack_root()
    assert root.parent == tmp_path and root != planted.parent
    assert stat.S_IMODE(root.stat().st_mode) == 0o700 and root.stat().st_uid == os.getuid()
