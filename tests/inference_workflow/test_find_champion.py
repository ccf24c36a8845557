"""The pipeline's champion lookup on moto: the endpoint's current model, else the newest approved package."""
import importlib

import boto3
import pytest
from moto import mock_aws

finder = importlib.import_module("inference_workflow.find_champion.lambda_function")
GROUP, ENDPOINT, CHALLENGER = "scones-vehicle-classifier", "scones-vehicle-classifier", "pipelines-abc-createmodel"
EVENT = {"model_package_group": GROUP, "endpoint_name": ENDPOINT, "challenger_model_name": CHALLENGER}
ROLE = "arn:aws:iam::123456789012:role/sm"


@pytest.fixture
def sagemaker(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("EXECUTION_ROLE_ARN", ROLE)
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        monkeypatch.setattr(finder, "sagemaker", client)
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        yield client


def _register(sm, job: str, status: str = "Approved") -> str:
    return sm.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
        InferenceSpecification={"Containers": [{"Image": "811284229777.dkr.ecr.us-east-1.amazonaws.com/ic:1",
                                                "ModelDataUrl": f"s3://b/models/{job}/output/model.tar.gz"}],
                                "SupportedContentTypes": ["image/png"],
                                "SupportedResponseMIMETypes": ["application/json"]})["ModelPackageArn"]


def _serve(sm, name: str, container: dict, endpoint: str = ENDPOINT) -> None:
    """A new endpoint serving a new model (never an update: with the local stack's endpoint patches installed by
    other test modules, an endpoint stays Creating for a moment, as on AWS)."""
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)


def test_no_endpoint_and_nothing_approved_means_no_champion(sagemaker):
    _register(sagemaker, "job-1", "PendingManualApproval")
    assert finder.lambda_handler(EVENT, None) == {"found": "false", "model_name": CHALLENGER, "model_package_arn": "",
                                                  "model_package_version": "", "source": "none"}


def test_the_champion_is_what_the_endpoint_serves_not_the_newest_approved(sagemaker):
    first = _register(sagemaker, "job-1")
    _register(sagemaker, "job-2")        # approved later, but the endpoint still serves v1
    _serve(sagemaker, f"{ENDPOINT}-v1", {"ModelPackageName": first})
    assert finder.lambda_handler(EVENT, None) == {"found": "true", "model_name": f"{ENDPOINT}-v1",
                                                  "model_package_arn": first, "model_package_version": "1",
                                                  "source": "endpoint"}


def test_a_model_served_from_an_artifact_is_traced_to_its_package(sagemaker):
    _register(sagemaker, "job-1")
    second = _register(sagemaker, "job-2", "Rejected")
    _serve(sagemaker, "hand-made", {"Image": "img", "ModelDataUrl": "s3://b/models/job-2/output/model.tar.gz"})
    answer = finder.lambda_handler(EVENT, None)
    assert (answer["model_name"], answer["model_package_arn"], answer["source"]) == ("hand-made", second, "endpoint")
    _serve(sagemaker, "unregistered", {"Image": "img", "ModelDataUrl": "s3://b/elsewhere/model.tar.gz"}, "other")
    answer = finder.lambda_handler({**EVENT, "endpoint_name": "other"}, None)
    assert (answer["found"], answer["model_name"], answer["model_package_arn"]) == ("true", "unregistered", "")


def test_without_an_endpoint_the_newest_approved_package_is_the_champion_and_gets_its_model(sagemaker):
    _register(sagemaker, "job-1")
    newest = _register(sagemaker, "job-2")
    _register(sagemaker, "job-3", "Rejected")
    answer = finder.lambda_handler(EVENT, None)
    assert answer == {"found": "true", "model_name": f"{ENDPOINT}-v2", "model_package_arn": newest,
                      "model_package_version": "2", "source": "registry"}
    model = sagemaker.describe_model(ModelName=f"{ENDPOINT}-v2")
    assert model["PrimaryContainer"]["ModelPackageName"] == newest and model["ExecutionRoleArn"] == ROLE
    assert finder.lambda_handler(EVENT, None) == answer        # the model exists now: reused


def test_without_a_role_a_missing_model_is_a_named_error(sagemaker, monkeypatch):
    monkeypatch.delenv("EXECUTION_ROLE_ARN")
    _register(sagemaker, "job-1")
    with pytest.raises(finder.ChampionModelError, match="EXECUTION_ROLE_ARN"):
        finder.lambda_handler(EVENT, None)


@pytest.mark.parametrize("event", [None, [], {**EVENT, "endpoint_name": ""},
                                   {k: v for k, v in EVENT.items() if k != "challenger_model_name"}])
def test_bad_events_are_named(sagemaker, event):
    with pytest.raises(finder.InvalidEventError):
        finder.lambda_handler(event, None)
