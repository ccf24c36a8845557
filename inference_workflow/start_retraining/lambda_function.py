"""Starts the retraining pipeline with the human labels recorded so far: the schedule's and the drift rule's target.

EventBridge invokes this function (an AWS Lambda: standard library + boto3 only) for the retraining
schedule (``RetrainScheduleRule``, a "Scheduled Event") and for the drift alarm going to ALARM
(``DriftRetrainRule``, a "CloudWatch Alarm State Change"); any other event starts a run the same way.
It does what ``run-pipeline`` does before a start (``pipelines/scones/launch.py`` calls
:func:`publish_label_set` from here, so there is one implementation):

1. snapshots the human labels (``<LABELS_S3_URI>/<review id>.json``, one per answered review) into
   a folder named after the SHA-256 of its manifest, ``<LABEL_SETS_S3_URI>/sha256-<hex>/``, with a
   copy of each labelled image (``images/<review id>.<ext>``) and ``manifest.json`` written last (a
   manifest present means a complete set; the same labels give the same folder, written once).
   New labels make a new folder, hence a new PrepareData input URI: the step cache cannot hide them;
2. calls StartPipelineExecution on ``PIPELINE_NAME`` with ``ModelApprovalStatus`` (``MODEL_APPROVAL_STATUS``,
   PendingManualApproval: a person approves what retraining produced) and ``HumanLabelsUri`` = that folder.
   The ClientRequestToken is derived from the event id, so a redelivered event (EventBridge and
   Lambda's asynchronous retries resend the same id) never starts a second execution.

Returns (and logs) ``{"pipeline_execution_arn", "human_labels_uri", "labels", "event_id", "trigger"}``.
The manifest format is the contract ``scones_common/contracts/human_labels.py`` (PrepareData reads it);
this folder ships alone, so it keeps its own copy of the writing side, checked equal by the tests.
"""
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger()

MANIFEST_FILE = "manifest.json"
IMAGES_FOLDER = "images"
MANIFEST_VERSION = 1
SET_PREFIX = "sha256-"
DEFAULT_APPROVAL_STATUS = "PendingManualApproval"
TOKEN_NAMESPACE = "scones-start-retraining"
TRIGGERS = {"Scheduled Event": "schedule", "CloudWatch Alarm State Change": "alarm"}

_clients = {}


class RetrainingConfigError(ValueError):
    """An environment variable of the function is missing or not what it should be."""


@dataclass(frozen=True)
class LabelEntry:
    """One human label: the reviewed image (its original URI and its copy in the set) and the person's class."""
    review_id: str
    image: str               # where the workflow read it (s3://…)
    image_sha256: str        # of the image's bytes
    label: str
    file: str                # relative to the set's folder: images/<review id>.<ext>; "" when the image was gone
    reviewer: str = ""
    answered_at: str = ""


def _client(name: str):
    if name not in _clients:
        _clients[name] = boto3.client(name)
    return _clients[name]


