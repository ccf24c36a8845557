"""Reads an image from S3 and returns it base64-encoded for the next state.

Event ``{"s3_bucket", "s3_key"}`` → ``{"image_data": <base64 str>, "s3_bucket", "s3_key", "inferences": []}``.
"""
import base64
import logging

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger()
log.setLevel(logging.INFO)

# Step Functions caps a state's input/output at 256 KiB; base64 adds a third, plus the envelope.
MAX_IMAGE_BYTES = 180 * 1024
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")

s3 = boto3.client("s3")


class InvalidEventError(ValueError):
    """The event is not a JSON object, or lacks s3_bucket or s3_key, or they are empty."""


class ImageNotFoundError(LookupError):
    """No object at s3://bucket/key."""


class ImageTooLargeError(ValueError):
    """The image would not fit in a Step Functions payload (256 KiB state limit)."""


class NotAnImageError(ValueError):
    """The object is not a PNG, JPEG, GIF or BMP image."""


def _json_type(value) -> str:
    """The JSON name of a decoded value's type, for messages about the event's shape."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def lambda_handler(event, context):
    if not isinstance(event, dict):
        raise InvalidEventError(f'the workflow input must be a JSON object like {{"s3_bucket": "…", "s3_key": "…"}}; '
                                f"got a JSON {_json_type(event)}")
    bucket, key = event.get("s3_bucket"), event.get("s3_key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise InvalidEventError(f"event needs non-empty 's3_bucket' and 's3_key' strings; got keys {sorted(event)[:10]}")
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            raise ImageNotFoundError(f"s3://{bucket}/{key} does not exist") from None
        raise
    size = response["ContentLength"]
    if size > MAX_IMAGE_BYTES:
        response["Body"].close()
        raise ImageTooLargeError(f"s3://{bucket}/{key} is {size} bytes; base64 of more than "
                                 f"{MAX_IMAGE_BYTES} bytes exceeds the 256 KiB Step Functions payload limit. "
                                 "Resize the image or pass it by reference")
    body = response["Body"].read()
    if not body.startswith(_SIGNATURES):
        raise NotAnImageError(f"s3://{bucket}/{key} is not a PNG/JPEG/GIF/BMP image")
    log.info("serialized s3://%s/%s (%d bytes)", bucket, key, len(body))
    return {"image_data": base64.b64encode(body).decode("ascii"), "s3_bucket": bucket, "s3_key": key,
            "inferences": []}
