"""Deploys approved model packages to the real-time endpoint (an AWS Lambda, boto3 only).

Triggered by the pipeline's DeployModel step (``{"model_package_arn": …}``) and by the
EventBridge rule on "SageMaker Model Package State Change". Only an ``Approved`` package is
deployed; a live package that becomes ``Rejected`` is replaced by the newest approved one.
Names derive from the package version, so a re-run with the same package changes nothing.

Environment: ENDPOINT_NAME, EXECUTION_ROLE_ARN, CAPTURE_S3_URI, and optionally
ENDPOINT_INSTANCE_TYPE (ml.m5.large), INITIAL_INSTANCE_COUNT (1),
CAPTURE_SAMPLING_PERCENTAGE (100), and for guarded updates ROLLBACK_ALARMS (comma-separated
CloudWatch alarm names), CANARY_PERCENT (10), CANARY_WAIT_SECONDS (600), TERMINATION_WAIT_SECONDS (0):
with alarms, an update is a blue/green deployment with canary traffic shifting that SageMaker
rolls back when one of the alarms goes to ALARM.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger()
log.setLevel(logging.INFO)

VARIANT = "AllTraffic"
STATE_CHANGE = "SageMaker Model Package State Change"


class DeploymentConfigError(ValueError):
    """The function's environment is incomplete or out of range."""


@dataclass(frozen=True)
class DeploySettings:
    endpoint_name: str
    execution_role_arn: str
    capture_s3_uri: str
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    capture_sampling_percentage: int = 100
    rollback_alarms: tuple[str, ...] = ()
    canary_percent: int = 10
    canary_wait_seconds: int = 600
    termination_wait_seconds: int = 0

    @classmethod
    def from_environment(cls, environ=os.environ) -> "DeploySettings":
        missing = [k for k in ("ENDPOINT_NAME", "EXECUTION_ROLE_ARN", "CAPTURE_S3_URI") if not environ.get(k)]
        if missing:
            raise DeploymentConfigError(f"environment variables {missing} are not set on the deploy function")
        try:
            sampling = int(environ.get("CAPTURE_SAMPLING_PERCENTAGE", "100"))
            count = int(environ.get("INITIAL_INSTANCE_COUNT", "1"))
        except ValueError as exc:
            raise DeploymentConfigError(f"CAPTURE_SAMPLING_PERCENTAGE/INITIAL_INSTANCE_COUNT must be integers: {exc}") from None
        if not 0 <= sampling <= 100:
            raise DeploymentConfigError(f"CAPTURE_SAMPLING_PERCENTAGE={sampling} is outside [0, 100]")
        alarms = tuple(a.strip() for a in environ.get("ROLLBACK_ALARMS", "").split(",") if a.strip())
        try:
            canary = int(environ.get("CANARY_PERCENT", "10"))
            wait = int(environ.get("CANARY_WAIT_SECONDS", "600"))
            termination = int(environ.get("TERMINATION_WAIT_SECONDS", "0"))
        except ValueError as exc:
            raise DeploymentConfigError(f"CANARY_PERCENT/CANARY_WAIT_SECONDS/TERMINATION_WAIT_SECONDS must be "
                                        f"integers: {exc}") from None
        if not 1 <= canary <= 50 or not 0 <= wait <= 3600 or not 0 <= termination <= 3600:
            raise DeploymentConfigError(f"CANARY_PERCENT={canary} must be in [1, 50], CANARY_WAIT_SECONDS={wait} and "
                                        f"TERMINATION_WAIT_SECONDS={termination} in [0, 3600]")
        return cls(environ["ENDPOINT_NAME"], environ["EXECUTION_ROLE_ARN"], environ["CAPTURE_S3_URI"],
                   environ.get("ENDPOINT_INSTANCE_TYPE", "ml.m5.large"), count, sampling, alarms, canary, wait,
                   termination)

    def deployment_config(self) -> dict | None:
        """UpdateEndpoint's DeploymentConfig: blue/green, canary traffic shifting, rollback on the alarms."""
        if not self.rollback_alarms:
            return None
        return {"BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY", "WaitIntervalInSeconds": self.canary_wait_seconds,
                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": self.canary_percent}},
                    "TerminationWaitInSeconds": self.termination_wait_seconds},
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in self.rollback_alarms]}}


