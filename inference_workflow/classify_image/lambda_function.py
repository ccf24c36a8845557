"""Classifies the serialized image with the SageMaker endpoint named by ENDPOINT_NAME.

Endpoint errors are re-raised under their AWS error names (``ModelError``,
``ThrottlingException``, ``ValidationError``…) so the state machine can retry them on purpose.
"""
import base64
import json
import logging
import os

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

log = logging.getLogger()
log.setLevel(logging.INFO)

runtime = boto3.client("sagemaker-runtime")
_ERRORS = {}


class InvalidEventError(ValueError):
    """The event is not a JSON object with decodable base64 'image_data'."""


class EndpointNotConfiguredError(RuntimeError):
    """ENDPOINT_NAME is not set on the function."""


class EndpointUnreachableError(ConnectionError):
    """The runtime API could not be reached at all."""


class InvalidInferenceError(ValueError):
    """The endpoint answered with something other than class probabilities."""


def aws_error(code: str) -> type:
    """An exception class named exactly like the AWS error code, for Retry/Catch matching."""
    if code not in _ERRORS:
        _ERRORS[code] = type(code, (RuntimeError,), {"__doc__": f"SageMaker runtime error {code}."})
    return _ERRORS[code]


def _json_type(value) -> str:
    """The JSON name of a decoded value's type, for messages about the event's shape."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def lambda_handler(event, context):
    endpoint = os.environ.get("ENDPOINT_NAME")
    if not endpoint:
        raise EndpointNotConfiguredError("set the ENDPOINT_NAME environment variable on the function")
    if not isinstance(event, dict):
        raise InvalidEventError(f"the event must be a JSON object with base64 'image_data'; got a JSON {_json_type(event)}")
    try:
        image = base64.b64decode(event["image_data"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:    # binascii.Error, and non-ASCII text
        raise InvalidEventError(f"event needs base64 'image_data' ({exc})") from None
    try:
        response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/png",
                                           Accept="application/json", Body=image)
    except ClientError as exc:
        error = exc.response["Error"]
        raise aws_error(error.get("Code", "ClientError"))(f"{endpoint}: {error.get('Message', exc)}") from None
    except EndpointConnectionError as exc:
        raise EndpointUnreachableError(f"cannot reach the SageMaker runtime for {endpoint}: {exc}") from None
    inferences = json.loads(response["Body"].read())
    if not (isinstance(inferences, list) and inferences and all(isinstance(p, (int, float)) for p in inferences)):
        raise InvalidInferenceError(f"{endpoint} returned {str(inferences)[:200]}; expected a list of probabilities")
    log.info("%s -> %s", event.get("s3_key"), inferences)
    return {**event, "inferences": [float(p) for p in inferences]}
