"""The deploy Lambda on the local stack: endpoint phases respected, events idempotent, nothing lost."""
import json
import time
from contextlib import ExitStack

import pytest

from inference_workflow.deploy_model import lambda_function as deployer
from inference_workflow.deploy_model.lambda_function import (
    Deadline,
    DeploymentConfigError,
    DeployRequest,
    DeploySettings,
    EndpointBusyError,
    InvalidEventError,
    converge_endpoint,
    create_or_join,
    handle,
    live_package_arn,
)
from local_runtime.moto_ext import endpoint_lifecycle, model_package_updates
from local_runtime.stack import wait_until_settled
from pipelines.registry import cli as registry_cli
from tests.builders import write_tiny_model_artifact
from tests.contracts import load_document
from tests.local_stack import deploy_tiny_model, start_local_stack

TRANSITION_SECONDS = 1.0
SLOW_TRANSITION_SECONDS = 4.0     # for tests that look at a phase in progress: outlasts a stall of a loaded CI host


@pytest.fixture
def slow_transitions():
    """Creating and Updating begun during the test last SLOW_TRANSITION_SECONDS (config ``endpoint.local_transition_seconds``)."""
    endpoint_lifecycle.configure(SLOW_TRANSITION_SECONDS)
    yield
    endpoint_lifecycle.configure(TRANSITION_SECONDS)


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    with ExitStack() as stack:
        yield start_local_stack(stack, tmp_path_factory.mktemp("deploy-stack"), transition_seconds=TRANSITION_SECONDS)


class _Context:
    """The two members of Lambda's context object the function reads."""

    def __init__(self, seconds: float):
        self.ends = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.ends - time.monotonic()) * 1000)


def _settings(stack, endpoint_name: str) -> DeploySettings:
    return DeploySettings(endpoint_name, stack.resources.role_arn, f"{stack.config.s3_root}/capture", poll_seconds=0.05)


def _register(stack, work, status="PendingManualApproval", upload=True) -> str:
    """A package of the group (its artifact left out when ``upload`` is False), not deployed."""
    if upload:
        return deploy_tiny_model(stack, work, status=status)
    sm, config = stack.client("sagemaker"), stack.config
    return sm.create_model_package(
        ModelPackageGroupName=config.registry.model_package_group, ModelApprovalStatus=status,
        InferenceSpecification={"Containers": [{"Image": "local", "ModelDataUrl":
                                                f"s3://{config.storage.bucket}/{config.storage.prefix}/missing/model.tar.gz"}],
                                "SupportedContentTypes": ["image/png"], "SupportedResponseMIMETypes": ["application/json"]},
    )["ModelPackageArn"]


def _settle(stack) -> dict:
    model_package_updates.wait_for_deliveries()
    return wait_until_settled(stack.client("sagemaker"), stack.config.endpoint.name, timeout=30)


