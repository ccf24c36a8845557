"""UpdateEndpoint with a DeploymentConfig on the local control plane: what SageMaker refuses, what
DescribeEndpoint shows during the bake, and how an interrupted deployment ends (never on the new config)."""
import inspect
import time

import botocore.session
import pytest

from local_runtime.moto_ext import blue_green
from local_runtime.serving.deployments import STOPPED, DeploymentDriver
from local_runtime.stack import wait_until_settled
from tests.local_runtime.moto_ext.test_endpoint_lifecycle import _model, _refusal


def test_moto_still_lacks_deployment_configs():
    from moto.sagemaker import responses

    assert "DeploymentConfig" not in inspect.getsource(responses.SageMakerResponse), \
        "moto handles DeploymentConfig now: compare with local_runtime/moto_ext/blue_green.py"
    from moto.cloudwatch.models import CloudWatchBackend

    assert "self.alarms" in inspect.getsource(CloudWatchBackend.__init__)


def _guarded(local_stack, wait: int = 1, **changes) -> dict:
    alarm = f"{local_stack.config.endpoint.name}-invocation-5xx-rate"
    policy = {"Type": "CANARY", "WaitIntervalInSeconds": wait, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    policy.update(changes.pop("routing", {}))
    config = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": policy, "TerminationWaitInSeconds": 0},
              "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]}}
    config.update(changes)
    return config


@pytest.fixture
def live(local_stack, tmp_path):
    """The stack's endpoint, settled, and a second good config to update it to."""
    sm = local_stack.client("sagemaker")
    endpoint = local_stack.config.endpoint.name
    wait_until_settled(sm, endpoint)
    name = f"bluegreen-{time.monotonic_ns()}"
    return sm, endpoint, _model(local_stack, tmp_path, name)


@pytest.mark.parametrize("routing, expected", [
    ({"WaitIntervalInSeconds": 7200}, "validation error detected"),
    ({"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 10}}, "not emulated locally"),
    ({"CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 60}}, "at most 50%"),
])
def test_deployment_configs_sagemaker_refuses_are_refused(local_stack, live, routing, expected):
    sm, endpoint, config = live
    message = _refusal(sm.update_endpoint, EndpointName=endpoint, EndpointConfigName=config,
                       DeploymentConfig=_guarded(local_stack, routing=routing))
    assert expected in message
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"


def test_an_unknown_rollback_alarm_or_a_renamed_variant_is_refused(local_stack, live, tmp_path):
    sm, endpoint, config = live
    unknown = _guarded(local_stack)
    unknown["AutoRollbackConfiguration"]["Alarms"].append({"AlarmName": "no-such-alarm"})
    assert "no-such-alarm" in _refusal(sm.update_endpoint, EndpointName=endpoint, EndpointConfigName=config,
                                       DeploymentConfig=unknown)
    renamed = f"renamed-{time.monotonic_ns()}"
    sm.create_endpoint_config(EndpointConfigName=renamed, ProductionVariants=[{
        "VariantName": "OtherVariant", "ModelName": config, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    assert "variant names" in _refusal(sm.update_endpoint, EndpointName=endpoint, EndpointConfigName=renamed,
                                       DeploymentConfig=_guarded(local_stack))


def test_during_the_bake_the_endpoint_shows_the_pending_deployment_and_refuses_changes(local_stack, live):
    sm, endpoint, config = live
    before = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config, DeploymentConfig=_guarded(local_stack, 2))
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "Updating" and described["EndpointConfigName"] == before
    output = botocore.session.get_session().get_service_model("sagemaker").operation_model("DescribeEndpoint").output_shape
    assert set(described) - {"ResponseMetadata"} <= set(output.members)
    summary = described["PendingDeploymentSummary"]
    assert summary["EndpointConfigName"] == config
    assert set(summary) <= set(output.members["PendingDeploymentSummary"].members)
    assert "in-progress" in _refusal(sm.update_endpoint, EndpointName=endpoint, EndpointConfigName=before)
    assert "in-progress" in _refusal(sm.delete_endpoint, EndpointName=endpoint)
    done = wait_until_settled(sm, endpoint, timeout=30)
    assert done["EndpointStatus"] == "InService" and done["EndpointConfigName"] == config
    assert "PendingDeploymentSummary" not in done and done["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]


def test_a_config_deleted_during_the_bake_rolls_the_update_back(local_stack, live):
    sm, endpoint, config = live
    before = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config, DeploymentConfig=_guarded(local_stack, 2))
    sm.delete_endpoint_config(EndpointConfigName=config)
    done = wait_until_settled(sm, endpoint, timeout=30)
    assert done["EndpointStatus"] == "InService" and done["EndpointConfigName"] == before
    assert "Could not find endpoint configuration" in done["FailureReason"]


def test_a_stack_stopping_during_the_bake_never_promotes_the_new_config(local_stack, live, request):
    """Last in the module: it stops the stack's deployment driver (a fresh one serves until the module ends)."""
    sm, endpoint, config = live
    before = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config, DeploymentConfig=_guarded(local_stack, 60))
    while not blue_green.pending("123456789012", local_stack.aws.region, endpoint) or \
            endpoint not in local_stack.server.routes:
        time.sleep(0.05)
    try:
        local_stack.deployments.stop()
    finally:
        local_stack.deployments = DeploymentDriver(local_stack.aws, local_stack.server).start()
        request.addfinalizer(local_stack.deployments.stop)
    done = sm.describe_endpoint(EndpointName=endpoint)
    assert done["EndpointStatus"] == "InService" and done["EndpointConfigName"] == before
    assert STOPPED in done["FailureReason"]
