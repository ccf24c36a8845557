"""The local platform's job data movement: channels in and outputs out, straight through the local S3.

On SageMaker the platform's agent copies a job's data between S3 and the container; the job's
own code never makes those calls. Locally each of them was an HTTP request to the moto server,
~10 ms of CPU apiece (botocore, the server, moto's dispatch): the main job's 1,000 staged PNGs
and the ~2,200 reads and writes of its training, transforms and evaluations made up about two
thirds of its pipeline time (68 s against 24 s this way, one run each, docs/research/round-12.md).

The objects are the same: read from and written into the local S3's store, an upload with the
ETag and content type that one PutObject gives (from boto3's multipart threshold up a file still
goes through the API, for the multipart ETag the step cache compares), its event notification
sent, and written to the run directory's saved state before the write returns, as an
acknowledged PutObject is. Unlike such a PutObject, no CRC32 checksum is stored with it.
"""
from __future__ import annotations

from pathlib import Path

from local_runtime import state
from local_runtime.moto_ext import bucket_state
from local_runtime.pipeline.s3io import MULTIPART_THRESHOLD, ApiObjects, S3InputMissingError


class InProcessObjects:
    """:class:`local_runtime.pipeline.s3io.JobObjects` on the stack's own S3 (one thread: no round trips)."""
    threads = 1

    def __init__(self, api: ApiObjects):
        self.api = api

    def keys(self, bucket: str, prefix: str) -> list[str]:
        try:
            return sorted(key for key in bucket_state.current_objects(bucket) if key.startswith(prefix))
        except bucket_state.BucketMissingError:
            return []

    def read(self, bucket: str, key: str) -> bytes:
        found = bucket_state.current_object(bucket, key)
        if found is None:
            raise S3InputMissingError(f"s3://{bucket}/{key} does not exist")
        return bucket_state.body_of(found)

    def write(self, bucket: str, key: str, path: Path) -> None:
        if path.stat().st_size >= MULTIPART_THRESHOLD:
            self.api.write(bucket, key, path)
            return
        bucket_state.put_objects(bucket, [(key, path.read_bytes(), None)], notify=True)
        state.commit_objects(bucket, [key])
