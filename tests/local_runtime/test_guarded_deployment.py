"""Blue/green canary deployments with alarm rollback on the real local stack: approvals through the
registry, the real deploy Lambda, the endpoint server serving a client all along."""
import threading
import time
from contextlib import ExitStack

import pytest

from local_runtime.alarms import wait_for_state
from local_runtime.moto_ext.model_package_updates import wait_for_deliveries
from local_runtime.stack import deploy_artifact, local_stack
from pipelines.registry.audit import deployment_outcome
from scones_common.config import load_config
from tests.builders import solid_png, write_tiny_model_artifact


class Client(threading.Thread):
    """Calls the endpoint every 50 ms and counts what comes back."""

    def __init__(self, stack):
        super().__init__(daemon=True)
        self.runtime, self.endpoint = stack.client("sagemaker-runtime"), stack.config.endpoint.name
        self.ok = self.failed = 0
        self.stop_event = threading.Event()

    def run(self):
        body = solid_png(220)
        while not self.stop_event.wait(0.05):
            try:
                self.runtime.invoke_endpoint(EndpointName=self.endpoint, ContentType="image/png", Body=body)
                self.ok += 1
            except Exception:
                self.failed += 1

    def stop(self):
        self.stop_event.set()
        self.join()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    work = tmp_path_factory.mktemp("guarded")
    config = load_config(environment="local", environ={})
    with ExitStack() as exits:
        stack = exits.enter_context(local_stack(config, work, 0.2))
        deploy_artifact(stack, write_tiny_model_artifact(work / "good" / "model.tar.gz"), "tiny/first")
        yield stack, work


def _approve_while_calling(stack, artifact, label):
    """Registers the artifact pending, starts a client, approves through the registry, waits for the update to end."""
    sm = stack.client("sagemaker")
    arn = deploy_artifact(stack, artifact, label, "PendingManualApproval")
    before = sm.describe_endpoint(EndpointName=stack.config.endpoint.name)["EndpointConfigName"]
    client = Client(stack)
    client.start()
    time.sleep(0.5)
    started = time.monotonic()
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    wait_for_deliveries()     # the approval event reaches the deploy Lambda asynchronously, as on AWS
    described = sm.describe_endpoint(EndpointName=stack.config.endpoint.name)
    while described["EndpointStatus"] == "Updating" and time.monotonic() - started < 90:
        time.sleep(0.2)
        described = sm.describe_endpoint(EndpointName=stack.config.endpoint.name)
    elapsed = time.monotonic() - started
    time.sleep(0.5)
    client.stop()
    return before, described, client, elapsed


def test_a_model_that_cannot_load_never_takes_traffic(guarded):
    stack, work = guarded
    broken = work / "broken" / "model.tar.gz"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not a model archive")
    before, described, client, elapsed = _approve_while_calling(stack, broken, "tiny/broken")
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == before
    assert "failed its health check" in described["FailureReason"]
    assert described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert client.ok / (client.ok + client.failed) >= 0.99 and client.ok > 10
    assert elapsed < 5
    print(f"health check failed the update after {elapsed:.2f} s; {client.ok} of {client.ok + client.failed} calls ok")


def test_a_model_failing_its_invocations_is_rolled_back_by_the_alarm(guarded):
    stack, work = guarded
    failing = write_tiny_model_artifact(work / "failing" / "model.tar.gz", graph_size=16)
    before, described, client, elapsed = _approve_while_calling(stack, failing, "tiny/failing")
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == before
    assert "Rolled back: alarm scones-vehicle-classifier-invocation-5xx-rate went to ALARM" in described["FailureReason"]
    assert client.failed > 0 and client.ok / (client.ok + client.failed) > 0.8     # only the canary share failed
    assert "last deployment failed or rolled back" in deployment_outcome(described)
    assert elapsed < stack.config.deployment.wait_seconds + 5
    print(f"rolled back after {elapsed:.1f} s; {client.failed} of {client.ok + client.failed} calls failed")


def test_a_good_model_takes_all_traffic_after_the_canary(guarded):
    stack, work = guarded
    wait_for_state(stack.client("cloudwatch"), f"{stack.config.endpoint.name}-invocation-5xx-rate", "OK", timeout=40)
    good = write_tiny_model_artifact(work / "next" / "model.tar.gz")
    before, described, client, elapsed = _approve_while_calling(stack, good, "tiny/next")
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] != before
    assert not described.get("FailureReason") and "PendingDeploymentSummary" not in described
    assert client.failed == 0
    wait = stack.config.deployment.wait_seconds
    assert wait <= elapsed < wait + 10 and elapsed < 60
    print(f"canary completed in {elapsed:.1f} s")
