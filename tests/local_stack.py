"""A real local stack for integration tests: moto server, in-process Lambdas, the endpoint server."""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from local_runtime.provision import capture_uri
from local_runtime.stack import LocalStack, local_stack
from pipelines.deploy.deployer import DeploySettings, deploy_package
from scones_common.config import SconesConfig, load_config
from tests.builders import write_tiny_model_artifact


@dataclass
class DeployedStack(LocalStack):
    package_arn: str = ""


def register_tiny_model(aws, config: SconesConfig, work: Path, status: str = "Approved") -> str:
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    artifact = write_tiny_model_artifact(work / "model.tar.gz")
    key = f"{config.storage.prefix}/models/tiny/{work.name}/model.tar.gz"
    s3.upload_file(str(artifact), config.storage.bucket, key)
    group = config.registry.model_package_group
    if not sm.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]:
        sm.create_model_package_group(ModelPackageGroupName=group)
    return sm.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus=status,
        InferenceSpecification={"Containers": [{"Image": "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1",
                                                "ModelDataUrl": f"s3://{config.storage.bucket}/{key}"}],
                                "SupportedContentTypes": ["image/png"], "SupportedResponseMIMETypes": ["application/json"]},
    )["ModelPackageArn"]


def start_local_stack(stack: ExitStack, work: Path, capture_flush_seconds: float = 0.2) -> DeployedStack:
    """The local stack with a tiny approved model deployed behind the endpoint."""
    config = load_config(environment="local", environ={})
    local = stack.enter_context(local_stack(config, work, capture_flush_seconds))
    package_arn = register_tiny_model(local.aws, config, work)
    settings = DeploySettings(config.endpoint.name, local.resources.role_arn, capture_uri(config))
    deploy_package(local.client("sagemaker"), package_arn, settings)
    return DeployedStack(local.aws, config, local.resources, local.server, package_arn)
