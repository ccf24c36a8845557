"""Step caching that a crash cannot fool.

An entry is written only after the step's outputs are durable (the executor's ``persist``
hook saves the bucket first), and it records a fingerprint of those outputs: every key and
ETag under each output location. Before an entry is reused the fingerprint is taken again;
if an output is missing or different (a run killed before its state was saved, an output
overwritten by a later execution) the step simply runs again.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_runtime.pipeline.graph import StepNode
from scones_common.atomic import write_atomic
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("local_runtime.pipeline")


# The arguments whose change makes SageMaker rerun a cached step ("Default cache key attributes by
# pipeline step type"); outputs, resources and stopping conditions are not among them.
CACHE_KEY_ATTRIBUTES = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": ("AlgorithmSpecification", "CheckpointConfig", "DebugHookConfig", "DebugRuleConfigurations",
                 "Environment", "HyperParameters", "InputDataConfig"),
    "Transform": ("DataProcessing", "Environment", "ModelName", "TransformInput"),
}


def cache_key(node: StepNode, arguments: Any) -> str | None:
    config = node.spec.get("CacheConfig") or {}
    attributes = CACHE_KEY_ATTRIBUTES.get(node.type)
    if not config.get("Enabled") or attributes is None:
        return None
    payload = json.dumps({"type": node.type, "name": node.name,
                          "arguments": {k: arguments.get(k) for k in attributes},
                          "property_files": node.spec.get("PropertyFiles")}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def output_uris(step_type: str, properties: dict) -> list[str]:
    """Where a cacheable step's results live, read from its properties as SageMaker reports them."""
    if step_type == "Processing":
        return [o["S3Output"]["S3Uri"] for o in properties.get("ProcessingOutputConfig", {}).get("Outputs", [])]
    if step_type == "Training":
        return [properties["ModelArtifacts"]["S3ModelArtifacts"]]
    if step_type == "Transform":
        return [properties["TransformOutput"]["S3OutputPath"]]
    return []


def fingerprint(s3, uri: str) -> dict:
    """Count and digest of every object at ``uri`` (an object, or a prefix taken as a folder)."""
    location = parse_s3_uri(uri)
    folder = location.key.rstrip("/") + "/"
    digest, count = hashlib.sha256(), 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key.rstrip("/")):
        for obj in page.get("Contents", []):
            if obj["Key"] == location.key or obj["Key"].startswith(folder):
                digest.update(f"{obj['Key']}\t{obj['ETag']}\n".encode())
                count += 1
    return {"uri": uri, "objects": count, "digest": digest.hexdigest()}


@dataclass
class CacheEntry:
    properties: dict
    property_files: dict
    source_execution_arn: str | None = None     # the execution whose result this is (CacheHitResult)


class StepCache:
    """``<run-dir>/cache/<key>.json``: properties, property files and an output fingerprint per entry."""

    def __init__(self, directory: Path, s3):
        self.directory, self.s3 = directory, s3

    def lookup(self, key: str, step: str) -> CacheEntry | None:
        path = self.directory / f"{key}.json"
        if not path.exists():
            return None
        try:
            entry = json.loads(path.read_text())
            recorded = entry["outputs"]
            properties, property_files = entry["properties"], entry["property_files"]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("cache entry of %s is unreadable or from an older version; running the step again", step)
            return None
        changed = [r["uri"] for r in recorded if fingerprint(self.s3, r["uri"]) != r]
        if changed or not recorded:
            log.warning("cached outputs of %s are missing or changed (%s); running the step again", step,
                        ", ".join(changed) or "none recorded")
            return None
        return CacheEntry(properties, property_files, entry.get("source_execution_arn"))

    def record(self, key: str, step_type: str, properties: dict, property_files: dict,
               source_execution_arn: str | None = None) -> None:
        outputs = [fingerprint(self.s3, uri) for uri in output_uris(step_type, properties)]
        if not outputs or any(o["objects"] == 0 for o in outputs):
            return                   # nothing that could be verified later: not worth a cache entry
        write_atomic(self.directory / f"{key}.json",
                     json.dumps({"properties": properties, "property_files": property_files, "outputs": outputs,
                                 "source_execution_arn": source_execution_arn}, default=str))
