"""The one S3 URI parser of the project."""
from __future__ import annotations

from dataclasses import dataclass

from scones_common.errors import SconesError


class InvalidS3UriError(SconesError, ValueError):
    """Raised for a string that is not of the form s3://bucket/key."""


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, *parts: str) -> "S3Uri":
        """Appends path parts with exactly one slash between them."""
        pieces = [self.key.rstrip("/")] if self.key else []
        pieces += [p.strip("/") for p in parts if p.strip("/")]
        return S3Uri(self.bucket, "/".join(pieces))


def is_s3_uri(value: str) -> bool:
    return isinstance(value, str) and value.startswith("s3://")


def parse_s3_uri(uri: str) -> S3Uri:
    if not is_s3_uri(uri):
        raise InvalidS3UriError(f"not an S3 URI: {uri!r} (expected s3://bucket/key)")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise InvalidS3UriError(f"S3 URI {uri!r} has no bucket name")
    return S3Uri(bucket, key)
