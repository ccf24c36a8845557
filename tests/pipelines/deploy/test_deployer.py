"""Deploy Lambda against moto: create path, idempotent re-run, approval gate, rollback; update path via Stubber."""
import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from pipelines.deploy import deployer
from pipelines.deploy.deployer import DeploymentConfigError, DeploySettings, deploy_package, handle_rejection

SETTINGS = DeploySettings("vehicles", "arn:aws:iam::123456789012:role/sm", "s3://bucket/capture")


@pytest.fixture
def sm(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_model_package_group(ModelPackageGroupName="group")
        yield client


def _package(sm, status="Approved"):
    return sm.create_model_package(
        ModelPackageGroupName="group", ModelApprovalStatus=status,
        InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": "s3://bucket/model.tar.gz"}],
                                "SupportedContentTypes": ["image/png"], "SupportedResponseMIMETypes": ["application/json"]},
    )["ModelPackageArn"]


def test_create_path_with_data_capture(sm):
    arn = _package(sm)
    result = deploy_package(sm, arn, SETTINGS)
    assert result["status"] == "created" and result["endpoint_config_name"] == "vehicles-v1"
    config = sm.describe_endpoint_config(EndpointConfigName="vehicles-v1")
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] and capture["InitialSamplingPercentage"] == 100
    assert capture["DestinationS3Uri"] == "s3://bucket/capture"
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert sm.describe_model(ModelName="vehicles-v1")["PrimaryContainer"]["ModelPackageName"] == arn
    assert deployer.live_package_arn(sm, "vehicles") == arn


def test_rerun_with_same_package_is_harmless(sm):
    arn = _package(sm)
    deploy_package(sm, arn, SETTINGS)
    again = deploy_package(sm, arn, SETTINGS)
    assert again["status"] == "unchanged"
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1 and len(sm.list_models()["Models"]) == 1


def test_unapproved_package_does_not_touch_endpoint(sm):
    arn = _package(sm, "PendingManualApproval")
    result = deploy_package(sm, arn, SETTINGS)
    assert result["status"] == "awaiting approval"
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []


def test_update_path_logic_with_stubber():
    """moto has no UpdateEndpoint: check the request the deployer sends when a new version replaces the live one."""
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/group/2"
    with Stubber(client) as stub:
        stub.add_response("describe_model_package", {"ModelPackageName": "group", "ModelPackageArn": arn,
                                                     "ModelPackageVersion": 2, "ModelApprovalStatus": "Approved",
                                                     "ModelPackageStatus": "Completed", "CreationTime": "2026-01-01",
                                                     "ModelPackageStatusDetails": {"ValidationStatuses": []}})
        stub.add_response("describe_model", {"ModelName": "vehicles-v2", "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/vehicles-v2", "CreationTime": "2026-01-01"})
        stub.add_response("describe_endpoint_config", {"EndpointConfigName": "vehicles-v2", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/vehicles-v2",
                                                       "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "vehicles-v2"}], "CreationTime": "2026-01-01"})
        stub.add_response("describe_endpoint", {"EndpointName": "vehicles", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/vehicles", "EndpointConfigName": "vehicles-v1",
                                                "EndpointStatus": "InService", "CreationTime": "2026-01-01",
                                                "LastModifiedTime": "2026-01-01"})
        stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/vehicles"},
                          {"EndpointName": "vehicles", "EndpointConfigName": "vehicles-v2"})
        result = deploy_package(client, arn, SETTINGS)
        stub.assert_no_pending_responses()
    assert result["status"] == "updated"


def test_rejecting_a_non_live_package_changes_nothing(sm):
    first = _package(sm)
    deploy_package(sm, first, SETTINGS)
    second = _package(sm)
    assert handle_rejection(sm, second, SETTINGS)["status"] == "not live"


def test_rejecting_the_live_package_without_fallback_is_reported(sm):
    only = _package(sm)
    deploy_package(sm, only, SETTINGS)
    sm.update_model_package(ModelPackageArn=only, ModelApprovalStatus="Rejected")
    assert "no approved package" in handle_rejection(sm, only, SETTINGS)["status"]


def test_handler_routes_eventbridge_and_pipeline_events(sm, monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", "vehicles")
    monkeypatch.setenv("EXECUTION_ROLE_ARN", SETTINGS.execution_role_arn)
    monkeypatch.setenv("CAPTURE_S3_URI", SETTINGS.capture_s3_uri)
    arn = _package(sm)
    assert deployer.lambda_handler({"model_package_arn": arn}, None)["status"] == "created"
    event = {"detail-type": "SageMaker Model Package State Change",
             "detail": {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"}}
    assert deployer.lambda_handler(event, None)["status"] == "unchanged"
    with pytest.raises(ValueError, match="model_package_arn"):
        deployer.lambda_handler({}, None)


@pytest.mark.parametrize("environ, message", [
    ({}, "ENDPOINT_NAME"),
    ({"ENDPOINT_NAME": "e", "EXECUTION_ROLE_ARN": "r", "CAPTURE_S3_URI": "s3://b", "CAPTURE_SAMPLING_PERCENTAGE": "150"}, "outside"),
    ({"ENDPOINT_NAME": "e", "EXECUTION_ROLE_ARN": "r", "CAPTURE_S3_URI": "s3://b", "INITIAL_INSTANCE_COUNT": "two"}, "integers"),
])
def test_settings_validation(environ, message):
    with pytest.raises(DeploymentConfigError, match=message):
        DeploySettings.from_environment(environ)
