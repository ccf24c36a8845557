"""Keeps the local AWS state on disk: the moto server is in memory, the run directory is not.

``save`` mirrors the bucket and snapshots the registry, models, endpoint configs and endpoints,
the pipelines with their executions (and steps) and the jobs those ran;
``restore`` puts them back into a fresh server, so packages keep their versions and the
endpoint serves the same model after a restart. The bucket's objects go straight between the
mirror and the S3 backend of the moto server running in this process (``moto_ext/bucket_state.py``):
through the API, restoring took ~3.5 ms an object. Every file is written to ``state/.tmp`` and
renamed into place, so a crash mid-save leaves each file whole (old or new), and temporary
files never appear in the bucket mirror.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError, ParamValidationError

from local_runtime.errors import LocalRuntimeError
from local_runtime.moto_ext import bucket_state
from scones_common.atomic import write_atomic

log = logging.getLogger("local_runtime.state")
_PACKAGE_FIELDS = ("ModelPackageGroupName", "InferenceSpecification", "ModelMetrics", "MetadataProperties",
                   "CustomerMetadataProperties", "Domain", "Task", "ModelPackageDescription")


class StateCorruptError(LocalRuntimeError):
    """A saved state file cannot be read (cut short, edited by hand, or from an incompatible version)."""


def read_state_json(path: Path) -> dict:
    """A run directory's JSON record, or :class:`StateCorruptError` saying which file and what to do."""
    try:
        content = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateCorruptError(f"{path} is not valid JSON ({exc}); it was probably cut short by a crash. "
                                "Move it away to start without the saved state, or rerun with --fresh") from None
    if not isinstance(content, dict):
        raise StateCorruptError(f"{path} holds a {type(content).__name__}, not the saved state object; "
                                "move it away or rerun with --fresh")
    return content


_MULTIPART_CHUNK = TransferConfig().multipart_chunksize      # the part size upload_file sends large objects in
_MULTIPART_THRESHOLD = TransferConfig().multipart_threshold  # the size from which it does (the ETag then differs)


def _etag_of(path: Path, multipart: bool) -> str:
    """The ETag S3 gives ``path``'s bytes: their MD5, or for a multipart upload the MD5 of the parts' MD5s."""
    if not multipart:
        with open(path, "rb") as handle:
            return f'"{hashlib.file_digest(handle, "md5").hexdigest()}"'
    digests = []
    with open(path, "rb") as handle:
        while chunk := handle.read(_MULTIPART_CHUNK):
            digests.append(hashlib.md5(chunk).digest())
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'


_SNAPSHOT_KEYS = ("groups", "packages", "models", "endpoint_configs", "endpoints")


def _listed(pages, key: str) -> list:
    return [item for page in pages for item in page.get(key, [])]


def save(clients, bucket: str, state_dir: Path) -> None:
    s3, sm = clients.client("s3"), clients.client("sagemaker")
    state_dir.mkdir(parents=True, exist_ok=True)
    mirror = state_dir / "s3" / bucket
    scratch = state_dir / ".tmp"
    shutil.rmtree(scratch, ignore_errors=True)      # what a crash left mid-save
    objects = _listed(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket), "Contents")

    keys = set()
    for obj in objects:
        target = mirror / obj["Key"]
        if target.exists() and target.stat().st_size == obj["Size"] and _etag_of(target, "-" in obj["ETag"]) == obj["ETag"]:
            keys.add(obj["Key"])
            continue
        body = bucket_state.object_body(bucket, obj["Key"])
        if body is not None:     # None: deleted since the listing, so the mirror drops it too
            write_atomic(target, body, durable=False, scratch_dir=scratch)
            keys.add(obj["Key"])
    for stale in [p for p in mirror.rglob("*") if p.is_file() and p.relative_to(mirror).as_posix() not in keys]:
        stale.unlink()
    snapshot: dict[str, list] = {key: [] for key in _SNAPSHOT_KEYS}
    for group in _listed(sm.get_paginator("list_model_package_groups").paginate(), "ModelPackageGroupSummaryList"):
        snapshot["groups"].append(group["ModelPackageGroupName"])
        summaries = _listed(sm.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group["ModelPackageGroupName"]), "ModelPackageSummaryList")
        for summary in sorted(summaries, key=lambda s: s.get("ModelPackageVersion", 0)):
            detail = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            snapshot["packages"].append({**{k: detail[k] for k in _PACKAGE_FIELDS if detail.get(k)},
                                         "ModelApprovalStatus": detail["ModelApprovalStatus"],
                                         "ModelPackageArn": detail["ModelPackageArn"]})
    for model in _listed(sm.get_paginator("list_models").paginate(), "Models"):
        detail = sm.describe_model(ModelName=model["ModelName"])
        snapshot["models"].append({k: detail[k] for k in ("ModelName", "ExecutionRoleArn", "PrimaryContainer") if k in detail})
    for config in _listed(sm.get_paginator("list_endpoint_configs").paginate(), "EndpointConfigs"):
        detail = sm.describe_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
        snapshot["endpoint_configs"].append({k: detail[k] for k in ("EndpointConfigName", "ProductionVariants",
                                                                    "DataCaptureConfig") if k in detail})
    for endpoint in _listed(sm.get_paginator("list_endpoints").paginate(), "Endpoints"):
        detail = sm.describe_endpoint(EndpointName=endpoint["EndpointName"])
        snapshot["endpoints"].append({"EndpointName": detail["EndpointName"],
                                      "EndpointConfigName": detail["EndpointConfigName"]})
    snapshot.update(_pipelines_snapshot(sm, clients.region))
    write_atomic(state_dir / "sagemaker.json", json.dumps(snapshot, indent=2, default=str), scratch_dir=scratch)
    shutil.rmtree(scratch, ignore_errors=True)


