"""Moves a job's inputs and outputs between (local) S3 and its work directory.

On SageMaker this is the platform's work, not the job's: its agent copies the channels in and the
outputs out. Here a :class:`JobObjects` does it, handed to the executor by the stack:
:class:`ApiObjects` through the S3 API (any S3 the clients reach), or the stack's in-process one
(``local_runtime/job_data.py``), which reads and writes the local S3's objects directly.

Job data is many small files (32×32 PNGs): one GET or PUT per object, no transfer-manager
HEAD round trips. Fine for objects up to a few hundred MB, which is all a job here reads.
Files from boto3's multipart threshold up go through ``upload_file``, as the jobs first uploaded
them: S3 gives a multipart upload another ETag than one PUT of the same bytes, and the step cache
compares ETags.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from boto3.s3.transfer import TransferConfig

from local_runtime.errors import LocalRuntimeError
from scones_common.s3uri import parse_s3_uri

_WORKERS = 8
MULTIPART_THRESHOLD = TransferConfig().multipart_threshold


class S3InputMissingError(LocalRuntimeError, FileNotFoundError):
    """A job input names an S3 prefix with no objects under it (its bucket may not exist), or an object
    that does not exist."""


class JobObjects(Protocol):
    """What moves job data: S3's keys under a prefix (in ListObjectsV2 order; none when the bucket does not
    exist), an object's bytes, a file put; ``threads``: how many objects it moves at once."""
    threads: int

    def keys(self, bucket: str, prefix: str) -> list[str]: ...

    def read(self, bucket: str, key: str) -> bytes: ...

    def write(self, bucket: str, key: str, path: Path) -> None: ...


class ApiObjects:
    """Through an S3 client; calls from several threads (each object is a round trip)."""
    threads = _WORKERS

    def __init__(self, s3):
        self.s3 = s3

    def keys(self, bucket: str, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        try:
            return [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        except self.s3.exceptions.NoSuchBucket:
            return []

    def read(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def write(self, bucket: str, key: str, path: Path) -> None:
        if path.stat().st_size >= MULTIPART_THRESHOLD:
            self.s3.upload_file(str(path), bucket, key)
        else:
            self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


def _each(objects: JobObjects, work, items: list) -> None:
    if objects.threads > 1:
        with ThreadPoolExecutor(objects.threads) as pool:
            list(pool.map(work, items))
    else:
        for item in items:
            work(item)


def download_prefix(objects: JobObjects, uri: str, target: Path, region: str = "", role_arn: str = "") -> int:
    """S3Prefix semantics: every object under the prefix; a prefix that is one object lands as that file.
    Nothing there: SageMaker's words for it (CreateTrainingJob's or CreateProcessingJob's ValidationException)."""
    location = parse_s3_uri(uri)
    keys = objects.keys(location.bucket, location.key)
    if not keys:
        raise S3InputMissingError(
            f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the bucket '
            f"exists in the selected region ({region or 'the job’s region'}), that objects exist under that S3 "
            f'prefix, and that the role "{role_arn or "the job’s role"}" has "s3:ListBucket" permissions on '
            f'bucket "{location.bucket}".')
    target.mkdir(parents=True, exist_ok=True)

    def fetch(key: str) -> None:
        relative = key[len(location.key):].lstrip("/") or Path(key).name
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(objects.read(location.bucket, key))

    _each(objects, fetch, keys)
    return len(keys)


def upload_dir(objects: JobObjects, source: Path, uri: str) -> int:
    location = parse_s3_uri(uri)
    files = [p for p in source.rglob("*") if p.is_file()]

    def put(path: Path) -> None:
        target = location.join(path.relative_to(source).as_posix())
        objects.write(target.bucket, target.key, path)

    _each(objects, put, files)
    return len(files)
