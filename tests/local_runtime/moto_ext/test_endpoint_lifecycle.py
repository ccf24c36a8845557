"""Endpoints on the local control plane go through Creating/Updating and refuse what SageMaker refuses."""
import inspect
import json
import time

import pytest
from botocore.exceptions import ClientError

from local_runtime.serving.endpoint_server import REFRESH_SECONDS
from local_runtime.stack import wait_until_settled
from tests.builders import solid_png, write_tiny_model_artifact
from tests.local_stack import TRANSITION_SECONDS


def test_moto_still_lacks_phases_and_keeps_what_is_wrapped():
    from moto.sagemaker import models, responses

    assert "def update_endpoint(" not in inspect.getsource(responses.SageMakerResponse), \
        "moto implements UpdateEndpoint now: compare with local_runtime/moto_ext/endpoint_lifecycle.py"
    init = inspect.getsource(models.FakeEndpoint.__init__)
    assert 'self.endpoint_status = "InService"' in init, "moto has endpoint phases now: drop endpoint_lifecycle"
    for attribute in ("endpoint_config_name", "production_variants", "data_capture_config", "failure_reason",
                      "last_modified_time"):
        assert f"self.{attribute}" in init, attribute
    assert hasattr(models.FakeEndpoint, "_process_production_variants")
    backend = inspect.getsource(models.SageMakerModelBackend)
    for method in ("def create_model(", "def create_endpoint_config(", "def create_endpoint(", "def describe_endpoint(",
                   "def list_endpoints(", "def delete_endpoint("):
        assert method in backend, method
    for attribute in ("self._models", "self.endpoint_configs", "self.endpoints", "self.model_packages"):
        assert f"{attribute}: dict" in backend or f"{attribute} =" in backend, attribute


def _model(stack, work, name: str, inverted: bool = False, upload: bool = True) -> str:
    """A model and an endpoint config named ``name``; its artifact is uploaded unless ``upload`` is False."""
    config = stack.config
    key = f"{config.storage.prefix}/lifecycle/{name}/model.tar.gz"
    if upload:
        artifact = write_tiny_model_artifact(work / name / "model.tar.gz", inverted)
        stack.client("s3").upload_file(str(artifact), config.storage.bucket, key)
    sm = stack.client("sagemaker")
    sm.create_model(ModelName=name, ExecutionRoleArn=stack.resources.role_arn,
                    PrimaryContainer={"Image": "local", "ModelDataUrl": f"s3://{config.storage.bucket}/{key}"})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    return name


