"""Keeps the real-time endpoint on the newest approved model package (an AWS Lambda: stdlib + boto3 only).

Triggered by the pipeline's DeployModel step (``{"model_package_arn": …}``, synchronous) and by
the EventBridge rule on "SageMaker Model Package State Change" for Approved and Rejected
(asynchronous). Every trigger asks for the same thing: the endpoint serves the newest Approved
package of the group. So a duplicate or late event (SageMaker may emit several events per change
and EventBridge delivers at least once) changes nothing, two approvals back to back end on the
newer package, and a rejected live package is replaced by the newest other approved one.
Models and endpoint configs are named ``<endpoint>-v<version>``; creating one that exists (a
concurrent deploy won the race) counts as done.

The endpoint is only changed when it is not in progress, as SageMaker requires: while it is
Creating or Updating the function waits, bounded by its remaining time; a Failed endpoint (which
SageMaker only lets you delete) is deleted and created again. Still busy when time runs out, it
raises EndpointBusyError: Lambda retries the asynchronous event and finally hands it to the
function's on-failure destination, so an approval is never lost silently. An update that failed or
was rolled back is not started again by a later event: the endpoint's ATTEMPT_TAG names the config
each update went to, and while DescribeEndpoint shows a FailureReason that config is left alone.

Environment: ENDPOINT_NAME, EXECUTION_ROLE_ARN, CAPTURE_S3_URI, and optionally
ENDPOINT_INSTANCE_TYPE (ml.m5.large), INITIAL_INSTANCE_COUNT (1), CAPTURE_SAMPLING_PERCENTAGE (100),
ENDPOINT_POLL_SECONDS (15), and for guarded updates ROLLBACK_ALARMS (comma-separated CloudWatch
alarm names), CANARY_PERCENT (10), CANARY_WAIT_SECONDS (600), TERMINATION_WAIT_SECONDS (0): with
alarms, an update is a blue/green deployment with canary traffic shifting that SageMaker rolls back
when one of the alarms goes to ALARM (the endpoint then stays InService on the old config with a
FailureReason).
"""
from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger()
log.setLevel(logging.INFO)

VARIANT = "AllTraffic"
ATTEMPT_TAG = "scones:last-update-config"
OUTCOME_TAG = "scones:recorded-outcome-config"     # the attempt whose outcome is in its package's metadata
_METADATA_DISALLOWED = re.compile(r"[^\w\s.:/=+\-@]")
_DEPLOYMENT_KEY = re.compile(r"^deployment-(\d+)$")
STATE_CHANGE = "SageMaker Model Package State Change"
IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
SAFETY_SECONDS = 10.0          # stop waiting this long before the function's timeout
WAIT_WITHOUT_CONTEXT = 60.0    # bound when called outside Lambda (no context)


class InvalidEventError(ValueError):
    """The event is neither a pipeline request nor a model package state change."""


class DeploymentConfigError(ValueError):
    """The function's environment is incomplete or out of range."""


class EndpointBusyError(RuntimeError):
    """The endpoint stayed Creating/Updating/Deleting for the whole invocation; the event is retried."""


