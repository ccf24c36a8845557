"""The pipeline's registry lookup on moto: which package, if any, already holds a model artifact."""
import importlib

import boto3
import pytest
from moto import mock_aws

finder = importlib.import_module("inference_workflow.find_registered_model.lambda_function")
GROUP = "scones-vehicle-classifier"


@pytest.fixture
def sagemaker(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        monkeypatch.setattr(finder, "sagemaker", client)
        yield client


def _register(sm, url: str, status: str = "Approved") -> str:
    return sm.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
        InferenceSpecification={"Containers": [{"Image": "811284229777.dkr.ecr.us-east-1.amazonaws.com/ic:1",
                                                "ModelDataUrl": url}],
                                "SupportedContentTypes": ["image/png"],
                                "SupportedResponseMIMETypes": ["application/json"]})["ModelPackageArn"]


def test_no_group_yet_means_not_registered(sagemaker):
    result = finder.lambda_handler({"model_package_group": GROUP, "model_data_url": "s3://b/m/model.tar.gz"}, None)
    assert result == {"registered": "false", "model_package_arn": "", "approval_status": ""}


def test_finds_the_package_holding_the_artifact(sagemaker):
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    first = _register(sagemaker, "s3://b/models/job-1/output/model.tar.gz", "Rejected")
    _register(sagemaker, "s3://b/models/job-2/output/model.tar.gz")
    result = finder.lambda_handler({"model_package_group": GROUP,
                                    "model_data_url": "s3://b/models/job-1/output/model.tar.gz"}, None)
    assert result == {"registered": "true", "model_package_arn": first, "approval_status": "Rejected"}
    other = finder.lambda_handler({"model_package_group": GROUP, "model_data_url": "s3://b/models/job-3/model.tar.gz"},
                                  None)
    assert other["registered"] == "false"


@pytest.mark.parametrize("event", [None, [], {"model_package_group": GROUP}, {"model_package_group": "",
                                                                              "model_data_url": "s3://b/m"},
                                   {"model_package_group": GROUP, "model_data_url": "/tmp/model.tar.gz"}])
def test_bad_events_are_named(sagemaker, event):
    with pytest.raises(finder.InvalidEventError):
        finder.lambda_handler(event, None)