def _refusal(call, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    return info.value.response["Error"]["Message"]


def test_create_goes_creating_then_in_service_and_refuses_changes_meanwhile(local_stack, tmp_path):
    sm = local_stack.client("sagemaker")
    config = _model(local_stack, tmp_path, "lifecycle-create")
    arn = sm.create_endpoint(EndpointName="lifecycle-a", EndpointConfigName=config)["EndpointArn"]
    creating = sm.describe_endpoint(EndpointName="lifecycle-a")
    assert creating["EndpointStatus"] == "Creating" and creating["EndpointConfigName"] == config

    assert _refusal(sm.update_endpoint, EndpointName="lifecycle-a", EndpointConfigName=config) == \
        f'Cannot update in-progress endpoint "{arn}".'
    assert _refusal(sm.delete_endpoint, EndpointName="lifecycle-a") == f'Cannot update in-progress endpoint "{arn}".'
    assert _refusal(sm.create_endpoint, EndpointName="lifecycle-a", EndpointConfigName=config) == \
        f'Cannot create already existing endpoint "{arn}".'

    done = wait_until_settled(sm, "lifecycle-a", timeout=10)
    assert done["EndpointStatus"] == "InService" and "FailureReason" not in done
    assert (done["LastModifiedTime"] - creating["CreationTime"]).total_seconds() == pytest.approx(TRANSITION_SECONDS, abs=0.05)
    assert [e["EndpointStatus"] for e in sm.list_endpoints(NameContains="lifecycle-a")["Endpoints"]] == ["InService"]
    sm.delete_endpoint(EndpointName="lifecycle-a")
    assert _refusal(sm.describe_endpoint, EndpointName="lifecycle-a").startswith("Could not find endpoint")


def test_update_serves_the_old_model_until_in_service(local_stack, tmp_path):
    sm, runtime = local_stack.client("sagemaker"), local_stack.client("sagemaker-runtime")
    old, new = _model(local_stack, tmp_path, "lifecycle-old"), _model(local_stack, tmp_path, "lifecycle-new", inverted=True)
    sm.create_endpoint(EndpointName="lifecycle-b", EndpointConfigName=old)
    wait_until_settled(sm, "lifecycle-b", timeout=10)

    def bicycle() -> float:
        body = runtime.invoke_endpoint(EndpointName="lifecycle-b", ContentType="image/png", Body=solid_png(255))["Body"]
        return json.loads(body.read())[0]

    assert bicycle() > 0.99
    sm.update_endpoint(EndpointName="lifecycle-b", EndpointConfigName=new)
    updating = sm.describe_endpoint(EndpointName="lifecycle-b")
    assert updating["EndpointStatus"] == "Updating" and updating["EndpointConfigName"] == old
    assert bicycle() > 0.99                                     # the old model answers while Updating
    assert _refusal(sm.update_endpoint, EndpointName="lifecycle-b", EndpointConfigName=old).startswith(
        "Cannot update in-progress endpoint")

    done = wait_until_settled(sm, "lifecycle-b", timeout=10)
    assert done["EndpointStatus"] == "InService" and done["EndpointConfigName"] == new
    deadline = time.monotonic() + 2 * REFRESH_SECONDS + 1      # the runtime re-reads endpoint configs periodically
    while bicycle() > 0.5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert bicycle() < 0.01                                     # the inverted model now answers


def test_missing_model_data_fails_a_create_and_leaves_an_update_on_the_old_config(local_stack, tmp_path):
    sm = local_stack.client("sagemaker")
    good, missing = _model(local_stack, tmp_path, "lifecycle-good"), _model(local_stack, tmp_path, "lifecycle-gone", upload=False)

    sm.create_endpoint(EndpointName="lifecycle-c", EndpointConfigName=missing)
    failed = wait_until_settled(sm, "lifecycle-c", timeout=10)
    assert failed["EndpointStatus"] == "Failed"
    assert failed["FailureReason"].startswith('Failed to download model data for container "container_1" from URL: "s3://')
    assert _refusal(sm.update_endpoint, EndpointName="lifecycle-c", EndpointConfigName=good).startswith(
        "Cannot update failed endpoint")
    sm.delete_endpoint(EndpointName="lifecycle-c")              # the only operation a Failed endpoint allows

    sm.create_endpoint(EndpointName="lifecycle-d", EndpointConfigName=good)
    wait_until_settled(sm, "lifecycle-d", timeout=10)
    sm.update_endpoint(EndpointName="lifecycle-d", EndpointConfigName=missing)
    after = wait_until_settled(sm, "lifecycle-d", timeout=10)
    assert after["EndpointStatus"] == "InService" and after["EndpointConfigName"] == good
    assert after["FailureReason"].startswith("Failed to download model data")


def test_names_in_use_are_refused(local_stack, tmp_path):
    sm = local_stack.client("sagemaker")
    name = _model(local_stack, tmp_path, "lifecycle-taken")
    role = local_stack.resources.role_arn
    assert _refusal(sm.create_model, ModelName=name, ExecutionRoleArn=role, PrimaryContainer={"Image": "x"}) == \
        f'Cannot create already existing model "arn:aws:sagemaker:us-east-1:123456789012:model/{name}".'
    assert _refusal(sm.create_endpoint_config, EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]) == \
        f'Cannot create already existing endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}".'


def test_update_to_a_missing_config_is_a_validation_error(local_stack):
    assert "Could not find endpoint configuration" in _refusal(
        local_stack.client("sagemaker").update_endpoint, EndpointName=local_stack.config.endpoint.name,
        EndpointConfigName="no-such-config")


def test_a_plain_update_to_a_model_that_cannot_load_fails_its_health_check(local_stack, tmp_path):
    """Without a DeploymentConfig too, SageMaker only switches to a fleet that answers /ping."""
    sm, config = local_stack.client("sagemaker"), local_stack.config
    endpoint = config.endpoint.name
    before = wait_until_settled(sm, endpoint)["EndpointConfigName"]
    name = _model(local_stack, tmp_path, "lifecycle-corrupt", upload=False)
    local_stack.client("s3").put_object(Bucket=config.storage.bucket, Body=b"not a model archive",
                                        Key=f"{config.storage.prefix}/lifecycle/{name}/model.tar.gz")
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=name)
    done = wait_until_settled(sm, endpoint)
    assert done["EndpointStatus"] == "InService" and done["EndpointConfigName"] == before
    assert "did not pass the ping health check" in done["FailureReason"]
    assert local_stack.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType="image/png", Body=solid_png(250))["ResponseMetadata"]["HTTPStatusCode"] == 200
