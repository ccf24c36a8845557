"""A real local stack for integration tests: moto server, in-process Lambdas, the endpoint server."""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from local_runtime.aws import free_port, local_aws
from local_runtime.provision import Provisioned, provision
from local_runtime.serving.endpoint_server import EndpointServer
from pipelines.deploy.deployer import DeploySettings, deploy_package
from scones_common.config import SconesConfig, load_config
from tests.builders import write_tiny_model_artifact


@dataclass
class LocalStack:
    aws: object
    config: SconesConfig
    resources: Provisioned
    server: EndpointServer
    package_arn: str

    def client(self, service: str):
        return self.aws.client(service)


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


def start_local_stack(stack: ExitStack, work: Path, capture_flush_seconds: float = 0.2) -> LocalStack:
    config = load_config(environment="local", environ={})
    port = free_port()
    aws = stack.enter_context(local_aws(config.project.region, runtime_url=f"http://127.0.0.1:{port}"))
    server = EndpointServer(aws, work, config.endpoint.name, port=port, capture_flush_seconds=capture_flush_seconds).start()
    stack.callback(server.stop)
    resources = provision(aws, config)
    package_arn = register_tiny_model(aws, config, work)
    settings = DeploySettings(config.endpoint.name, resources.role_arn, f"{config.s3_root}/{config.endpoint.capture_prefix}")
    deploy_package(aws.client("sagemaker"), package_arn, settings)
    return LocalStack(aws, config, resources, server, package_arn)