def _failures(stack) -> list[dict]:
    messages = stack.client("sqs").receive_message(QueueUrl=stack.resources.deploy_failures_queue_url,
                                                   MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.mark.parametrize("event", [[], 3, None, "text", {"detail-type": deployer.STATE_CHANGE, "detail": []}, {}])
def test_events_that_are_not_requests_are_named_errors(event):
    with pytest.raises(InvalidEventError):
        deployer.parse_event(event)


def test_the_documented_state_change_event_parses():
    event = load_document("model_package_state_change")
    assert deployer.parse_event(event) == DeployRequest(event["detail"]["ModelPackageArn"], rejected=True,
                                                        group="versionedmp-p-idy6c3e1fiqj")


@pytest.mark.parametrize("environ, message", [
    ({}, "ENDPOINT_NAME"),
    ({"ENDPOINT_NAME": "e", "EXECUTION_ROLE_ARN": "r", "CAPTURE_S3_URI": "s3://b", "CAPTURE_SAMPLING_PERCENTAGE": "150"}, "outside"),
    ({"ENDPOINT_NAME": "e", "EXECUTION_ROLE_ARN": "r", "CAPTURE_S3_URI": "s3://b", "INITIAL_INSTANCE_COUNT": "two"}, "integers"),
    ({"ENDPOINT_NAME": "e", "EXECUTION_ROLE_ARN": "r", "CAPTURE_S3_URI": "s3://b", "ENDPOINT_POLL_SECONDS": "0"}, "> 0"),
])
def test_settings_validation(environ, message):
    with pytest.raises(DeploymentConfigError, match=message):
        DeploySettings.from_environment(environ)


def test_two_approvals_back_to_back_end_on_the_newer_package(local_stack, tmp_path):
    sm, endpoint = local_stack.client("sagemaker"), local_stack.config.endpoint.name
    _settle(local_stack)
    second, third = _register(local_stack, tmp_path / "a"), _register(local_stack, tmp_path / "b")
    for package in (second, third):
        assert registry_cli.main(["--environment", "local", "approve", package.rsplit("/", 1)[1], "--reason", "test approval"]) == 0
    final = _settle(local_stack)
    assert final["EndpointStatus"] == "InService" and live_package_arn(sm, endpoint) == third
    assert _failures(local_stack) == []                        # both deliveries succeeded: no approval lost


def test_a_duplicate_event_changes_nothing(local_stack):
    sm, lam = local_stack.client("sagemaker"), local_stack.client("lambda")
    _settle(local_stack)
    live = live_package_arn(sm, local_stack.config.endpoint.name)
    event = load_document("model_package_state_change")
    event["detail"].update(ModelPackageArn=live, ModelApprovalStatus="Approved",
                           ModelPackageGroupName=local_stack.config.registry.model_package_group)
    before = (len(sm.list_models()["Models"]), len(sm.list_endpoint_configs()["EndpointConfigs"]))
    results = [json.loads(lam.invoke(FunctionName=local_stack.resources.deploy_function_arn,
                                     Payload=json.dumps(event))["Payload"].read()) for _ in range(2)]
    assert [r["status"] for r in results] == ["unchanged", "unchanged"]
    assert (len(sm.list_models()["Models"]), len(sm.list_endpoint_configs()["EndpointConfigs"])) == before


def test_a_late_approval_of_a_rejected_package_is_ignored(local_stack, tmp_path):
    sm = local_stack.client("sagemaker")
    stale = _register(local_stack, tmp_path, status="Rejected")
    result = handle(sm, DeployRequest(stale), _settings(local_stack, "deploy-stale"), Deadline(None, 0.05))
    assert result["status"] == "not approved" and sm.list_endpoints(NameContains="deploy-stale")["Endpoints"] == []


def test_changes_wait_for_the_endpoint_in_progress_and_a_concurrent_create_is_joined(local_stack, slow_transitions):
    sm = local_stack.client("sagemaker")
    settings = _settings(local_stack, "deploy-wait")
    newest = deployer.newest_approved(sm, local_stack.config.registry.model_package_group)
    config_name = deployer.ensure_model_and_config(sm, newest, settings)
    assert deployer.ensure_model_and_config(sm, newest, settings) == config_name     # "already exists" is done
    assert create_or_join(sm, "deploy-wait", config_name) is None
    joined = create_or_join(sm, "deploy-wait", config_name)      # what the loser of two concurrent creates sees
    assert joined["EndpointStatus"] == "Creating" and joined["EndpointConfigName"] == config_name
    assert converge_endpoint(sm, settings, config_name, Deadline(None, 0.05)) == "creating"

    other = deployer.resource_name("deploy-wait", 999)
    sm.create_model(ModelName=other, ExecutionRoleArn=settings.execution_role_arn,
                    PrimaryContainer={"ModelPackageName": newest["ModelPackageArn"]})
    sm.create_endpoint_config(EndpointConfigName=other, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": other, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    with pytest.raises(EndpointBusyError, match="still Creating"):
        converge_endpoint(sm, settings, other, Deadline(_Context(deployer.SAFETY_SECONDS), 0.05))
    assert sm.describe_endpoint(EndpointName="deploy-wait")["EndpointStatus"] == "Creating"
    assert converge_endpoint(sm, settings, other, Deadline(_Context(30), 0.05)) == "updating"   # waited, then updated
    updating = sm.describe_endpoint(EndpointName="deploy-wait")
    assert updating["EndpointStatus"] == "Updating" and updating["EndpointConfigName"] == config_name
    assert wait_until_settled(sm, "deploy-wait", timeout=10)["EndpointConfigName"] == other
    sm.delete_endpoint(EndpointName="deploy-wait")


def test_a_failed_endpoint_is_recreated_not_unchanged(local_stack, tmp_path):
    sm, s3 = local_stack.client("sagemaker"), local_stack.client("s3")
    group = "deploy-failed-group"
    sm.create_model_package_group(ModelPackageGroupName=group)
    key = f"{local_stack.config.storage.prefix}/deploy-failed/model.tar.gz"
    package = sm.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"Image": "local", "ModelDataUrl": f"s3://{local_stack.config.storage.bucket}/{key}"}],
                                "SupportedContentTypes": ["image/png"], "SupportedResponseMIMETypes": ["application/json"]},
    )["ModelPackageArn"]
    settings = _settings(local_stack, "deploy-failed")
    assert handle(sm, DeployRequest(package), settings, Deadline(None, 0.05))["status"] == "created"
    assert wait_until_settled(sm, "deploy-failed", timeout=10)["EndpointStatus"] == "Failed"

    s3.upload_file(str(write_tiny_model_artifact(tmp_path / "model.tar.gz")), local_stack.config.storage.bucket, key)
    assert handle(sm, DeployRequest(package), settings, Deadline(None, 0.05))["status"] == "recreated"
    assert wait_until_settled(sm, "deploy-failed", timeout=10)["EndpointStatus"] == "InService"
    assert handle(sm, DeployRequest(package), settings, Deadline(None, 0.05))["status"] == "unchanged"
    sm.delete_endpoint(EndpointName="deploy-failed")


