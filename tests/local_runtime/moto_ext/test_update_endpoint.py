"""UpdateEndpoint on the local control plane: canary for moto, and the deploy Lambda's update and rollback."""
import inspect
import json

import pytest
from botocore.exceptions import ClientError

from local_runtime.provision import capture_uri
from pipelines.deploy.deployer import DeploySettings, deploy_package, handle_rejection, live_package_arn
from tests.builders import solid_png
from tests.local_stack import deploy_tiny_model


def test_moto_still_lacks_update_endpoint_and_keeps_the_attributes_we_set():
    from moto.sagemaker import models, responses

    assert "def update_endpoint(" not in inspect.getsource(responses.SageMakerResponse), \
        "moto implements UpdateEndpoint now: drop local_runtime/moto_ext/update_endpoint.py"
    init = inspect.getsource(models.FakeEndpoint.__init__)
    for attribute in ("endpoint_config_name", "production_variants", "data_capture_config", "endpoint_status"):
        assert f"self.{attribute}" in init, attribute
    assert hasattr(models.FakeEndpoint, "_process_production_variants")


def _settings(stack):
    return DeploySettings(stack.config.endpoint.name, stack.resources.role_arn, capture_uri(stack.config))


def test_new_approved_version_updates_the_live_endpoint_and_rejection_rolls_back(local_stack, tmp_path):
    sm, name = local_stack.client("sagemaker"), local_stack.config.endpoint.name
    second = deploy_tiny_model(local_stack, tmp_path, status="PendingManualApproval")
    assert live_package_arn(sm, name) == local_stack.package_arn
    sm.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Approved")
    result = deploy_package(sm, second, _settings(local_stack))
    assert result["status"] == "updated"
    endpoint = sm.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == result["endpoint_config_name"]
    assert live_package_arn(sm, name) == second

    sm.update_model_package(ModelPackageArn=second, ModelApprovalStatus="Rejected")
    rolled = handle_rejection(sm, second, _settings(local_stack))
    assert rolled["status"] == "rolled back" and live_package_arn(sm, name) == local_stack.package_arn

    runtime = local_stack.client("sagemaker-runtime")
    answer = json.loads(runtime.invoke_endpoint(EndpointName=name, ContentType="image/png", Body=solid_png(255))["Body"].read())
    assert answer[0] > 0.99


def test_update_to_a_missing_config_is_a_validation_error(local_stack):
    with pytest.raises(ClientError) as info:
        local_stack.client("sagemaker").update_endpoint(EndpointName=local_stack.config.endpoint.name,
                                                        EndpointConfigName="no-such-config")
    assert info.value.response["Error"]["Code"] == "ValidationException"
