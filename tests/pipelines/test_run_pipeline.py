"""upsert() against moto: create, then the update path; the run-pipeline CLI's refusals and wait logic.

The real start-and-wait path (executions that run) is tested against ``scones-local serve`` in
tests/local_runtime/moto_ext/test_pipeline_executions.py."""
import hashlib
import json

import boto3
import pytest
from moto import mock_aws

from pipelines.scones import cli, launch
from pipelines.scones.pipeline import get_pipeline
from scones_common.config import load_config

ROLE = "arn:aws:iam::123456789012:role/sm"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(key, value)
    from local_runtime.moto_ext import pipeline_executions

    pipeline_executions.install()     # as in every local stack: moto alone refuses to pretend an execution ran
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="scones-unlimited-ml-dev")
        yield boto3.client("sagemaker")


def test_upsert_creates_then_updates(aws):
    config = load_config(environment="dev", environ={}, overrides={"pipeline.role_arn": ROLE})
    get_pipeline(config).upsert(role_arn=ROLE)
    first = aws.describe_pipeline(PipelineName=config.pipeline.name)
    assert json.loads(first["PipelineDefinition"])["Steps"][0]["Name"] == "PrepareData"
    changed = load_config(environment="dev", environ={}, overrides={"pipeline.role_arn": ROLE,
                                                                    "training.hyperparameters.epochs": 7})
    get_pipeline(changed).upsert(role_arn=ROLE)
    second = json.loads(aws.describe_pipeline(PipelineName=config.pipeline.name)["PipelineDefinition"])
    epochs = next(p for p in second["Parameters"] if p["Name"] == "Epochs")
    assert epochs["DefaultValue"] == 7
    assert len(aws.list_pipelines()["PipelineSummaries"]) == 1


def test_run_pipeline_uploads_code_mirrors_data_and_upserts_but_moto_alone_does_not_fake_a_run(aws, cifar_archive, capsys):
    code = cli.run_pipeline(["--environment", "dev", "--role-arn", ROLE, "--data-source", str(cifar_archive)])
    assert code == 1 and "no local pipeline executor" in capsys.readouterr().err
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="scones-unlimited-ml-dev")["Contents"]]
    assert any(k.endswith("/processing/prepare_data.py") for k in keys)
    digest = hashlib.sha256(cifar_archive.read_bytes()).hexdigest()
    assert any(k.endswith(f"/raw/sha256-{digest}/cifar-100-python.tar.gz") for k in keys)
    assert aws.list_pipelines()["PipelineSummaries"][0]["PipelineName"] == "scones-vehicle-classifier"


def test_data_source_errors_are_one_named_line_with_exit_2(aws, tmp_path, capsys):
    code = cli.run_pipeline(["--environment", "dev", "--role-arn", ROLE, "--data-source", str(tmp_path / "missing.tar.gz")])
    err = capsys.readouterr().err
    assert code == 2 and "DataSourceError" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "DataSourceError" in line]) == 1


def test_run_pipeline_refuses_without_role(aws, capsys):
    assert cli.run_pipeline(["--environment", "dev"]) == 2
    assert "pipeline.role_arn" in capsys.readouterr().err


def test_get_pipeline_definition_prints_json(capsys):
    assert cli.get_pipeline_definition(["--environment", "local"]) == 0
    assert {s["Name"] for s in json.loads(capsys.readouterr().out)["Steps"]} >= {"PrepareData", "CheckAccuracy"}


def test_failed_execution_is_reported_with_its_failed_steps():
    """The waiter and the failed-step listing, checked against the real API shapes with a Stubber."""
    from botocore.stub import Stubber

    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc"
    with Stubber(sm) as stub:
        stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Executing"},
                          {"PipelineExecutionArn": arn})
        stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Failed"},
                          {"PipelineExecutionArn": arn})
        stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [
            {"StepName": "PrepareData", "StepStatus": "Succeeded"},
            {"StepName": "AccuracyBelowThreshold", "StepStatus": "Failed",
             "FailureReason": "Test accuracy 0.71 is below the AccuracyThreshold 0.85"}]}, {"PipelineExecutionArn": arn})
        assert launch.wait_for_execution(sm, arn, poll_seconds=0) == "Failed"
        assert launch.failed_steps(sm, arn) == ["AccuracyBelowThreshold: Test accuracy 0.71 is below the AccuracyThreshold 0.85"]
        stub.assert_no_pending_responses()


@pytest.mark.e2e
@pytest.mark.parametrize("source, code, needle", [
    ("http://127.0.0.1:9/cifar-100-python.tar.gz", 2, "DataSourceError: cannot download"),
    ("/nowhere/cifar-100-python.tar.gz", 2, "DataSourceError: data source '/nowhere/cifar-100-python.tar.gz'"),
    ("s3://scones-unreachable/cifar-100-python.tar.gz", 1, "AWS error: EndpointConnectionError"),
])
def test_an_unreachable_data_source_is_one_line_not_a_traceback(source, code, needle):
    from tests.console import run_script

    result = run_script("run-pipeline", "--environment", "dev", "--role-arn", ROLE, "--data-source", source,
                        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x",
                             "AWS_SECRET_ACCESS_KEY": "x", "AWS_MAX_ATTEMPTS": "1", "AWS_DEFAULT_REGION": "us-east-1"})
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