def test_an_event_that_keeps_failing_ends_in_the_on_failure_queue(local_stack, tmp_path):
    lam, function = local_stack.client("lambda"), local_stack.resources.deploy_function_arn
    environment = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    package = _register(local_stack, tmp_path)
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": {
        k: v for k, v in environment.items() if k != "ENDPOINT_NAME"}})     # a misconfigured function
    try:
        local_stack.client("sagemaker").update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")
        model_package_updates.wait_for_deliveries()
    finally:
        lam.update_function_configuration(FunctionName=function, Environment={"Variables": environment})
    [record] = _failures(local_stack)
    documented = load_document("lambda_invocation_record_on_failure")
    assert record.keys() == documented.keys()
    assert record["requestContext"].keys() == documented["requestContext"].keys()
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"]["detail"]["ModelPackageArn"] == package
    assert record["responseContext"] == {**documented["responseContext"], "statusCode": 200}
    assert record["responsePayload"]["errorType"] == "DeploymentConfigError"
    _settle(local_stack)
    assert registry_cli.main(["--environment", "local", "approve", package.rsplit("/", 1)[1], "--reason", "test approval"]) == 0
    assert _settle(local_stack)["EndpointStatus"] == "InService"     # re-approving after the fix deploys it
    assert live_package_arn(local_stack.client("sagemaker"), local_stack.config.endpoint.name) == package


def test_rejecting_the_live_package_rolls_back_to_the_newest_other_approved(local_stack, tmp_path):
    sm, endpoint = local_stack.client("sagemaker"), local_stack.config.endpoint.name
    _settle(local_stack)
    before = live_package_arn(sm, endpoint)
    newer = _register(local_stack, tmp_path, status="Approved")      # registered and deployed by the deploy Lambda
    assert live_package_arn(sm, endpoint) == newer
    assert registry_cli.main(["--environment", "local", "reject", newer.rsplit("/", 1)[1], "--reason", "blurry"]) == 0
    _settle(local_stack)
    assert live_package_arn(sm, endpoint) == before


def test_rejecting_a_package_while_the_endpoint_switches_to_it_rolls_back_after_the_switch(local_stack, tmp_path, capsys,
                                                                                        slow_transitions):
    sm, endpoint = local_stack.client("sagemaker"), local_stack.config.endpoint.name
    _settle(local_stack)
    before = live_package_arn(sm, endpoint)
    newer = _register(local_stack, tmp_path)
    sm.update_model_package(ModelPackageArn=newer, ModelApprovalStatus="Approved")
    model_package_updates.wait_for_deliveries()
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating"     # switching to `newer`
    assert registry_cli.main(["--environment", "local", "reject", newer.rsplit("/", 1)[1], "--reason", "oops"]) == 0
    assert f"until the deploy function switches it to v{before.rsplit('/', 1)[1]}" in capsys.readouterr().out
    final = _settle(local_stack)
    assert final["EndpointStatus"] == "InService" and live_package_arn(sm, endpoint) == before
    assert _failures(local_stack) == []


@pytest.mark.parametrize("function", ["DeployModelFunction", "StartRetrainingFunction"])
def test_retries_event_age_and_failure_queue_are_the_templates(local_stack, function):
    from local_runtime.template_resources import resolver_for

    resolver = resolver_for(local_stack.config)
    declared = resolver.resolve(resolver.template["Resources"][function]["Properties"])
    invoke = declared["EventInvokeConfig"]
    sqs = local_stack.client("sqs")
    live = local_stack.client("lambda").get_function_event_invoke_config(FunctionName=declared["FunctionName"])
    assert (live["MaximumRetryAttempts"], live["MaximumEventAgeInSeconds"]) == \
        (invoke["MaximumRetryAttempts"], invoke["MaximumEventAgeInSeconds"])
    queue_arn = live["DestinationConfig"]["OnFailure"]["Destination"]
    assert queue_arn == invoke["DestinationConfig"]["OnFailure"]["Destination"]
    queue_id = resolver.template["Resources"][function]["Properties"]["EventInvokeConfig"]["DestinationConfig"][
        "OnFailure"]["Destination"]["Fn::GetAtt"][0]
    queue = resolver.resolve(resolver.template["Resources"][queue_id]["Properties"])
    attributes = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=queue["QueueName"])["QueueUrl"],
                                          AttributeNames=["MessageRetentionPeriod"])["Attributes"]
    assert int(attributes["MessageRetentionPeriod"]) == queue["MessageRetentionPeriod"]
