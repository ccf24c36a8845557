"""StartPipelineExecution honours ClientRequestToken as SageMaker does (moto alone starts a new execution each
time): a repeated token answers the execution it started, also after the state is saved and restored. The
start-retraining Lambda relies on it so that a redelivered EventBridge event starts one run."""
import json

import boto3
import pytest
from moto import mock_aws

from local_runtime.moto_ext import pipeline_executions
from tests.builders import RecordingExecutions

TOKEN = "a" * 64


@pytest.fixture
def sagemaker(monkeypatch):
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(key, value)
    pipeline_executions.install()
    handler = RecordingExecutions()
    pipeline_executions.attach(handler)
    try:
        with mock_aws():
            sm = boto3.client("sagemaker")
            sm.create_pipeline(PipelineName="p", RoleArn="arn:aws:iam::123456789012:role/sm",
                               PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": [], "Parameters": []}))
            yield sm, handler
    finally:
        pipeline_executions.detach(handler)


def test_a_repeated_token_answers_the_execution_it_started(sagemaker):
    sm, handler = sagemaker
    first = sm.start_pipeline_execution(PipelineName="p", ClientRequestToken=TOKEN)["PipelineExecutionArn"]
    assert sm.start_pipeline_execution(PipelineName="p", ClientRequestToken=TOKEN)["PipelineExecutionArn"] == first
    other = sm.start_pipeline_execution(PipelineName="p", ClientRequestToken="b" * 64)["PipelineExecutionArn"]
    untokened = [sm.start_pipeline_execution(PipelineName="p")["PipelineExecutionArn"] for _ in range(2)]
    assert len({first, other, *untokened}) == 4          # botocore fills in a fresh token when none is given
    assert [arn for arn, _ in handler.submitted] == [first, other, *untokened]


def test_the_token_survives_a_restart(sagemaker):
    sm, handler = sagemaker
    first = sm.start_pipeline_execution(PipelineName="p", ClientRequestToken=TOKEN)["PipelineExecutionArn"]
    saved = json.loads(json.dumps(pipeline_executions.snapshot("us-east-1")))
    assert saved[0]["ClientRequestToken"] == TOKEN
    pipeline = pipeline_executions._backend("us-east-1").pipelines["p"]
    pipeline.pipeline_executions.clear()
    assert pipeline_executions.restore("us-east-1", saved) == 1
    assert sm.start_pipeline_execution(PipelineName="p", ClientRequestToken=TOKEN)["PipelineExecutionArn"] == first
    assert [arn for arn, _ in handler.submitted] == [first]
    saved[0].pop("ClientRequestToken")                   # state saved before tokens were kept still restores
    pipeline.pipeline_executions.clear()
    assert pipeline_executions.restore("us-east-1", saved) == 1
