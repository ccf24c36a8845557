"""Human review of low-confidence inferences: the two Lambda steps around the Step Functions callback.

The workflow sends an image the model is unsure of to a person (``RequestReview``: an SQS message
sent with ``sqs:sendMessage.waitForTaskToken``, which waits for ``SendTaskSuccess``). This function
(an AWS Lambda: standard library + boto3 only) does the work on either side of that wait:

- ``{"step": "request", "workflow": <state>, "execution_arn": …}`` (``PrepareReview``): the review
  request. Prediction and confidence from the inferences, the image's S3 URI and SHA-256, the
  model package the endpoint serves, a review id derived from the execution (retries reuse it),
  and the review time. The request is also saved as a record,
  ``<PENDING_S3_URI>/<review id>.json``, so pending reviews can be listed without touching the
  queue (a ReceiveMessage counts as a delivery and pushes messages toward the dead-letter queue)
  and answered even when the execution that asked is gone.
- ``{"step": "record", "workflow": <state with review and answer>}`` (``RecordReview``): checks the
  reviewer's answer (``{"label", "reviewer", "note"}``) and writes one record per review to
  ``<LABELS_S3_URI>/<review id>.json`` with a conditional put (``If-None-Match: *``): a redelivered
  answer or a retried step never writes it twice, and no shared file is ever rewritten. An answer
  that is not valid raises :class:`InvalidReviewAnswerError`, which the state machine catches and
  sends back as a fresh review request (a new task token): the review is never lost.

The pure parts (:func:`validate_answer`, :func:`build_request`, :func:`build_record`) take no AWS
client and are what the tools (``scones-review``, the console) reuse.
"""
import base64
import hashlib
import json
import logging
import math
import os
from datetime import UTC, datetime

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger()
log.setLevel(logging.INFO)

CLASS_NAMES = ("bicycle", "motorcycle")
MAX_REVIEWER = 128
MAX_NOTE = 1000
DEFAULT_TIMEOUT_SECONDS = 7 * 24 * 3600
REVIEW_ID_LENGTH = 16

_clients = {}


class InvalidEventError(ValueError):
    """The event is not a JSON object of one of the two steps."""


class InvalidReviewAnswerError(ValueError):
    """The reviewer's answer is not {"label": <a class>, "reviewer": <who>, "note": <optional text>}."""


class ReviewConfigError(ValueError):
    """An environment variable of the function is missing or not what it should be."""


def _client(name: str):
    if name not in _clients:
        _clients[name] = boto3.client(name)
    return _clients[name]


def _json_type(value) -> str:
    """The JSON name of a decoded value's type, for messages about the event's shape."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def _s3_location(uri: str, variable: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ReviewConfigError(f"{variable}={uri!r} is not an s3://bucket/prefix URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key.rstrip("/")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def review_id_of(execution_arn: str) -> str:
    """A short id, the same for every retry of the execution's review (so its records are written once)."""
    return hashlib.sha256(execution_arn.encode()).hexdigest()[:REVIEW_ID_LENGTH]


def _probabilities(inferences) -> list:
    if not isinstance(inferences, list) or not inferences or not all(
            isinstance(p, (int, float)) and not isinstance(p, bool) and math.isfinite(p) and 0 <= p <= 1
            for p in inferences):
        raise InvalidEventError(f"'inferences' must be a non-empty list of probabilities, got {str(inferences)[:200]}")
    return [float(p) for p in inferences]