def _pipelines_snapshot(sm, region: str) -> dict:
    from local_runtime.moto_ext import pipeline_executions, sagemaker_jobs

    pipelines = []
    for summary in _listed(sm.get_paginator("list_pipelines").paginate(), "PipelineSummaries"):
        detail = sm.describe_pipeline(PipelineName=summary["PipelineName"])
        tags = sm.list_tags(ResourceArn=detail["PipelineArn"]).get("Tags", [])
        pipelines.append({**{k: detail[k] for k in ("PipelineName", "PipelineDisplayName", "PipelineDefinition",
                                                    "PipelineDescription", "RoleArn") if detail.get(k)},
                          **({"Tags": tags} if tags else {})})
    return {"pipelines": pipelines, "pipeline_executions": pipeline_executions.snapshot(region),
            "jobs": sagemaker_jobs.snapshot(region)}


def _restore_pipelines(sm, region: str, snapshot: dict) -> int:
    from local_runtime.moto_ext import pipeline_executions, sagemaker_jobs

    for pipeline in snapshot.get("pipelines", []):
        sm.create_pipeline(**pipeline)
    sagemaker_jobs.restore(region, snapshot.get("jobs", []))
    return pipeline_executions.restore(region, snapshot.get("pipeline_executions", []))


def _replay(sm, region: str, snapshot: dict) -> int:
    """Creates the saved registry, models, endpoints and pipelines again; returns the executions restored."""
    for group in snapshot["groups"]:
        sm.create_model_package_group(ModelPackageGroupName=group)
    for package in snapshot["packages"]:
        request = {k: package[k] for k in _PACKAGE_FIELDS if k in package}
        # Created with its final status: an UpdateModelPackage would emit an approval event and redeploy.
        arn = sm.create_model_package(**request, ModelApprovalStatus=package["ModelApprovalStatus"])["ModelPackageArn"]
        if arn != package["ModelPackageArn"]:
            log.warning("restored package %s as %s", package["ModelPackageArn"], arn)
    for model in snapshot["models"]:
        sm.create_model(**model)
    for config in snapshot["endpoint_configs"]:
        sm.create_endpoint_config(**config)
    for endpoint in snapshot["endpoints"]:
        try:
            sm.create_endpoint(**endpoint)
        except ClientError as exc:
            log.warning("could not restore endpoint %s: %s", endpoint["EndpointName"], exc)
    return _restore_pipelines(sm, region, snapshot)


def _mirrored_objects(mirror: Path) -> Iterator[tuple[str, bytes, str | None]]:
    """Each mirrored file as ``(key, body, etag)``: the ETag upload_file gives it from its multipart
    threshold on, else None (the MD5 of the body)."""
    for path in mirror.rglob("*") if mirror.exists() else ():
        if path.is_file():
            body = path.read_bytes()
            yield _object_key(mirror, path), body, _etag_of(path, True) if len(body) >= _MULTIPART_THRESHOLD else None


def _object_key(mirror: Path, path: Path) -> str:
    key = path.relative_to(mirror).as_posix()
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise StateCorruptError(f"{path} is in the bucket mirror, but its name is not UTF-8, so it is no S3 key "
                                "(the file was put there by hand?). Move it away or rerun with --fresh") from None
    return key


def restore(clients, bucket: str, state_dir: Path) -> bool:
    snapshot_path = state_dir / "sagemaker.json"
    if not snapshot_path.exists():
        return False
    snapshot = read_state_json(snapshot_path)
    missing = [k for k in _SNAPSHOT_KEYS if not isinstance(snapshot.get(k), list)]
    if missing:
        raise StateCorruptError(f"{snapshot_path} lacks {', '.join(missing)}; it is not a saved state of this "
                                "version. Move it away or rerun with --fresh")
    sm = clients.client("sagemaker")
    mirror = state_dir / "s3" / bucket
    restored_objects = bucket_state.put_objects(bucket, _mirrored_objects(mirror))
    try:
        executions = _replay(sm, clients.region, snapshot)
    except (KeyError, TypeError, AttributeError, ValueError, ParamValidationError, ClientError) as exc:
        raise StateCorruptError(f"{snapshot_path} holds an entry that cannot be replayed ({type(exc).__name__}: "
                                f"{exc}); it was edited or is from another version. Move it away or rerun with "
                                "--fresh (the file is left as it is)") from None
    log.info("restored %d objects, %d packages, %d endpoints, %d pipeline executions from %s", restored_objects,
             len(snapshot["packages"]), len(snapshot["endpoints"]), executions, state_dir)
    return True
