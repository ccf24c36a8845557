"""A bucket's objects read and written in bulk, for the run directory's saved state (``local_runtime/state.py``).

One PutObject per object through the moto server took ~3.5 ms: restoring 2,900 objects cost 10.2 s
of every ``scones-local run``, and each pipeline run that is not cached adds ~1,200. moto's S3
backend takes them in 0.24 s. An object comes back as restoring it through the API did: its bytes,
the ETag that upload (``put_object``, or ``upload_file``'s parts from 8 MB) gives them, the default
content type, and no event notification, as restoring is not an upload; unlike then, without the
CRC32 checksum boto3 adds to an upload and without parts (nothing here reads either).
"""
from __future__ import annotations

from collections.abc import Iterable

from local_runtime.aws_env import ACCOUNT_ID
from local_runtime.errors import LocalRuntimeError


class BucketMissingError(LocalRuntimeError, LookupError):
    pass


def _objects():
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT_ID]["global"]


def put_objects(bucket: str, objects: Iterable[tuple[str, bytes, str | None]], notify: bool = False) -> int:
    """Puts each ``(key, body, etag)``: ``etag`` as S3 shows it (quoted), or None for the MD5 of the
    body. Returns how many were put. ``notify``: the bucket's event notifications are sent, as for an
    upload (a job's output); restoring is not one."""
    from moto.s3.exceptions import MissingBucket

    backend, count = _objects(), 0
    try:
        for key, body, etag in objects:
            backend.put_object(bucket, key, body, etag=etag and etag.strip('"'), disable_notification=not notify)
            count += 1
    except MissingBucket:
        raise BucketMissingError(f"bucket {bucket} does not exist in the local AWS: create it before "
                                 f"{'writing' if notify else 'restoring'} objects into it") from None
    return count


def object_body(bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when it is gone."""
    found = _objects().get_object(bucket, key)
    return None if found is None else found.value


def buckets() -> dict[str, dict]:
    """Every bucket: name -> CreateBucket's arguments as the saved state keeps them (name and region)."""
    return {name: {"Name": name, "Region": bucket.region_name} for name, bucket in list(_objects().buckets.items())}


def ensure_bucket(name: str, region: str) -> None:
    """Creates a saved bucket again (no event: restoring is not a creation)."""
    backend = _objects()
    if name not in backend.buckets:
        backend.create_bucket(name, region)


def current_objects(bucket: str) -> dict[str, object]:
    """Key -> its current object (latest version, delete markers left out); empty for a missing bucket."""
    from moto.s3.models import FakeKey

    found = _objects().buckets.get(bucket)
    if found is None:
        return {}
    return {key: value for key, value in list(found.keys.items()) if isinstance(value, FakeKey)}


def current_object(bucket: str, key: str):
    """The key's current object, or None (no bucket, no key, a delete marker)."""
    from moto.s3.models import FakeKey

    found = _objects().buckets.get(bucket)
    value = found.keys.get(key) if found is not None else None
    return value if isinstance(value, FakeKey) else None


def fingerprint(obj) -> tuple:
    """What changes when an object is written again (moto makes a new key object on every PUT)."""
    return (id(obj), obj.last_modified, obj.size)


def body_of(obj) -> bytes:
    return obj.value
