"""Moves a job's inputs and outputs between (local) S3 and its work directory.

Job data is many small files (32×32 PNGs): one GET or PUT per object, no transfer-manager
HEAD round trips. Fine for objects up to a few hundred MB, which is all a job here reads.
Files from boto3's multipart threshold up go through ``upload_file``, as the jobs first uploaded
them: S3 gives a multipart upload another ETag than one PUT of the same bytes, and the step cache
compares ETags.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from local_runtime.errors import LocalRuntimeError
from scones_common.s3uri import parse_s3_uri

_WORKERS = 8
_MULTIPART_THRESHOLD = TransferConfig().multipart_threshold


class S3InputMissingError(LocalRuntimeError, FileNotFoundError):
    """A job input names an S3 prefix with no objects under it."""


def download_prefix(s3, uri: str, target: Path) -> int:
    """S3Prefix semantics: every object under the prefix; a prefix that is one object lands as that file."""
    location = parse_s3_uri(uri)
    keys = [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket,
                                                                               Prefix=location.key)
            for obj in page.get("Contents", [])]
    if not keys:
        raise S3InputMissingError(f"no objects under {uri}")
    target.mkdir(parents=True, exist_ok=True)

    def fetch(key: str) -> None:
        relative = key[len(location.key):].lstrip("/") or Path(key).name
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(s3.get_object(Bucket=location.bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(_WORKERS) as pool:
        list(pool.map(fetch, keys))
    return len(keys)


def upload_dir(s3, source: Path, uri: str) -> int:
    location = parse_s3_uri(uri)
    files = [p for p in source.rglob("*") if p.is_file()]

    def put(path: Path) -> None:
        target = location.join(path.relative_to(source).as_posix())
        if path.stat().st_size >= _MULTIPART_THRESHOLD:
            s3.upload_file(str(path), target.bucket, target.key)
        else:
            s3.put_object(Bucket=target.bucket, Key=target.key, Body=path.read_bytes())

    with ThreadPoolExecutor(_WORKERS) as pool:
        list(pool.map(put, files))
    return len(files)
