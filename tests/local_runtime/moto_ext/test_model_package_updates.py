"""Approving or rejecting in the registry reaches the deploy Lambda, as the EventBridge rule does on AWS."""
import inspect

from inference_workflow.deploy_model.lambda_function import live_package_arn
from local_runtime.moto_ext import model_package_updates
from local_runtime.stack import wait_until_settled
from pipelines.registry import cli as registry_cli
from tests.contracts import load_document
from tests.local_stack import deploy_tiny_model


def _deployed(stack) -> str | None:
    """Waits for the asynchronous deliveries and the endpoint phase they started; returns the live package."""
    model_package_updates.wait_for_deliveries()
    sm = stack.client("sagemaker")
    wait_until_settled(sm, stack.config.endpoint.name, timeout=30)
    return live_package_arn(sm, stack.config.endpoint.name)


def test_moto_still_has_what_the_events_use():
    from moto.events import models as events
    from moto.sagemaker import models as sagemaker
    from moto.sagemaker.responses import SageMakerResponse

    model_package_updates.install()
    assert SageMakerResponse.update_model_package is model_package_updates._update_model_package_like_aws
    assert "def matches_event" in inspect.getsource(events.EventPattern)
    assert "lambda" not in inspect.getsource(events.Rule.send_to_targets).split("supported targets")[1][:300].lower(), \
        "moto's EventBridge may deliver to Lambda itself now: check for double deployments"
    init = inspect.getsource(sagemaker.ModelPackage.__init__)
    assert "self.model_package_group_name" in init and "self.model_package_version" in init


def test_metadata_merge():
    merge = model_package_updates.merged_metadata
    assert merge({"accuracy": "0.9", "git_commit": "abc"}, None, None) == {"accuracy": "0.9", "git_commit": "abc"}
    assert merge({"accuracy": "0.9"}, {"note": "ok"}, ["accuracy"]) == {"note": "ok"}


def test_approval_keeps_customer_metadata(local_stack, tmp_path):
    sm = local_stack.client("sagemaker")
    arn = deploy_tiny_model(local_stack, tmp_path, status="PendingManualApproval")
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"accuracy": "0.91"})
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="test")
    assert sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"] == {
        "source": f"tiny/{tmp_path.name}", "accuracy": "0.91"}


def test_registry_approve_deploys_and_reject_rolls_back(local_stack, tmp_path, capsys):
    sm, endpoint = local_stack.client("sagemaker"), local_stack.config.endpoint.name
    first = live_package_arn(sm, endpoint)
    second = deploy_tiny_model(local_stack, tmp_path, status="PendingManualApproval")
    version = second.rsplit("/", 1)[1]
    assert live_package_arn(sm, endpoint) == first

    assert registry_cli.main(["--environment", "local", "approve", version, "--reason", "better on rain, ticket #12"]) == 0
    assert _deployed(local_stack) == second
    assert registry_cli.main(["--environment", "local", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{version:>4}  "))
    assert "Approved" in row and row.rstrip().endswith("*")

    assert registry_cli.main(["--environment", "local", "reject", version, "--reason", "blurry at night"]) == 0
    assert _deployed(local_stack) == first
    capsys.readouterr()
    assert registry_cli.main(["--environment", "local", "history"]) == 0
    history = capsys.readouterr().out.splitlines()
    mine = [line for line in history if f" v{version} " in line and " by " in line]     # its decisions
    assert any(f" v{version} " in line and "deployment completed" in line for line in history)
    assert len(mine) == 2 and "Approved  by arn:aws:" in mine[0] and mine[0].endswith("better on rain ticket 12")
    assert "Rejected  by arn:aws:" in mine[1] and mine[1].endswith(": blurry at night")
    assert history[-1].startswith(f"endpoint {endpoint}: InService: last deployment completed")


def test_events_only_reach_matching_enabled_rules(local_stack):
    event = load_document("model_package_state_change")
    region = local_stack.config.project.region
    assert model_package_updates.lambda_targets("123456789012", region, event) == []     # another group
    ours = {**event, "detail": {**event["detail"], "ModelPackageGroupName": local_stack.config.registry.model_package_group,
                                "ModelApprovalStatus": "Approved"}}
    assert model_package_updates.lambda_targets("123456789012", region, ours) == [local_stack.resources.deploy_function_arn]
