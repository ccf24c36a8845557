"""CreateModel and RegisterModel steps: their arguments are the SageMaker API requests."""
from __future__ import annotations

from botocore.exceptions import ClientError

from local_runtime.pipeline.runners.base import StepContext, StepFailedError


def create_model(args: dict, ctx: StepContext) -> tuple[dict, dict]:
    name = ctx.job_name
    ctx.clients.client("sagemaker").create_model(ModelName=name, **args)
    return {**args, "ModelName": name}, {}


def register_model(args: dict, ctx: StepContext) -> tuple[dict, dict]:
    sm = ctx.clients.client("sagemaker")
    group = args["ModelPackageGroupName"]
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError:
        sm.create_model_package_group(ModelPackageGroupName=group,
                                      ModelPackageGroupDescription=f"created by pipeline {ctx.pipeline_name}")
    request = {k: v for k, v in args.items() if v not in ({}, None)}
    if "ModelMetrics" in request:
        request["ModelMetrics"] = {k: v for k, v in request["ModelMetrics"].items() if v}
    try:
        arn = sm.create_model_package(**request)["ModelPackageArn"]
    except ClientError as exc:
        raise StepFailedError(ctx.step_name, f"CreateModelPackage rejected: {exc}") from exc
    return sm.describe_model_package(ModelPackageName=arn), {}
