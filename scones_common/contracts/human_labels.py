"""The human-label set a pipeline run trains with: one manifest and the labelled images, keyed by content.

``run-pipeline`` (and the local main job, through the same ``start_pipeline``) collects the human
labels recorded so far (``<prefix>/human-labels/<review id>.json``, written by the workflow's
RecordReview step) into a folder named after the SHA-256 of its manifest::

    <prefix>/human-label-sets/sha256-<hex>/manifest.json
    <prefix>/human-label-sets/sha256-<hex>/images/<image sha256>.<ext>

and passes that folder as the pipeline parameter ``HumanLabelsUri``. New labels make a new folder,
hence a new PrepareData input URI: SageMaker's step cache (keyed by the input URIs) and the local
one cannot hide them. PrepareData reads the folder and folds the labels into the training split only.
Standard library only: the Processing job imports it from the code bundle.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from scones_common.contracts.classes import CLASS_NAMES
from scones_common.errors import SconesError

MANIFEST_FILE = "manifest.json"
IMAGES_FOLDER = "images"
MANIFEST_VERSION = 1
SET_PREFIX = "sha256-"


class HumanLabelManifestError(SconesError, ValueError):
    """The human-label manifest is not the JSON object ``run-pipeline`` writes."""


@dataclass(frozen=True)
class LabelEntry:
    """One human label: the reviewed image (its original URI and its copy in the set) and the person's class."""
    review_id: str
    image: str               # where the workflow read it (s3://…)
    image_sha256: str        # of the image's bytes
    label: str
    file: str                # relative to the set's folder: images/<sha256>.<ext>; "" when the image was gone
    reviewer: str = ""
    answered_at: str = ""


def manifest_document(entries: list[LabelEntry]) -> dict:
    """The manifest, entries sorted by review id (the same labels always give the same bytes, hence the same set)."""
    return {"version": MANIFEST_VERSION, "labels": [entry.__dict__ for entry in sorted(entries, key=lambda e: e.review_id)]}


def manifest_bytes(entries: list[LabelEntry]) -> bytes:
    return json.dumps(manifest_document(entries), indent=1, sort_keys=True).encode()


def set_name(entries: list[LabelEntry]) -> str:
    """The folder name of the set: ``sha256-<hex of the manifest's bytes>``."""
    return SET_PREFIX + hashlib.sha256(manifest_bytes(entries)).hexdigest()


def parse_manifest(data: bytes, source: str) -> list[LabelEntry]:
    """The entries of a manifest, each checked; a bad one is a :class:`HumanLabelManifestError` naming it."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HumanLabelManifestError(f"{source} is not JSON ({exc}); run-pipeline writes it, rerun it") from None
    if not isinstance(document, dict) or document.get("version") != MANIFEST_VERSION or not isinstance(
            document.get("labels"), list):
        raise HumanLabelManifestError(f"{source} is not a version-{MANIFEST_VERSION} human-label manifest")
    entries = []
    for n, item in enumerate(document["labels"]):
        fields = LabelEntry.__dataclass_fields__
        if not isinstance(item, dict) or set(item) - set(fields) or not all(
                isinstance(item.get(name), str) for name in fields if name in item):
            raise HumanLabelManifestError(f"{source}: labels[{n}] is not a label entry")
        try:
            entry = LabelEntry(**item)
        except TypeError as exc:
            raise HumanLabelManifestError(f"{source}: labels[{n}]: {exc}") from None
        if entry.file and (entry.file.startswith("/") or ".." in entry.file.split("/")
                           or not entry.file.startswith(IMAGES_FOLDER + "/")):
            raise HumanLabelManifestError(f"{source}: labels[{n}].file {entry.file!r} is not under {IMAGES_FOLDER}/")
        entries.append(entry)
    return entries


def known_label(label: str) -> bool:
    return label in CLASS_NAMES