@dataclass(frozen=True)
class DeploySettings:
    endpoint_name: str
    execution_role_arn: str
    capture_s3_uri: str
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    capture_sampling_percentage: int = 100
    poll_seconds: float = 15.0
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
        try:
            poll = float(environ.get("ENDPOINT_POLL_SECONDS", "15"))
        except ValueError:
            raise DeploymentConfigError(f"ENDPOINT_POLL_SECONDS={environ['ENDPOINT_POLL_SECONDS']!r} is not a number") from None
        if not 0 <= sampling <= 100:
            raise DeploymentConfigError(f"CAPTURE_SAMPLING_PERCENTAGE={sampling} is outside [0, 100]")
        if not poll > 0:
            raise DeploymentConfigError(f"ENDPOINT_POLL_SECONDS={poll} must be > 0")
        alarms = tuple(a.strip() for a in environ.get("ROLLBACK_ALARMS", "").split(",") if a.strip())
        try:
            canary = int(environ.get("CANARY_PERCENT", "10"))
            wait = int(environ.get("CANARY_WAIT_SECONDS", "600"))
            termination = int(environ.get("TERMINATION_WAIT_SECONDS", "0"))
        except ValueError as exc:
            raise DeploymentConfigError(f"CANARY_PERCENT/CANARY_WAIT_SECONDS/TERMINATION_WAIT_SECONDS must be "
                                        f"integers: {exc}") from None
        # UpdateEndpoint's limits: WaitIntervalInSeconds and TerminationWaitInSeconds in [0, 3600]
        if not 1 <= canary <= 50 or not 0 <= wait <= 3600 or not 0 <= termination <= 3600:
            raise DeploymentConfigError(f"CANARY_PERCENT={canary} must be in [1, 50], CANARY_WAIT_SECONDS={wait} and "
                                        f"TERMINATION_WAIT_SECONDS={termination} in [0, 3600]")
        return cls(environ["ENDPOINT_NAME"], environ["EXECUTION_ROLE_ARN"], environ["CAPTURE_S3_URI"],
                   environ.get("ENDPOINT_INSTANCE_TYPE", "ml.m5.large"), count, sampling, poll, alarms, canary, wait,
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


@dataclass(frozen=True)
class DeployRequest:
    """What triggered this invocation: the package it names and whether it is a rejection."""
    package_arn: str
    rejected: bool = False
    group: str | None = None


def _json_type(value) -> str:
    """The JSON name of a decoded value's type, for messages about the event's shape."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def parse_event(event) -> DeployRequest:
    if not isinstance(event, dict):
        raise InvalidEventError(f"the deploy function expects a JSON object, got a JSON {_json_type(event)}")
    if event.get("detail-type") == STATE_CHANGE:
        detail = event.get("detail")
        if not isinstance(detail, dict) or not isinstance(detail.get("ModelPackageArn"), str) \
                or not isinstance(detail.get("ModelApprovalStatus"), str):
            raise InvalidEventError(f"'{STATE_CHANGE}' event without detail.ModelPackageArn and "
                                    "detail.ModelApprovalStatus strings")
        group = detail.get("ModelPackageGroupName")
        return DeployRequest(detail["ModelPackageArn"], detail["ModelApprovalStatus"] == "Rejected",
                             group if isinstance(group, str) else None)
    package_arn = event.get("model_package_arn")
    if not isinstance(package_arn, str) or not package_arn:
        raise InvalidEventError("event has neither 'model_package_arn' nor an EventBridge model package state "
                                f"change; keys: {sorted(event)[:10]}")
    return DeployRequest(package_arn)


def resource_name(endpoint_name: str, version: int) -> str:
    """One Model and one EndpointConfig per package version: ``<endpoint>-v<version>``."""
    return f"{endpoint_name}-v{version}"


def _error(exc: ClientError) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    return error.get("Code", ""), error.get("Message", "")


def _not_found(exc: ClientError) -> bool:
    code, message = _error(exc)
    return code in ("ResourceNotFound", "ResourceNotFoundException") or (
        code == "ValidationException" and message.startswith("Could not find"))


def _already_exists(exc: ClientError) -> bool:
    code, message = _error(exc)
    return code == "ValidationException" and message.startswith("Cannot create already existing")


def _in_progress(exc: ClientError) -> bool:
    code, message = _error(exc)
    return code == "ValidationException" and message.startswith("Cannot update in-progress")


def describe_endpoint(sm, endpoint_name: str) -> dict | None:
    try:
        return sm.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise


def live_package_arn(sm, endpoint_name: str) -> str | None:
    """The package behind the endpoint's current config (during Updating: the old one, which still serves)."""
    endpoint = describe_endpoint(sm, endpoint_name)
    if endpoint is None:
        return None
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return model.get("PrimaryContainer", {}).get("ModelPackageName")


def newest_approved(sm, group: str) -> dict | None:
    """The Approved package with the highest version (creation times change when a registry is restored)."""
    newest = None
    pages = sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group,
                                                             ModelApprovalStatus="Approved")
    for page in pages:
        for summary in page["ModelPackageSummaryList"]:
            if newest is None or summary.get("ModelPackageVersion", 0) > newest.get("ModelPackageVersion", 0):
                newest = summary
    return newest


def _create_tolerating_existing(create, **request) -> None:
    try:
        create(**request)
    except ClientError as exc:
        if not _already_exists(exc):
            raise


