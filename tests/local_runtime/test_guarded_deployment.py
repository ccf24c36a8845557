"""Blue/green canary deployments with alarm rollback on the real local stack: approvals through the
registry, the real deploy Lambda, the endpoint server serving a client all along."""
import json
from contextlib import ExitStack

import pytest

from local_runtime.alarms import wait_for_state
from local_runtime.settings import load_local_config
from local_runtime.stack import deploy_artifact, local_stack
from pipelines.registry.audit import deployment_outcome
from tests.builders import write_tiny_model_artifact
from tests.local_stack import approve_while_calling

pytestmark = pytest.mark.e2e      # starts serve, a subprocess stack or a whole pipeline


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    work = tmp_path_factory.mktemp("guarded")
    config = load_local_config(environ={})
    with ExitStack() as exits:
        stack = exits.enter_context(local_stack(config, work, 0.2))
        deploy_artifact(stack, write_tiny_model_artifact(work / "good" / "model.tar.gz"), "tiny/first")
        yield stack, work


def test_a_model_that_cannot_load_never_takes_traffic(guarded):
    stack, work = guarded
    broken = work / "broken" / "model.tar.gz"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not a model archive")
    outcome = approve_while_calling(stack, broken, "tiny/broken")
    described = outcome.described
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == outcome.config_before
    assert "failed its health check" in described["FailureReason"]
    assert described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert outcome.caller.success_share >= 0.99 and outcome.caller.ok > 10
    assert outcome.seconds < 5


def test_a_good_model_takes_all_traffic_after_the_canary(guarded):
    stack, work = guarded
    wait_for_state(stack.client("cloudwatch"), f"{stack.config.endpoint.name}-invocation-5xx-rate", "OK", timeout=40)
    good = write_tiny_model_artifact(work / "next" / "model.tar.gz")
    outcome = approve_while_calling(stack, good, "tiny/next")
    described = outcome.described
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] != outcome.config_before
    assert not described.get("FailureReason") and "PendingDeploymentSummary" not in described
    assert outcome.caller.failed == 0
    wait = stack.config.deployment.wait_seconds
    assert wait <= outcome.seconds < wait + 10 and outcome.seconds < 60


def test_a_model_failing_its_invocations_is_rolled_back_by_the_alarm(guarded):
    stack, work = guarded
    failing = write_tiny_model_artifact(work / "failing" / "model.tar.gz", graph_size=16)
    outcome = approve_while_calling(stack, failing, "tiny/failing")
    described = outcome.described
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == outcome.config_before
    assert "Rolled back: alarm scones-vehicle-classifier-invocation-5xx-rate went to ALARM" in described["FailureReason"]
    assert outcome.caller.failed > 0 and outcome.caller.success_share > 0.8     # only the canary share failed
    assert "last deployment failed or rolled back" in deployment_outcome(described)
    assert outcome.seconds < stack.config.deployment.wait_seconds + 5

    again = stack.client("lambda").invoke(FunctionName=stack.resources.deploy_function_arn,   # a duplicate event
                                          Payload=json.dumps({"model_package_arn": outcome.package_arn}).encode())
    assert json.loads(again["Payload"].read())["status"].startswith("not retried")
    still = stack.client("sagemaker").describe_endpoint(EndpointName=stack.config.endpoint.name)
    assert still["EndpointStatus"] == "InService" and still["EndpointConfigName"] == outcome.config_before


def test_the_registry_history_lists_every_deployment_outcome(guarded, capsys):
    """The deploy Lambda writes each update's outcome into its package when it next looks at the endpoint."""
    from pipelines.registry import cli as registry_cli

    stack, _ = guarded
    sm = stack.client("sagemaker")
    live = sm.describe_endpoint(EndpointName=stack.config.endpoint.name)
    package = sm.describe_model(ModelName=sm.describe_endpoint_config(
        EndpointConfigName=live["EndpointConfigName"])["ProductionVariants"][0]["ModelName"])["PrimaryContainer"]
    answer = stack.client("lambda").invoke(FunctionName=stack.resources.deploy_function_arn,
                                           Payload=json.dumps({"model_package_arn": package["ModelPackageName"]}).encode())
    assert json.loads(answer["Payload"].read())["status"].startswith("not retried")   # the newest is the rolled back
    capsys.readouterr()
    assert registry_cli.main(["--environment", "local", "history"]) == 0
    lines = capsys.readouterr().out.splitlines()
    outcomes = [line.split(" deployment ", 1)[1] for line in lines[:-1] if " deployment " in line]
    assert [o.split(" on ")[0] for o in outcomes] == ["failed or rolled back", "completed", "failed or rolled back"]
    assert "ping" in outcomes[0] or "health check" in outcomes[0]
    assert "Rolled back: alarm" in outcomes[2]
    assert lines[-1].startswith(f"endpoint {stack.config.endpoint.name}: InService: last deployment failed or rolled back")
