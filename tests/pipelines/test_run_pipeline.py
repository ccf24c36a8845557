"""upsert() against moto: create, then the update path; the run-pipeline CLI end to end."""
import hashlib
import json

import boto3
import pytest
from moto import mock_aws

from pipelines.scones import cli
from pipelines.scones.pipeline import get_pipeline
from scones_common.config import load_config

ROLE = "arn:aws:iam::123456789012:role/sm"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(key, value)
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


def test_run_pipeline_uploads_code_mirrors_data_and_starts(aws, cifar_archive, capsys):
    code = cli.run_pipeline(["--environment", "dev", "--role-arn", ROLE, "--data-source", str(cifar_archive)])
    assert code == 0
    arn = json.loads(capsys.readouterr().out)["pipeline_execution_arn"]
    assert arn.startswith("arn:aws:sagemaker:us-east-1:123456789012:pipeline/scones-vehicle-classifier/execution/")
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="scones-unlimited-ml-dev")["Contents"]]
    assert any(k.endswith("/processing/prepare_data.py") for k in keys)
    digest = hashlib.sha256(cifar_archive.read_bytes()).hexdigest()
    assert any(k.endswith(f"/raw/sha256-{digest}/cifar-100-python.tar.gz") for k in keys)
    parameters = {p["Name"]: p["Value"] for p in aws.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=arn)["PipelineParameters"]}
    assert parameters["InputDataUri"].endswith(f"/raw/sha256-{digest}/cifar-100-python.tar.gz")
    assert parameters["DataSource"] == f"sha256:{digest} {cifar_archive}"


def test_run_pipeline_refuses_without_role(aws, capsys):
    assert cli.run_pipeline(["--environment", "dev"]) == 2
    assert "pipeline.role_arn" in capsys.readouterr().err


def test_get_pipeline_definition_prints_json(capsys):
    assert cli.get_pipeline_definition(["--environment", "local"]) == 0
    assert {s["Name"] for s in json.loads(capsys.readouterr().out)["Steps"]} >= {"PrepareData", "CheckAccuracy"}


def test_run_pipeline_wait_succeeds_when_the_execution_does(aws, cifar_archive):
    assert cli.run_pipeline(["--environment", "dev", "--role-arn", ROLE, "--data-source", str(cifar_archive),
                             "--wait", "--poll-seconds", "0"]) == 0


def test_failed_execution_is_reported_with_its_failed_steps():
    """moto's executions always succeed and it has no ListPipelineExecutionSteps: the failure path's
    requests are checked against the real API shapes with a Stubber."""
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
        assert cli.wait_for_execution(sm, arn, poll_seconds=0) == "Failed"
        assert cli.failed_steps(sm, arn) == ["AccuracyBelowThreshold: Test accuracy 0.71 is below the AccuracyThreshold 0.85"]
        stub.assert_no_pending_responses()


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
