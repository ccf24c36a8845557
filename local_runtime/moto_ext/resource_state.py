"""The saved state's documents, read straight from moto's backends (no request per resource).

Each function returns ``{name: document}`` for one kind of resource, in the request shapes the
restore replays (``local_runtime/state.py``): what CreateModelPackage, CreateModel,
CreateEndpointConfig, CreateEndpoint, CreatePipeline, PutRule and PutTargets take. Reading the
backends is what lets every acknowledged change be written before the answer at the cost of a
dictionary walk rather than a describe call per resource. Nothing here settles or changes a
resource: an endpoint is saved as DescribeEndpoint last showed it. The canary test in
tests/local_runtime/moto_ext/test_resource_state.py fails loudly if a moto upgrade reshapes what
is read here.
"""
from __future__ import annotations

import json

from local_runtime.aws_env import ACCOUNT_ID

PACKAGE_FIELDS = ("ModelPackageGroupName", "InferenceSpecification", "ModelMetrics", "MetadataProperties",
                  "CustomerMetadataProperties", "Domain", "Task", "ModelPackageDescription")


def _sagemaker(region: str):
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT_ID][region]


def _events(region: str):
    from moto.events.models import events_backends

    return events_backends[ACCOUNT_ID][region]


def model_package_groups(region: str) -> dict[str, dict]:
    out = {}
    for name, group in list(_sagemaker(region).model_package_groups.items()):
        document = {"ModelPackageGroupName": name}
        if group.model_package_group_description:
            document["ModelPackageGroupDescription"] = group.model_package_group_description
        out[name] = document
    return out


def model_packages(region: str) -> dict[str, dict]:
    out = {}
    for arn, package in list(_sagemaker(region).model_packages.items()):
        detail = package.gen_response_object()
        document = {k: detail[k] for k in PACKAGE_FIELDS if detail.get(k)}
        document.update(ModelApprovalStatus=detail["ModelApprovalStatus"], ModelPackageArn=arn,
                        ModelPackageVersion=detail.get("ModelPackageVersion"))
        if detail.get("ApprovalDescription"):
            document["ApprovalDescription"] = detail["ApprovalDescription"]
        out[arn] = document
    return out


def set_approval_description(region: str, package_arn: str, description: str) -> None:
    """What UpdateModelPackage set besides the status (CreateModelPackage has no such field), without an event."""
    package = _sagemaker(region).model_packages.get(package_arn)
    if package is not None:
        package.approval_description = description


def models(region: str) -> dict[str, dict]:
    out = {}
    for name, model in list(_sagemaker(region)._models.items()):
        detail = model.response_object
        out[name] = {k: detail[k] for k in ("ModelName", "ExecutionRoleArn", "PrimaryContainer", "Containers")
                     if detail.get(k)}
    return out


def endpoint_configs(region: str) -> dict[str, dict]:
    out = {}
    for name, config in list(_sagemaker(region).endpoint_configs.items()):
        detail = config.response_object
        out[name] = {k: detail[k] for k in ("EndpointConfigName", "ProductionVariants", "DataCaptureConfig")
                     if detail.get(k)}
    return out


def endpoints(region: str) -> dict[str, dict]:
    return {name: {"EndpointName": name, "EndpointConfigName": endpoint.endpoint_config_name}
            for name, endpoint in list(_sagemaker(region).endpoints.items())}


def pipelines(region: str) -> dict[str, dict]:
    out = {}
    for name, pipeline in list(_sagemaker(region).pipelines.items()):
        document = {"PipelineName": name}
        for field, attribute in (("PipelineDisplayName", "pipeline_display_name"),
                                 ("PipelineDefinition", "pipeline_definition"),
                                 ("PipelineDescription", "pipeline_description"), ("RoleArn", "role_arn")):
            value = getattr(pipeline, attribute, None)
            if value:
                document[field] = value
        tags = [dict(tag) for tag in getattr(pipeline, "tags", None) or []]
        if tags:
            document["Tags"] = tags
        out[name] = document
    return out


def event_rules(region: str) -> dict[str, dict]:
    """Every rule of every bus with its targets: ``<bus>/<rule>`` -> PutRule's arguments plus ``Targets``."""
    out = {}
    for bus_name, bus in list(_events(region).event_buses.items()):
        for name, rule in list(bus.rules.items()):
            document = {"Name": name, "EventBusName": bus_name, "State": rule.state,
                        "Targets": [dict(t) for t in rule.targets]}
            pattern = rule.event_pattern.dump() if rule.event_pattern is not None else None
            if pattern:
                document["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
            for field, value in (("ScheduleExpression", rule.scheduled_expression),
                                 ("Description", rule.description), ("RoleArn", rule.role_arn)):
                if value:
                    document[field] = value
            out[f"{bus_name}/{name}"] = document
    return out


def event_buses(region: str) -> list[str]:
    return list(_events(region).event_buses)
