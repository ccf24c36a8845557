"""A bucket's objects read and written in bulk, for the run directory's saved state (``local_runtime/state.py``).

One PutObject per object through the moto server took ~3.5 ms: restoring 2,900 objects cost 10.2 s
of every ``scones-local run``, and each pipeline run that is not cached adds ~1,200. moto's S3
backend takes them in 0.24 s. An object comes back with its bytes, the ETag S3 gave it and the
default content type, and without an event notification: restoring is not an upload.
"""
from __future__ import annotations

from collections.abc import Iterable

from local_runtime.aws import ACCOUNT_ID


def _objects():
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT_ID]["global"]


def put_objects(bucket: str, objects: Iterable[tuple[str, bytes, str | None]]) -> int:
    """Puts each ``(key, body, etag)``: ``etag`` as S3 shows it (quoted), or None for the MD5 of the
    body. Returns how many were put."""
    backend, count = _objects(), 0
    for key, body, etag in objects:
        backend.put_object(bucket, key, body, etag=etag and etag.strip('"'), disable_notification=True)
        count += 1
    return count


def object_body(bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when it is gone."""
    found = _objects().get_object(bucket, key)
    return None if found is None else found.value
