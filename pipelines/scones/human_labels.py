"""The human-label set a pipeline run starts with: the labels recorded so far, copied into a folder keyed by content.

``start_pipeline`` calls :func:`publish_label_set` and passes its URI as ``HumanLabelsUri``: the
labels present at start time, named by the SHA-256 of their manifest, so new labels change
PrepareData's input URI (the step cache's key, on SageMaker and locally alike) and a rerun with the
same labels reuses the cached staging. Format: ``scones_common/contracts/human_labels.py``.

The snapshot itself is the start-retraining Lambda's (``inference_workflow/start_retraining``), which
the retraining schedule and the drift rule invoke: one implementation for every way a run starts.
"""
from __future__ import annotations

import json
import logging

from inference_workflow.start_retraining import lambda_function as start_retraining
from scones_common.config import SconesConfig
from scones_common.contracts.human_labels import MANIFEST_FILE
from scones_common.names import human_label_sets_uri, human_labels_uri
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("pipelines")


def empty_set_uri(config: SconesConfig) -> str:
    """The set of no labels: the pipeline parameter's default (runs started without a snapshot)."""
    return start_retraining.empty_set_uri(human_label_sets_uri(config))


def publish_label_set(s3, config: SconesConfig) -> str:
    """Writes (once) the set of the labels recorded now and returns its folder URI (``s3://…/sha256-<hex>/``)."""
    uri, _ = start_retraining.publish_label_set(s3, human_labels_uri(config), human_label_sets_uri(config))
    return uri


def manifest_summary(s3, uri: str) -> dict:
    """How many labels a set holds (for reports)."""
    folder = parse_s3_uri(uri)
    body = s3.get_object(Bucket=folder.bucket, Key=f"{folder.key.rstrip('/')}/{MANIFEST_FILE}")["Body"].read()
    return {"labels": len(json.loads(body)["labels"]), "uri": uri}
