"""UpdateModelPackage as on AWS: metadata it is not told to change stays, and approvals emit events.

moto's UpdateModelPackage replaces CustomerMetadataProperties with whatever the request holds,
so approving a package without them erased its accuracy and commit; here the request's
properties are merged into the package's, less CustomerMetadataPropertiesToRemove.

On AWS, approving or rejecting a package in the registry emits this event and the deploy
Lambda's EventBridge rule acts on it. moto's SageMaker emits no events and moto's EventBridge
cannot invoke Lambda targets, so here an UpdateModelPackage that sets an approval status
publishes the event to the default bus's enabled rules whose pattern matches, and invokes their
Lambda targets through the Lambda API (the same in-process handlers). Delivery is synchronous
(on AWS it follows within seconds); a failing target is logged, never fails the API call.
The canary test in tests/local_runtime/moto_ext/test_model_package_updates.py fails loudly if a
moto upgrade reshapes what is used here.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

from local_runtime.moto_ext.hot_paths import cached_boto_client_for

DETAIL_TYPE = "SageMaker Model Package State Change"
log = logging.getLogger("local_runtime.events")


def state_change_event(package, account_id: str, region: str) -> dict:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": DETAIL_TYPE, "source": "aws.sagemaker",
        "account": account_id, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
        "resources": [package.arn],
        "detail": {"ModelPackageGroupName": package.model_package_group_name,
                   "ModelPackageVersion": package.model_package_version, "ModelPackageArn": package.arn,
                   "ModelApprovalStatus": package.model_approval_status},
    }


def lambda_targets(account_id: str, region: str, event: dict) -> list[str]:
    """ARNs of the Lambda targets of enabled default-bus rules that match the event."""
    from moto.events.models import events_backends

    bus = events_backends[account_id][region].event_buses["default"]
    return [target["Arn"] for rule in bus.rules.values()
            if rule.state == "ENABLED" and rule.event_pattern.get_pattern() and rule.event_pattern.matches_event(event)
            for target in rule.targets if target["Arn"].split(":")[2] == "lambda"]


def publish(package, account_id: str, region: str) -> None:
    event = state_change_event(package, account_id, region)
    for arn in lambda_targets(account_id, region, event):
        try:
            response = cached_boto_client_for(region, "lambda").invoke(FunctionName=arn, Payload=json.dumps(event))
            result = json.loads(response["Payload"].read() or b"null")
            level = logging.WARNING if response.get("FunctionError") else logging.INFO
            log.log(level, "%s %s -> %s: %s", DETAIL_TYPE, package.model_approval_status, arn, result)
        except Exception as exc:   # like EventBridge, a failing target never fails the API call
            log.warning("could not deliver %s to %s: %s", DETAIL_TYPE, arn, exc)


def merged_metadata(current: dict | None, given: dict | None, removed: list[str] | None) -> dict:
    merged = {**(current or {}), **(given or {})}
    for key in removed or []:
        merged.pop(key, None)
    return merged


def _update_model_package_like_aws(self):
    package = self.sagemaker_backend.describe_model_package(self._get_param("ModelPackageArn"))
    metadata = merged_metadata(package.customer_metadata_properties, self._get_param("CustomerMetadataProperties"),
                               self._get_param("CustomerMetadataPropertiesToRemove"))
    result = _ORIGINAL[0](self)
    package.customer_metadata_properties = metadata
    if self._get_param("ModelApprovalStatus"):
        publish(package, self.current_account, self.region)
    return result


_ORIGINAL: list = []


def install() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    if SageMakerResponse.update_model_package is not _update_model_package_like_aws:
        _ORIGINAL[:] = [SageMakerResponse.update_model_package]
        SageMakerResponse.update_model_package = _update_model_package_like_aws
