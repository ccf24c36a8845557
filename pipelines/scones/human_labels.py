"""The human-label set a pipeline run starts with: the labels recorded so far, copied into a folder keyed by content.

``start_pipeline`` calls :func:`publish_label_set` and passes its URI as ``HumanLabelsUri``: the
labels present at start time, named by the SHA-256 of their manifest, so new labels change
PrepareData's input URI (the step cache's key, on SageMaker and locally alike) and a rerun with the
same labels reuses the cached staging. Format: ``scones_common/contracts/human_labels.py``.
"""
from __future__ import annotations

import json
import logging

from botocore.exceptions import ClientError

from inference_workflow.review import read_records
from scones_common.config import SconesConfig
from scones_common.contracts.human_labels import IMAGES_FOLDER, MANIFEST_FILE, LabelEntry, manifest_bytes, set_name
from scones_common.names import human_label_sets_uri, human_labels_uri
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("pipelines")


def empty_set_uri(config: SconesConfig) -> str:
    """The set of no labels: the pipeline parameter's default (runs started by the schedule or the drift rule)."""
    return f"{human_label_sets_uri(config)}/{set_name([])}/"


def _exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def _suffix(key: str) -> str:
    name = key.rsplit("/", 1)[-1].lower()
    return "." + name.rsplit(".", 1)[1] if "." in name and len(name.rsplit(".", 1)[1]) <= 5 else ".img"


def label_entries(s3, records: list[dict]) -> tuple[list[LabelEntry], dict[str, str]]:
    """One entry per record, and the source URI each image copy comes from (images gone since are left out)."""
    entries, sources = [], {}
    for record in records:
        image, digest = record.get("image", ""), record.get("image_sha256", "")
        file = ""
        try:
            location = parse_s3_uri(image)
            head = s3.head_object(Bucket=location.bucket, Key=location.key)
            digest = digest or head.get("ETag", "").strip('"')
            file = f"{IMAGES_FOLDER}/{record['review_id']}{_suffix(location.key)}"
            sources[file] = image
        except (ClientError, ValueError) as exc:
            log.warning("human label %s: image %s cannot be read (%s); listed without it", record.get("review_id"),
                        image, exc)
        entries.append(LabelEntry(record["review_id"], image, digest, str(record.get("label", "")), file,
                                  str(record.get("reviewer", "")), str(record.get("answered_at", ""))))
    return entries, sources


def publish_label_set(s3, config: SconesConfig) -> str:
    """Writes (once) the set of the labels recorded now and returns its folder URI (``s3://…/sha256-<hex>/``)."""
    records = read_records(s3, human_labels_uri(config))
    entries, sources = label_entries(s3, records)
    folder = parse_s3_uri(f"{human_label_sets_uri(config)}/{set_name(entries)}/")
    manifest_key = f"{folder.key}{MANIFEST_FILE}"
    if not _exists(s3, folder.bucket, manifest_key):       # same labels, same folder: already complete
        for file, source in sources.items():
            location = parse_s3_uri(source)
            s3.copy_object(Bucket=folder.bucket, Key=f"{folder.key}{file}",
                           CopySource={"Bucket": location.bucket, "Key": location.key})
        s3.put_object(Bucket=folder.bucket, Key=manifest_key, Body=manifest_bytes(entries),
                      ContentType="application/json")     # last: a manifest present means a complete set
    log.info("human labels: %d in %s", len(entries), folder)
    return str(folder)


def manifest_summary(s3, uri: str) -> dict:
    """How many labels a set holds (for reports)."""
    folder = parse_s3_uri(uri)
    body = s3.get_object(Bucket=folder.bucket, Key=f"{folder.key.rstrip('/')}/{MANIFEST_FILE}")["Body"].read()
    return {"labels": len(json.loads(body)["labels"]), "uri": uri}