def build_request(workflow: dict, execution_arn: str, model_package: str, timeout_seconds: int,
                  requested_at: str) -> dict:
    """The review request for one low-confidence inference (pure: what PrepareReview returns and saves)."""
    if not isinstance(workflow, dict):
        raise InvalidEventError(f"'workflow' must be the workflow's state (a JSON object); got a JSON "
                                f"{_json_type(workflow)}")
    bucket, key = workflow.get("s3_bucket"), workflow.get("s3_key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise InvalidEventError("the workflow's state needs non-empty 's3_bucket' and 's3_key'")
    if not isinstance(execution_arn, str) or not execution_arn:
        raise InvalidEventError("'execution_arn' must be the execution's ARN ($$.Execution.Id)")
    inferences = _probabilities(workflow.get("inferences"))
    confidence = max(inferences)
    best = inferences.index(confidence)
    image_sha256 = ""
    if isinstance(workflow.get("image_data"), str):
        try:
            image_sha256 = hashlib.sha256(base64.b64decode(workflow["image_data"], validate=True)).hexdigest()
        except ValueError:
            image_sha256 = ""
    return {"review_id": review_id_of(execution_arn), "image": f"s3://{bucket}/{key}", "image_sha256": image_sha256,
            "prediction": CLASS_NAMES[best] if best < len(CLASS_NAMES) else str(best), "confidence": confidence,
            "inferences": inferences, "model_package": model_package, "execution_arn": execution_arn,
            "requested_at": requested_at, "timeout_seconds": int(timeout_seconds), "labels": list(CLASS_NAMES),
            "problem": None}


def validate_answer(answer) -> dict:
    """``{"label", "reviewer", "note"}`` checked and cleaned, or :class:`InvalidReviewAnswerError` saying what to send."""
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except ValueError:
            raise InvalidReviewAnswerError(f"the answer is not JSON: {answer[:100]!r}; send "
                                           '{"label": "bicycle"|"motorcycle", "reviewer": "<who>"}') from None
    if not isinstance(answer, dict):
        raise InvalidReviewAnswerError(f"the answer must be a JSON object with 'label' and 'reviewer'; got a JSON "
                                       f"{_json_type(answer)}")
    label = answer.get("label")
    if not isinstance(label, str) or label.strip().lower() not in CLASS_NAMES:
        raise InvalidReviewAnswerError(f"label {str(label)[:60]!r} is not one of the classes {', '.join(CLASS_NAMES)}")
    reviewer = answer.get("reviewer")
    if not isinstance(reviewer, str) or not reviewer.strip() or len(reviewer.strip()) > MAX_REVIEWER:
        raise InvalidReviewAnswerError(f"reviewer must name who answered (1 to {MAX_REVIEWER} characters); got "
                                       f"{str(reviewer)[:60]!r}")
    note = answer.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise InvalidReviewAnswerError(f"note must be text of at most {MAX_NOTE} characters")
    return {"label": label.strip().lower(), "reviewer": reviewer.strip(), "note": note.strip()}


def build_record(review: dict, answer: dict, answered_at: str, recorded_by: str = "workflow") -> dict:
    """The human label of one review (pure): what the record under human-labels/ holds."""
    return {"review_id": review["review_id"], "image": review["image"], "image_sha256": review.get("image_sha256", ""),
            "label": answer["label"], "reviewer": answer["reviewer"], "note": answer["note"],
            "requested_at": review.get("requested_at", ""), "answered_at": answered_at,
            "model_prediction": review.get("prediction", ""), "model_confidence": review.get("confidence"),
            "inferences": review.get("inferences", []), "model_package": review.get("model_package", ""),
            "execution_arn": review.get("execution_arn", ""), "recorded_by": recorded_by}


def _serving_package() -> str:
    """The model package behind the endpoint's current config ("" when there is none or it cannot be read)."""
    endpoint = os.environ.get("ENDPOINT_NAME", "")
    if not endpoint:
        return ""
    sm = _client("sagemaker")
    try:
        config = sm.describe_endpoint_config(
            EndpointConfigName=sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"])
        model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    except ClientError as exc:
        log.warning("could not find the package %s serves: %s", endpoint, exc)
        return ""
    return model.get("PrimaryContainer", {}).get("ModelPackageName", "") or ""


def _timeout_seconds() -> int:
    raw = os.environ.get("REVIEW_TIMEOUT_SECONDS", str(DEFAULT_TIMEOUT_SECONDS))
    try:
        value = int(raw)
    except ValueError:
        raise ReviewConfigError(f"REVIEW_TIMEOUT_SECONDS={raw!r} is not a whole number of seconds") from None
    if not 1 <= value <= 365 * 24 * 3600:
        raise ReviewConfigError(f"REVIEW_TIMEOUT_SECONDS={raw!r} is outside 1 s to one year (an execution's limit)")
    return value


def _put_json(bucket: str, key: str, document: dict, only_if_new: bool) -> bool:
    """Writes the document (one object, atomically); with ``only_if_new`` not over an existing one. Whether written."""
    extra = {"IfNoneMatch": "*"} if only_if_new else {}
    try:
        _client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(document, indent=1).encode(),
                                 ContentType="application/json", **extra)
    except ClientError as exc:
        if only_if_new and exc.response["Error"]["Code"] in ("PreconditionFailed", "412",
                                                             "ConditionalRequestConflict"):
            return False
        raise
    return True


def request_review(event: dict) -> dict:
    review = build_request(event.get("workflow"), event.get("execution_arn"), _serving_package(), _timeout_seconds(),
                           _now())
    bucket, prefix = _s3_location(os.environ.get("PENDING_S3_URI", ""), "PENDING_S3_URI")
    _put_json(bucket, f"{prefix}/{review['review_id']}.json", review, only_if_new=False)
    log.info("review %s requested for %s (%s at %.4f)", review["review_id"], review["image"], review["prediction"],
             review["confidence"])
    workflow = event["workflow"]
    return {"s3_bucket": workflow["s3_bucket"], "s3_key": workflow["s3_key"], "inferences": review["inferences"],
            "review": review}


def record_review(event: dict) -> dict:
    workflow = event.get("workflow")
    if not isinstance(workflow, dict) or not isinstance(workflow.get("review"), dict):
        raise InvalidEventError("the record step needs the workflow's state with its 'review'")
    review = workflow["review"]
    for field in ("review_id", "image"):
        if not isinstance(review.get(field), str) or not review[field]:
            raise InvalidEventError(f"the review lacks {field!r}")
    answer = validate_answer(workflow.get("answer"))
    labels_bucket, labels_prefix = _s3_location(os.environ.get("LABELS_S3_URI", ""), "LABELS_S3_URI")
    record = build_record(review, answer, _now(), "direct" if event.get("direct") else "workflow")
    key = f"{labels_prefix}/{review['review_id']}.json"
    if not _put_json(labels_bucket, key, record, only_if_new=True):
        record = json.loads(_client("s3").get_object(Bucket=labels_bucket, Key=key)["Body"].read())
        log.info("review %s was recorded already (by %s): kept as it was", review["review_id"], record.get("reviewer"))
    pending_bucket, pending_prefix = _s3_location(os.environ.get("PENDING_S3_URI", ""), "PENDING_S3_URI")
    _client("s3").delete_object(Bucket=pending_bucket, Key=f"{pending_prefix}/{review['review_id']}.json")
    log.info("review %s: %s by %s (the model said %s)", review["review_id"], record["label"], record["reviewer"],
             record["model_prediction"])
    return {"s3_bucket": workflow.get("s3_bucket"), "s3_key": workflow.get("s3_key"),
            "inferences": workflow.get("inferences", []), "predicted_label": record["label"],
            "confidence": record["model_confidence"], "label_source": "human", "reviewer": record["reviewer"],
            "note": record["note"], "model_prediction": record["model_prediction"], "review_id": record["review_id"],
            "record": f"s3://{labels_bucket}/{key}"}


def lambda_handler(event, context):
    if not isinstance(event, dict):
        raise InvalidEventError(f"the event must be a JSON object with 'step'; got a JSON {_json_type(event)}")
    step = event.get("step")
    if step == "request":
        return request_review(event)
    if step == "record":
        return record_review(event)
    raise InvalidEventError(f"'step' must be 'request' or 'record', got {str(step)[:40]!r}")