def ensure_model_and_config(sm, package: dict, settings: DeploySettings) -> str:
    name = resource_name(settings.endpoint_name, package["ModelPackageVersion"])
    _create_tolerating_existing(sm.create_model, ModelName=name, ExecutionRoleArn=settings.execution_role_arn,
                                PrimaryContainer={"ModelPackageName": package["ModelPackageArn"]})
    _create_tolerating_existing(
        sm.create_endpoint_config, EndpointConfigName=name,
        ProductionVariants=[{"VariantName": VARIANT, "ModelName": name, "InstanceType": settings.instance_type,
                             "InitialInstanceCount": settings.initial_instance_count}],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": settings.capture_sampling_percentage,
                           "DestinationS3Uri": settings.capture_s3_uri,
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                           "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}})
    return name


def create_or_join(sm, endpoint_name: str, config_name: str) -> dict | None:
    """Creates the endpoint; if a concurrent deploy created it first, returns what it created instead."""
    try:
        sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
        return None
    except ClientError as exc:
        if not _already_exists(exc):
            raise
    log.info("endpoint %s was created concurrently; continuing from its state", endpoint_name)
    return describe_endpoint(sm, endpoint_name)


class Deadline:
    def __init__(self, context, poll_seconds: float):
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        budget = remaining() / 1000 - SAFETY_SECONDS if remaining else WAIT_WITHOUT_CONTEXT
        self.ends = time.monotonic() + max(0.0, budget)
        self.poll = poll_seconds

    def wait(self, endpoint: dict) -> None:
        """Sleeps one poll interval, or raises EndpointBusyError when no time is left."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise EndpointBusyError(f"endpoint {endpoint['EndpointName']} is still {endpoint['EndpointStatus']}; "
                                    "the event will be retried")
        log.info("endpoint %s is %s; waiting", endpoint["EndpointName"], endpoint["EndpointStatus"])
        time.sleep(min(self.poll, left))


def wait_while_in_progress(sm, endpoint_name: str, deadline: Deadline) -> dict | None:
    while (endpoint := describe_endpoint(sm, endpoint_name)) is not None and endpoint["EndpointStatus"] in IN_PROGRESS:
        deadline.wait(endpoint)
    return endpoint


def converge_endpoint(sm, settings: DeploySettings, config_name: str, deadline: Deadline) -> str:
    """Brings the endpoint to ``config_name``; returns created, creating, recreated, updating or unchanged."""
    recreating = False
    while True:
        endpoint = describe_endpoint(sm, settings.endpoint_name)
        if endpoint is None:
            endpoint = create_or_join(sm, settings.endpoint_name, config_name)
            if endpoint is None:
                return "recreated" if recreating else "created"
            continue   # someone else's endpoint: look at its state again
        status = endpoint["EndpointStatus"]
        if status == "Creating" and endpoint["EndpointConfigName"] == config_name:
            return "creating"
        if status in IN_PROGRESS:
            deadline.wait(endpoint)
            continue
        if status == "Failed":
            log.warning("endpoint %s is Failed (%s): deleting it to create it again", settings.endpoint_name,
                        endpoint.get("FailureReason", "no reason given"))
            try:
                sm.delete_endpoint(EndpointName=settings.endpoint_name)
            except ClientError as exc:
                if not (_not_found(exc) or _in_progress(exc)):
                    raise
            recreating = True
            continue
        record_outcome(sm, endpoint)
        if endpoint["EndpointConfigName"] == config_name:
            return "unchanged"
        if endpoint.get("FailureReason"):
            log.warning("the last update of endpoint %s failed: %s", settings.endpoint_name, endpoint["FailureReason"])
            if last_attempted_config(sm, endpoint) == config_name:
                log.error("not updating %s to %s again: that update failed or was rolled back; see README "
                          "'Release flow' to retry it", settings.endpoint_name, config_name)
                return "not retried: this config's last update failed or was rolled back"
        guarded = settings.deployment_config()
        record_attempt(sm, endpoint, config_name)
        try:
            sm.update_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName=config_name,
                               **({"DeploymentConfig": guarded} if guarded else {}))
            return "updating (blue/green canary)" if guarded else "updating"
        except ClientError as exc:
            if not _in_progress(exc):
                raise


def last_attempted_config(sm, endpoint: dict) -> str | None:
    """The config the last update of this function tried (the endpoint's ATTEMPT_TAG)."""
    return _tags(sm, endpoint).get(ATTEMPT_TAG)


def _tags(sm, endpoint: dict) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in sm.list_tags(ResourceArn=endpoint["EndpointArn"]).get("Tags", [])}


def _set_tag(sm, endpoint: dict, key: str, value: str) -> None:
    sm.delete_tags(ResourceArn=endpoint["EndpointArn"], TagKeys=[key])
    sm.add_tags(ResourceArn=endpoint["EndpointArn"], Tags=[{"Key": key, "Value": value}])


def metadata_value(text: str) -> str:
    """CustomerMetadataProperties values allow letters, digits, spaces and ``_.:/=+-@`` (at most 256)."""
    return " ".join(_METADATA_DISALLOWED.sub(" ", text).split())[:256] or "-"


def record_outcome(sm, endpoint: dict) -> None:
    """How the last update ended, written once into its package's metadata (``deployment-<n>``, and
    ``deployment-<n>-reason`` when it failed or was rolled back), so the registry keeps every deployment
    outcome and not only the endpoint's last FailureReason. Runs when the endpoint is settled again."""
    tags = _tags(sm, endpoint)
    attempted = tags.get(ATTEMPT_TAG)
    if not attempted or tags.get(OUTCOME_TAG) == attempted:
        return
    succeeded = endpoint["EndpointConfigName"] == attempted and not endpoint.get("FailureReason")
    try:
        config = sm.describe_endpoint_config(EndpointConfigName=attempted)
        model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        package_arn = model.get("PrimaryContainer", {}).get("ModelPackageName")
    except ClientError as exc:
        if not _not_found(exc):
            raise
        package_arn = None     # its config or model was deleted since: nothing left to annotate
    if package_arn:
        metadata = sm.describe_model_package(ModelPackageName=package_arn).get("CustomerMetadataProperties", {})
        number = 1 + max((int(m.group(1)) for m in map(_DEPLOYMENT_KEY.match, metadata) if m), default=0)
        when = endpoint["LastModifiedTime"].strftime("%Y-%m-%dT%H:%M:%SZ")
        outcome = "completed" if succeeded else "failed or rolled back"
        values = {f"deployment-{number}": metadata_value(f"{outcome} on {endpoint['EndpointName']} at {when}")}
        if not succeeded:
            values[f"deployment-{number}-reason"] = metadata_value(endpoint.get("FailureReason", ""))
        if len(metadata) + len(values) <= 50:    # CustomerMetadataProperties' limit
            sm.update_model_package(ModelPackageArn=package_arn, CustomerMetadataProperties=values)
        log.info("deployment of %s %s (recorded on %s)", attempted, outcome, package_arn)
    _set_tag(sm, endpoint, OUTCOME_TAG, attempted)


def record_attempt(sm, endpoint: dict, config_name: str) -> None:
    """Tags the endpoint with the config this update goes to, so a duplicate or later event does not start the
    same failed or rolled-back update again (DescribeEndpoint's FailureReason does not name the config)."""
    _set_tag(sm, endpoint, ATTEMPT_TAG, config_name)


def deploy_newest_approved(sm, group: str, settings: DeploySettings, deadline: Deadline) -> dict:
    """The endpoint serves the newest approved package of ``group`` (or nothing changes if there is none)."""
    newest = newest_approved(sm, group)
    if newest is None:
        return {"status": "no approved package", "endpoint_name": settings.endpoint_name}
    config_name = ensure_model_and_config(sm, newest, settings)
    action = converge_endpoint(sm, settings, config_name, deadline)
    log.info("endpoint %s %s with %s", settings.endpoint_name, action, config_name)
    return {"status": action, "endpoint_name": settings.endpoint_name, "endpoint_config_name": config_name,
            "model_package_arn": newest["ModelPackageArn"]}


def handle(sm, request: DeployRequest, settings: DeploySettings, deadline: Deadline) -> dict:
    package = sm.describe_model_package(ModelPackageName=request.package_arn)
    group = request.group or package["ModelPackageGroupName"]
    if not request.rejected and package["ModelApprovalStatus"] != "Approved":
        log.info("package %s is %s: endpoint untouched", request.package_arn, package["ModelApprovalStatus"])
        waiting = package["ModelApprovalStatus"] == "PendingManualApproval"
        return {"status": "awaiting approval" if waiting else "not approved",
                "approval_status": package["ModelApprovalStatus"],
                "endpoint_name": settings.endpoint_name, "model_package_arn": request.package_arn}
    result = deploy_newest_approved(sm, group, settings, deadline)
    if request.rejected:
        if result["status"] == "no approved package":
            wait_while_in_progress(sm, settings.endpoint_name, deadline)   # it may be switching to the rejected one
            if live_package_arn(sm, settings.endpoint_name) == request.package_arn:
                log.error("rejected package %s is live and no other approved package exists", request.package_arn)
                return {"status": "rejected but live: no approved package to roll back to",
                        "endpoint_name": settings.endpoint_name, "model_package_arn": request.package_arn}
            return {"status": "not live", "endpoint_name": settings.endpoint_name,
                    "model_package_arn": request.package_arn}
        result["rejected"] = request.package_arn
    return result


def lambda_handler(event, context):
    request = parse_event(event)
    settings = DeploySettings.from_environment()
    return handle(boto3.client("sagemaker"), request, settings, Deadline(context, settings.poll_seconds))
