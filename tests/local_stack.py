"""A real local stack for integration tests: moto server, in-process Lambdas, the endpoint server,
and a tiny real ONNX model deployed by the real deploy Lambda."""
from __future__ import annotations

import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from local_runtime.settings import load_local_config
from local_runtime.stack import LocalStack, deploy_artifact, local_stack
from tests.builders import write_tiny_model_artifact


@dataclass
class DeployedStack(LocalStack):
    package_arn: str = ""


def deploy_tiny_model(stack: LocalStack, work: Path, status: str = "Approved", inverted: bool = False) -> str:
    artifact = write_tiny_model_artifact(work / "model.tar.gz", inverted)
    return deploy_artifact(stack, artifact, f"tiny/{work.name}", status)


TRANSITION_SECONDS = 0.3     # endpoint Creating/Updating in tests: long enough to observe, short enough to wait out


def start_local_stack(stack: ExitStack, work: Path, capture_flush_seconds: float = 0.2,
                      transition_seconds: float = TRANSITION_SECONDS, **options) -> DeployedStack:
    config = load_local_config(
                         environ={"SCONES__ENDPOINT__LOCAL_TRANSITION_SECONDS": str(transition_seconds),
                                  "SCONES__DEPLOYMENT__WAIT_SECONDS": "0"})     # canaries have their own tests
    local = stack.enter_context(local_stack(config, work, capture_flush_seconds, **options))
    package_arn = deploy_tiny_model(local, work)
    return DeployedStack(local.aws, config, local.resources, local.server, local.executions, local.alarms,
                         local.deployments, package_arn=package_arn)


class Serving:
    """``scones-local serve`` in a background thread, as a user runs it in another shell (one at a time:
    moto's backends are process-wide)."""

    def __init__(self, run_dir: Path):
        from local_runtime.serve import serve

        self.config = load_local_config(environ={})
        self.run_dir, self.stop, self.ready, self.stack = run_dir, threading.Event(), threading.Event(), None
        self.thread = threading.Thread(target=serve, args=(self.config, run_dir, self.stop),
                                       kwargs={"on_ready": self._ready}, daemon=True)

    def _ready(self, stack, env_file):
        self.stack = stack
        self.ready.set()

    def __enter__(self) -> "Serving":
        self.thread.start()
        assert self.ready.wait(120), "serve did not come up"
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(120)


class EndpointCaller(threading.Thread):
    """A client calling the endpoint every ``interval`` seconds and counting the answers."""

    def __init__(self, stack: LocalStack, interval: float = 0.05):
        from tests.builders import solid_png

        super().__init__(daemon=True)
        self.runtime, self.endpoint = stack.client("sagemaker-runtime"), stack.config.endpoint.name
        self.body, self.interval = solid_png(220), interval
        self.ok = self.failed = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.runtime.invoke_endpoint(EndpointName=self.endpoint, ContentType="image/png", Body=self.body)
                self.ok += 1
            except Exception:
                self.failed += 1

    def stop(self) -> None:
        self.stop_event.set()
        self.join()

    @property
    def success_share(self) -> float:
        return self.ok / max(1, self.ok + self.failed)


@dataclass
class ApprovalOutcome:
    package_arn: str
    config_before: str
    described: dict          # DescribeEndpoint once the update ended
    caller: EndpointCaller
    seconds: float           # from the approval to the end of the update


def approve_while_calling(stack: LocalStack, artifact: Path, label: str, timeout: float = 90.0) -> ApprovalOutcome:
    """Registers the artifact pending, starts a caller, approves the package (the EventBridge rule runs the deploy
    Lambda) and waits until the endpoint is no longer Updating."""
    import time

    from local_runtime.moto_ext.model_package_updates import wait_for_deliveries

    sm, endpoint = stack.client("sagemaker"), stack.config.endpoint.name
    arn = deploy_artifact(stack, artifact, label, "PendingManualApproval")
    before = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    caller = EndpointCaller(stack)
    caller.start()
    time.sleep(0.5)
    started = time.monotonic()
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    wait_for_deliveries()     # the approval event reaches the deploy Lambda asynchronously, as on AWS
    described = sm.describe_endpoint(EndpointName=endpoint)
    while described["EndpointStatus"] == "Updating" and time.monotonic() - started < timeout:
        time.sleep(0.2)
        described = sm.describe_endpoint(EndpointName=endpoint)
    seconds = time.monotonic() - started
    time.sleep(0.5)
    caller.stop()
    return ApprovalOutcome(arn, before, described, caller, seconds)
