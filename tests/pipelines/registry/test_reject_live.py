"""Rejecting the package the endpoint serves, on the local stack: rolled back, or said loudly, or stopped on request."""
from contextlib import ExitStack

import pytest

from inference_workflow.deploy_model.lambda_function import describe_endpoint, live_package_arn
from local_runtime.moto_ext.model_package_updates import wait_for_deliveries
from local_runtime.stack import wait_until_settled
from pipelines.registry import cli as registry_cli
from pipelines.registry.packages import delete_endpoint
from tests.local_stack import deploy_tiny_model, start_local_stack


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    """Updates last 1 s here, so "still Updating" is certain within a test step."""
    with ExitStack() as stack:
        yield start_local_stack(stack, tmp_path_factory.mktemp("registry-stack"), transition_seconds=1.0)


def test_rejecting_the_last_approved_live_package_says_it_still_serves_then_stops_it_on_request(local_stack, capsys):
    sm, endpoint = local_stack.client("sagemaker"), local_stack.config.endpoint.name
    only = local_stack.package_arn                   # v1, the only approved package, deployed by the fixture
    version = only.rsplit("/", 1)[1]
    assert live_package_arn(sm, endpoint) == only

    assert registry_cli.main(["--environment", "local", "reject", version, "--reason", "leaks"]) == registry_cli.EXIT_STILL_LIVE
    err = capsys.readouterr().err
    assert f"endpoint {endpoint} STILL SERVES the rejected v{version}" in err and "--delete-endpoint" in err
    wait_for_deliveries()
    assert sm.describe_model_package(ModelPackageName=only)["ModelApprovalStatus"] == "Rejected"
    assert live_package_arn(sm, endpoint) == only    # nothing to roll back to: it really still serves

    assert registry_cli.main(["--environment", "local", "reject", version, "--reason", "leaks",
                              "--delete-endpoint"]) == 0
    assert f"endpoint {endpoint} deleted" in capsys.readouterr().out
    wait_for_deliveries()
    assert describe_endpoint(sm, endpoint) is None
    assert registry_cli.main(["--environment", "local", "live"]) == 0
    assert "does not exist" in capsys.readouterr().out


def test_delete_endpoint_waits_out_an_update(local_stack, tmp_path):
    sm, endpoint = local_stack.client("sagemaker"), local_stack.config.endpoint.name
    deploy_tiny_model(local_stack, tmp_path)           # approved: deployed (the endpoint is created if it is gone)
    wait_until_settled(sm, endpoint, timeout=10)
    other = deploy_tiny_model(local_stack, tmp_path / "other", status="PendingManualApproval")
    sm.update_model_package(ModelPackageArn=other, ModelApprovalStatus="Approved")
    wait_for_deliveries()                              # the deploy Lambda started the update and returned
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating"
    assert delete_endpoint(sm, endpoint) is True
    assert describe_endpoint(sm, endpoint) is None