def resource_name(endpoint_name: str, package: dict) -> str:
    """One Model and one EndpointConfig per package version: ``<endpoint>-v<version>``."""
    return f"{endpoint_name}-v{package['ModelPackageVersion']}"


def _exists(call, **kwargs) -> dict | None:
    try:
        return call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound", "ResourceNotFoundException"):
            return None
        raise


def live_package_arn(sm, endpoint_name: str) -> str | None:
    endpoint = _exists(sm.describe_endpoint, EndpointName=endpoint_name)
    if endpoint is None:
        return None
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return model.get("PrimaryContainer", {}).get("ModelPackageName")


def latest_approved_arn(sm, group: str, exclude: str | None = None) -> str | None:
    pages = sm.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending")
    for page in pages:
        for summary in page["ModelPackageSummaryList"]:
            if summary["ModelPackageArn"] != exclude:
                return summary["ModelPackageArn"]
    return None


def deploy_package(sm, package_arn: str, settings: DeploySettings) -> dict:
    package = sm.describe_model_package(ModelPackageName=package_arn)
    status = package["ModelApprovalStatus"]
    if status != "Approved":
        log.info("package %s is %s: awaiting approval, endpoint untouched", package_arn, status)
        return {"status": "awaiting approval", "approval_status": status, "endpoint_name": settings.endpoint_name,
                "model_package_arn": package_arn}
    name = resource_name(settings.endpoint_name, package)
    if _exists(sm.describe_model, ModelName=name) is None:
        sm.create_model(ModelName=name, ExecutionRoleArn=settings.execution_role_arn,
                        PrimaryContainer={"ModelPackageName": package_arn})
    if _exists(sm.describe_endpoint_config, EndpointConfigName=name) is None:
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{"VariantName": VARIANT, "ModelName": name, "InstanceType": settings.instance_type,
                                 "InitialInstanceCount": settings.initial_instance_count}],
            DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": settings.capture_sampling_percentage,
                               "DestinationS3Uri": settings.capture_s3_uri,
                               "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                               "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}})
    endpoint = _exists(sm.describe_endpoint, EndpointName=settings.endpoint_name)
    if endpoint is None:
        sm.create_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName=name)
        action = "created"
    elif endpoint["EndpointConfigName"] == name:
        action = "unchanged"
    else:
        guarded = settings.deployment_config()
        sm.update_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName=name,
                           **({"DeploymentConfig": guarded} if guarded else {}))
        action = "updating (blue/green canary)" if guarded else "updated"
    log.info("endpoint %s %s with %s", settings.endpoint_name, action, name)
    return {"status": action, "endpoint_name": settings.endpoint_name, "endpoint_config_name": name,
            "model_package_arn": package_arn}


def handle_rejection(sm, package_arn: str, settings: DeploySettings) -> dict:
    if live_package_arn(sm, settings.endpoint_name) != package_arn:
        return {"status": "not live", "endpoint_name": settings.endpoint_name, "model_package_arn": package_arn}
    group = sm.describe_model_package(ModelPackageName=package_arn)["ModelPackageGroupName"]
    fallback = latest_approved_arn(sm, group, exclude=package_arn)
    if fallback is None:
        log.error("rejected package %s is live and no other approved package exists", package_arn)
        return {"status": "rejected but live: no approved package to roll back to",
                "endpoint_name": settings.endpoint_name, "model_package_arn": package_arn}
    result = deploy_package(sm, fallback, settings)
    return {**result, "status": "rolled back", "rolled_back_from": package_arn}


def lambda_handler(event, context):
    settings = DeploySettings.from_environment()
    sm = boto3.client("sagemaker")
    if event.get("detail-type") == STATE_CHANGE:
        detail = event["detail"]
        package_arn, status = detail["ModelPackageArn"], detail["ModelApprovalStatus"]
        if status == "Rejected":
            return handle_rejection(sm, package_arn, settings)
        return deploy_package(sm, package_arn, settings)
    package_arn = event.get("model_package_arn")
    if not package_arn:
        raise ValueError("event has neither 'model_package_arn' nor an EventBridge model package state change")
    return deploy_package(sm, package_arn, settings)
