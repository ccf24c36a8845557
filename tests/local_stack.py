"""A real local stack for integration tests: moto server, in-process Lambdas, the endpoint server,
and a tiny real ONNX model deployed by the real deploy Lambda."""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from local_runtime.stack import LocalStack, deploy_artifact, local_stack
from scones_common.config import load_config
from tests.builders import write_tiny_model_artifact


@dataclass
class DeployedStack(LocalStack):
    package_arn: str = ""


def deploy_tiny_model(stack: LocalStack, work: Path, status: str = "Approved") -> str:
    artifact = write_tiny_model_artifact(work / "model.tar.gz")
    return deploy_artifact(stack, artifact, f"tiny/{work.name}", status)


def start_local_stack(stack: ExitStack, work: Path, capture_flush_seconds: float = 0.2) -> DeployedStack:
    config = load_config(environment="local", environ={"SCONES__DEPLOYMENT__WAIT_SECONDS": "0"})   # canaries: own tests
    local = stack.enter_context(local_stack(config, work, capture_flush_seconds))
    package_arn = deploy_tiny_model(local, work)
    return DeployedStack(local.aws, config, local.resources, local.server, local.alarms, local.deployments, package_arn)
