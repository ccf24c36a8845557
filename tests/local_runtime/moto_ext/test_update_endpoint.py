"""UpdateEndpoint on the local control plane: canary for moto, and the deploy Lambda's update and rollback."""
import inspect
import json
import time

import pytest
from botocore.exceptions import ClientError

from local_runtime.serving.endpoint_server import REFRESH_SECONDS
from pipelines.deploy.deployer import live_package_arn
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


def test_update_switches_config_and_the_runtime_serves_the_new_model(local_stack, tmp_path):
    sm, name = local_stack.client("sagemaker"), local_stack.config.endpoint.name
    before = sm.describe_endpoint(EndpointName=name)
    second = deploy_tiny_model(local_stack, tmp_path, status="PendingManualApproval")
    config_name = f"{name}-v{second.rsplit('/', 1)[1]}"
    sm.create_model(ModelName=config_name, ExecutionRoleArn=local_stack.resources.role_arn,
                    PrimaryContainer={"ModelPackageName": second})
    variant = {**before, "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": config_name,
                                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]}
    sm.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=variant["ProductionVariants"])
    sm.update_endpoint(EndpointName=name, EndpointConfigName=config_name)

    after = sm.describe_endpoint(EndpointName=name)
    assert after["EndpointStatus"] == "InService" and after["EndpointConfigName"] == config_name
    assert after["LastModifiedTime"] >= before["LastModifiedTime"]
    assert live_package_arn(sm, name) == second
    runtime = local_stack.client("sagemaker-runtime")
    deadline = time.monotonic() + 2 * REFRESH_SECONDS + 1      # the runtime re-reads endpoint configs periodically
    while local_stack.server.registry.get(name).config_name != config_name and time.monotonic() < deadline:
        time.sleep(0.1)
    assert local_stack.server.registry.get(name).config_name == config_name
    response = runtime.invoke_endpoint(EndpointName=name, ContentType="image/png", Body=solid_png(255))
    assert json.loads(response["Body"].read())[0] > 0.99


def test_update_to_a_missing_config_is_a_validation_error(local_stack):
    with pytest.raises(ClientError) as info:
        local_stack.client("sagemaker").update_endpoint(EndpointName=local_stack.config.endpoint.name,
                                                        EndpointConfigName="no-such-config")
    assert info.value.response["Error"]["Code"] == "ValidationException"