def s3_location(uri: str) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` URI; ValueError otherwise."""
    if not isinstance(uri, str) or not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


# -- the manifest (a copy of the contract's writing side) ----------------------------------------------------------

def manifest_document(entries: list) -> dict:
    """The manifest, entries sorted by review id (the same labels always give the same bytes, hence the same set)."""
    return {"version": MANIFEST_VERSION, "labels": [entry.__dict__ for entry in sorted(entries, key=lambda e: e.review_id)]}


def manifest_bytes(entries: list) -> bytes:
    return json.dumps(manifest_document(entries), indent=1, sort_keys=True).encode()


def set_name(entries: list) -> str:
    """The folder name of the set: ``sha256-<hex of the manifest's bytes>``."""
    return SET_PREFIX + hashlib.sha256(manifest_bytes(entries)).hexdigest()


def empty_set_uri(sets_uri: str) -> str:
    """The set of no labels (the pipeline parameter's default)."""
    return f"{sets_uri.rstrip('/')}/{set_name([])}/"


# -- the snapshot ----------------------------------------------------------------------------------------------------

def read_records(s3, uri: str) -> list:
    """Every JSON record with a ``review_id`` under an S3 prefix (anything else is skipped with a warning)."""
    bucket, prefix = s3_location(uri.rstrip("/") + "/")
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".json"):
                continue
            try:
                record = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                    continue             # removed between the listing and the read
                raise
            except ValueError:
                record = None
            if isinstance(record, dict) and isinstance(record.get("review_id"), str):
                records.append(record)
            else:
                log.warning("s3://%s/%s is not a review record; skipped", bucket, obj["Key"])
    return records


def _suffix(key: str) -> str:
    name = key.rsplit("/", 1)[-1].lower()
    return "." + name.rsplit(".", 1)[1] if "." in name and len(name.rsplit(".", 1)[1]) <= 5 else ".img"


def label_entries(s3, records: list) -> tuple:
    """One entry per record, and the source URI each image copy comes from (images gone since are left out)."""
    entries, sources = [], {}
    for record in records:
        image, digest = record.get("image", ""), record.get("image_sha256", "")
        file = ""
        try:
            bucket, key = s3_location(image)
            head = s3.head_object(Bucket=bucket, Key=key)
            digest = digest or head.get("ETag", "").strip('"')
            file = f"{IMAGES_FOLDER}/{record['review_id']}{_suffix(key)}"
            sources[file] = image
        except (ClientError, ValueError) as exc:
            log.warning("human label %s: image %s cannot be read (%s); listed without it", record.get("review_id"),
                        image, exc)
        entries.append(LabelEntry(record["review_id"], image, digest, str(record.get("label", "")), file,
                                  str(record.get("reviewer", "")), str(record.get("answered_at", ""))))
    return entries, sources


def _exists(s3, bucket: str, key: str) -> bool:
    """Whether ``key`` exists, by listing (s3:ListBucket on the sets' prefix is enough; a HEAD of a missing key
    answers 403 instead of 404 to a caller without ListBucket on the whole bucket)."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    return any(obj["Key"] == key for obj in listed)


def publish_label_set(s3, labels_uri: str, sets_uri: str) -> tuple:
    """Writes (once) the set of the labels recorded now; returns (its folder URI ``s3://…/sha256-<hex>/``, entries)."""
    entries, sources = label_entries(s3, read_records(s3, labels_uri))
    bucket, key = s3_location(f"{sets_uri.rstrip('/')}/{set_name(entries)}/")
    manifest_key = f"{key}{MANIFEST_FILE}"
    if not _exists(s3, bucket, manifest_key):       # same labels, same folder: already complete
        for file, source in sources.items():
            source_bucket, source_key = s3_location(source)
            s3.copy_object(Bucket=bucket, Key=f"{key}{file}", CopySource={"Bucket": source_bucket, "Key": source_key})
        s3.put_object(Bucket=bucket, Key=manifest_key, Body=manifest_bytes(entries),
                      ContentType="application/json")     # last: a manifest present means a complete set
    uri = f"s3://{bucket}/{key}"
    log.info("human labels: %d in %s", len(entries), uri)
    return uri, entries


# -- the start -------------------------------------------------------------------------------------------------------

def client_request_token(event, pipeline_name: str) -> str | None:
    """SageMaker's idempotency key for this event: 64 hex characters (the API takes 32 to 128), the same for
    every delivery of the event; None for an event without an id (then every delivery starts a run)."""
    event_id = event.get("id") if isinstance(event, dict) else None
    if not isinstance(event_id, str) or not event_id:
        return None
    return hashlib.sha256(f"{TOKEN_NAMESPACE}\n{pipeline_name}\n{event_id}".encode()).hexdigest()


def trigger_of(event) -> str:
    """"schedule", "alarm" or "event": what started the retraining, for the execution's name."""
    return TRIGGERS.get(event.get("detail-type"), "event") if isinstance(event, dict) else "event"


def start_request(event, pipeline_name: str, labels_uri: str, approval_status: str = DEFAULT_APPROVAL_STATUS) -> dict:
    """The StartPipelineExecution arguments for one event (pure)."""
    event = event if isinstance(event, dict) else {}
    trigger = trigger_of(event)
    when = re.sub(r"[^0-9]", "", str(event.get("time", "")))[:12]
    display = re.sub(r"[^a-zA-Z0-9]+", "-", f"retrain-{trigger}-{when}").strip("-")[:82]
    resources = ", ".join(str(r) for r in event.get("resources", []) if isinstance(r, str))
    description = (f"retraining started by EventBridge event {event.get('id', '(no id)')} "
                   f"({event.get('detail-type', 'unknown type')}{'; ' + resources if resources else ''}) "
                   f"with the human labels in {labels_uri}")
    request = {"PipelineName": pipeline_name, "PipelineExecutionDisplayName": display,
               "PipelineExecutionDescription": description[:3072],
               "PipelineParameters": [{"Name": "ModelApprovalStatus", "Value": approval_status},
                                      {"Name": "HumanLabelsUri", "Value": labels_uri}]}
    token = client_request_token(event, pipeline_name)
    if token:
        request["ClientRequestToken"] = token
    return request


def _environment() -> dict:
    names = ("PIPELINE_NAME", "LABELS_S3_URI", "LABEL_SETS_S3_URI")
    values = {name: os.environ.get(name, "") for name in names}
    for name in names:
        if not values[name]:
            raise RetrainingConfigError(f"environment variable {name} is not set")
    for name in ("LABELS_S3_URI", "LABEL_SETS_S3_URI"):
        try:
            s3_location(values[name])
        except ValueError as exc:
            raise RetrainingConfigError(f"{name}: {exc}") from None
    values["MODEL_APPROVAL_STATUS"] = os.environ.get("MODEL_APPROVAL_STATUS") or DEFAULT_APPROVAL_STATUS
    return values


def lambda_handler(event, context):
    log.setLevel(logging.INFO)
    settings = _environment()
    labels_uri, entries = publish_label_set(_client("s3"), settings["LABELS_S3_URI"], settings["LABEL_SETS_S3_URI"])
    request = start_request(event, settings["PIPELINE_NAME"], labels_uri, settings["MODEL_APPROVAL_STATUS"])
    started = _client("sagemaker").start_pipeline_execution(**request)
    result = {"pipeline_execution_arn": started["PipelineExecutionArn"], "human_labels_uri": labels_uri,
              "labels": len(entries), "event_id": event.get("id") if isinstance(event, dict) else None,
              "trigger": trigger_of(event)}
    log.info("started %s", json.dumps(result))
    return result
