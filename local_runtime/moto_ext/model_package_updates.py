"""UpdateModelPackage as on AWS: metadata it is not told to change stays, and approvals emit events.

moto's UpdateModelPackage replaces CustomerMetadataProperties with whatever the request holds,
so approving a package without them erased its accuracy and commit, and clears the approval status
and description a request does not name; here the request's properties are merged into the
package's, less CustomerMetadataPropertiesToRemove, and what the request leaves out stays.

On AWS, approving or rejecting a package in the registry emits the "SageMaker Model Package
State Change" event (the documented shape: tests/contracts/model_package_state_change.json) and
the deploy Lambda's EventBridge rule acts on it. moto's SageMaker emits no events and moto's
EventBridge cannot invoke Lambda targets, so here an UpdateModelPackage that sets an approval
status publishes the event to the default bus's enabled rules whose pattern matches, and hands
it to their Lambda targets the way EventBridge does: as an asynchronous invocation. The API call
returns at once; a background thread invokes the function (the same in-process handlers),
retries a function error as Lambda does (MaximumRetryAttempts of the function's event invoke
config, default 2; after 1 s and 2 s here instead of 1 and 2 minutes), and then sends the
documented invocation record to the config's OnFailure SQS destination, or logs that the event
was dropped when there is none. The canary test in
tests/local_runtime/moto_ext/test_model_package_updates.py fails loudly if a moto upgrade
reshapes what is used here.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime

from local_runtime.moto_ext.hot_paths import cached_boto_client_for

DETAIL_TYPE = "SageMaker Model Package State Change"
DETAIL_FIELDS = ("ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn", "CreationTime",
                 "InferenceSpecification", "ModelPackageStatus", "ModelPackageStatusDetails", "CertifyForMarketplace",
                 "ModelApprovalStatus", "MetadataProperties", "ModelMetrics", "LastModifiedTime")
RETRY_DELAYS_SECONDS = (1.0, 2.0)        # Lambda: 1 and 2 minutes between the three attempts
DEFAULT_RETRY_ATTEMPTS = 2
log = logging.getLogger("local_runtime.events")
_deliveries: list[threading.Thread] = []


def _event_time(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else str(value)


def state_change_event(package, account_id: str, region: str) -> dict:
    """The documented event: the package's description under ``detail``, times as ISO 8601 UTC."""
    described = package.gen_response_object()
    described["ModelPackageArn"] = package.arn
    described.setdefault("LastModifiedTime", described.get("CreationTime"))
    detail = {key: _event_time(described[key]) if key.endswith("Time") else described[key]
              for key in DETAIL_FIELDS if described.get(key) is not None}
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": DETAIL_TYPE, "source": "aws.sagemaker",
        "account": account_id, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
        "resources": [package.arn], "detail": detail,
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
        thread = threading.Thread(target=deliver, args=(arn, event, region), name=f"event-to-{arn.rsplit(':', 1)[-1]}",
                                  daemon=True)
        _deliveries.append(thread)
        thread.start()


def wait_for_deliveries(timeout: float = 60.0) -> None:
    """Blocks until the events handed to Lambda so far are processed (tests, and saving state)."""
    deadline = time.monotonic() + timeout
    while _deliveries:
        thread = _deliveries[0]
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            return
        _deliveries.remove(thread)


def invocation_record(arn: str, event: dict, request_id: str, attempts: int, response: dict, payload) -> dict:
    """Lambda's documented invocation record for an on-failure destination."""
    return {"version": "1.0", "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {"requestId": request_id, "functionArn": f"{arn}:$LATEST",
                               "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
            "requestPayload": event,
            "responseContext": {"statusCode": response.get("StatusCode", 200),
                                "executedVersion": response.get("ExecutedVersion", "$LATEST"),
                                "functionError": "Unhandled"},
            "responsePayload": payload}


def deliver(arn: str, event: dict, region: str) -> None:
    """One asynchronous invocation: attempts, retries on function errors, then the on-failure destination."""
    lam = cached_boto_client_for(region, "lambda")
    try:
        config = lam.get_function_event_invoke_config(FunctionName=arn)
    except Exception:   # no event invoke config: Lambda's defaults, no destination
        config = {}
    attempts = 1 + int(config.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS))
    request_id, response, payload = str(uuid.uuid4()), {}, None
    for attempt in range(1, attempts + 1):
        try:
            response = lam.invoke(FunctionName=arn, Payload=json.dumps(event))
            payload = json.loads(response["Payload"].read() or b"null")
        except Exception as exc:   # like EventBridge, a failing target never fails the API call
            response, payload = {}, {"errorMessage": str(exc), "errorType": type(exc).__name__}
        else:
            if not response.get("FunctionError"):
                log.info("%s %s -> %s: %s", DETAIL_TYPE, event["detail"].get("ModelApprovalStatus"), arn, payload)
                return
        log.warning("%s -> %s failed (attempt %d of %d): %s", DETAIL_TYPE, arn, attempt, attempts, payload)
        if attempt < attempts:
            time.sleep(RETRY_DELAYS_SECONDS[min(attempt, len(RETRY_DELAYS_SECONDS)) - 1])
    destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    if not destination or destination.split(":")[2] != "sqs":
        log.error("%s for %s dropped after %d attempts: the function has no on-failure destination",
                  DETAIL_TYPE, event["detail"].get("ModelPackageArn"), attempts)
        return
    sqs = cached_boto_client_for(region, "sqs")
    queue_url = sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[-1])["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(
        invocation_record(arn, event, request_id, attempts, response, payload)))
    log.error("%s for %s failed %d times; its invocation record is in %s", DETAIL_TYPE,
              event["detail"].get("ModelPackageArn"), attempts, destination)


def merged_metadata(current: dict | None, given: dict | None, removed: list[str] | None) -> dict:
    merged = {**(current or {}), **(given or {})}
    for key in removed or []:
        merged.pop(key, None)
    return merged


def _update_model_package_like_aws(self):
    package = self.sagemaker_backend.describe_model_package(self._get_param("ModelPackageArn"))
    metadata = merged_metadata(package.customer_metadata_properties, self._get_param("CustomerMetadataProperties"),
                               self._get_param("CustomerMetadataPropertiesToRemove"))
    status, description = package.model_approval_status, package.approval_description
    result = _ORIGINAL[0](self)
    package.customer_metadata_properties = metadata
    if not self._get_param("ModelApprovalStatus"):     # AWS leaves what the request does not name (moto clears it)
        package.model_approval_status = status
    if self._get_param("ApprovalDescription") is None:
        package.approval_description = description
    if self._get_param("ModelApprovalStatus"):
        publish(package, self.current_account, self.region)
    return result


_ORIGINAL: list = []


def install() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    if SageMakerResponse.update_model_package is not _update_model_package_like_aws:
        _ORIGINAL[:] = [SageMakerResponse.update_model_package]
        SageMakerResponse.update_model_package = _update_model_package_like_aws
