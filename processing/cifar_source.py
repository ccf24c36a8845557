"""Turns a data source (official archive, s3:// URI, http(s)/file:// URL or path) into a local archive
file, and says which archive it is by content.

A file name says nothing about the bytes behind it: two archives can share a basename, and a
repaired archive keeps its path. So downloads are cached per source with the SHA-256 of what
arrived (checked again before each reuse), and :func:`mirror_archive` stores the archive in S3
under its SHA-256, which is what the pipeline's step cache and the provenance see.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from processing.download import RetryPolicy, download, file_digest, md5_of
from processing.errors import ChecksumMismatchError, DataSourceError
from scones_common.s3uri import InvalidS3UriError, S3Uri, is_s3_uri, parse_s3_uri

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
OFFICIAL_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
OFFICIAL_ALIASES = ("cifar-100", "official", OFFICIAL_URL)
SAMPLE_SOURCE = "sample"
# The team's dev subset shipped with the package (800 train / 200 test bicycles and motorcycles drawn from
# CIFAR-100's own train split, in the original layout): the local runtime's offline default.
SAMPLE_ARCHIVE = Path(__file__).resolve().parent / "sample_data" / "cifar-100-python-dev.tar.gz"
SAMPLE_SHA256 = "632e77a0d46a42292910eb9683d91585508e04c57d7c9f5439bf826401b24c28"

__all__ = ["ChecksumMismatchError", "DataSourceError", "InvalidS3UriError", "MirroredArchive", "md5_of",
           "mirror_archive", "resolve_archive", "sha256_of"]
_FORMS = ("Pass 'sample' for the dev subset shipped with the package, 'cifar-100' for the official download, an s3://bucket/key URI, an http(s):// URL, a file:///absolute/path "
          "URL, or the path of a cifar-100-python .tar.gz (or of a directory holding one)")

log = logging.getLogger(__name__)


def sha256_of(path: Path) -> str:
    return file_digest(path, "sha256")


def _verify(path: Path, expected_md5: str | None) -> Path:
    if expected_md5:
        actual = md5_of(path)
        if actual != expected_md5:
            raise ChecksumMismatchError(f"{path}: MD5 {actual} != expected {expected_md5}; "
                                        "the file is corrupt or not the archive you meant")
    return path


def _source_slot(cache_dir: Path, kind: str, source: str, name: str) -> Path:
    """Where a download of ``source`` is cached: one folder per source, never shared by basename."""
    return cache_dir / kind / hashlib.sha256(source.encode()).hexdigest()[:16] / name


def _record(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def _cached(path: Path, expected_md5: str | None, remote_version: str | None = None) -> Path | None:
    """``path`` if it is whole: its SHA-256 (and MD5, when expected) match what was recorded on arrival."""
    if not path.exists():
        return None
    try:
        recorded = json.loads(_record(path).read_text())
    except (OSError, ValueError):
        recorded = {}
    whole = recorded.get("sha256") == sha256_of(path) and recorded.get("version") == remote_version
    if whole and (not expected_md5 or recorded.get("md5") == expected_md5 or md5_of(path) == expected_md5):
        return path
    log.warning("cached %s is incomplete, corrupt or out of date; fetching it again", path)
    path.unlink()
    _record(path).unlink(missing_ok=True)
    return None


def _remember(path: Path, remote_version: str | None = None) -> Path:
    _record(path).write_text(json.dumps({"sha256": sha256_of(path), "md5": md5_of(path), "version": remote_version}))
    return path


def sample_archive() -> Path:
    """The shipped dev subset, checked against its SHA-256 (a damaged install must not train quietly)."""
    try:
        digest = sha256_of(SAMPLE_ARCHIVE)
    except FileNotFoundError:
        raise DataSourceError(f"the sample archive {SAMPLE_ARCHIVE} is missing from this installation; reinstall "
                              "the package, or pass --data-source cifar-100 for the official download") from None
    if digest != SAMPLE_SHA256:
        raise ChecksumMismatchError(f"{SAMPLE_ARCHIVE}: SHA-256 {digest} != expected {SAMPLE_SHA256}; the installed "
                                    "sample is damaged: reinstall the package, or pass --data-source cifar-100")
    return SAMPLE_ARCHIVE


def fetch_official(cache_dir: Path, policy: RetryPolicy | None = None) -> Path:
    """The official archive, checked against its published MD5 (also when it comes from the cache)."""
    target = cache_dir / Path(urlparse(OFFICIAL_URL).path).name
    if target.exists():
        try:
            return _verify(target, OFFICIAL_MD5)
        except ChecksumMismatchError:
            log.warning("cached %s is corrupt, downloading again", target)
            target.unlink()
    return download(OFFICIAL_URL, target, OFFICIAL_MD5, policy)


def fetch_url(url: str, cache_dir: Path, expected_md5: str | None, policy: RetryPolicy | None = None) -> Path:
    target = _source_slot(cache_dir, "urls", url, Path(unquote(urlparse(url).path)).name or "archive.tar.gz")
    cached = _cached(target, expected_md5)
    return cached or _remember(download(url, target, expected_md5, policy))


def fetch_s3(uri: str, cache_dir: Path, expected_md5: str | None, s3_client=None) -> Path:
    """Downloads an S3 object unless the cached copy is whole and has the object's current ETag."""
    import boto3
    from botocore.exceptions import ClientError

    location = _s3_object(uri)
    client = s3_client or boto3.client("s3")
    target = _source_slot(cache_dir, "s3", uri, Path(location.key).name)
    try:
        etag = client.head_object(Bucket=location.bucket, Key=location.key)["ETag"]
        cached = _cached(target, expected_md5, etag)
        if cached:
            return cached
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        client.download_file(location.bucket, location.key, str(partial))
    except ClientError as exc:
        raise DataSourceError(f"cannot read {uri}: {exc.response['Error'].get('Code')} "
                              f"{exc.response['Error'].get('Message', '')}. Check the bucket, key and permissions") from exc
    try:
        _verify(partial, expected_md5)
    except ChecksumMismatchError:
        partial.unlink()
        raise
    os.replace(partial, target)
    return _remember(target, etag)


def _s3_object(uri: str) -> S3Uri:
    """The bucket and key of an archive object: a bucket or a folder alone names no archive."""
    location = parse_s3_uri(uri)
    if not location.key or location.key.endswith("/"):
        raise InvalidS3UriError(f"S3 URI {uri!r} names a bucket or folder, not an object; give the archive's "
                                f"key, e.g. s3://{location.bucket}/{location.key or 'data/'}cifar-100-python.tar.gz")
    return location


def _expand_user(text: str, what: str) -> Path:
    try:
        return Path(text).expanduser()
    except RuntimeError:            # ~name of a user this machine does not know
        user = text.split("/", 1)[0]
        raise DataSourceError(f"{what} {text!r}: {user} is not a user on this machine, so its home directory is "
                              "unknown. Write the path out in full, or ~/… for your own home") from None


def _file_url_path(source: str, host: str, path: str) -> Path:
    """The local path of a file: URL (RFC 8089): file:///absolute/path, file://localhost/… or file:/…."""
    form = "write it as file:///absolute/path/cifar-100-python.tar.gz (three slashes: an empty host)"
    if host not in ("", "localhost"):
        hint = f" (did you mean file:///{host}{path}?)" if path else ""
        raise DataSourceError(f"data source {source!r}: {host!r} was read as the host of the file URL, and only "
                              f"local files can be read{hint}; {form}")
    if not path.startswith("/"):
        raise DataSourceError(f"data source {source!r} names no absolute path; {form}")
    return Path(unquote(path))


def _what_it_is(path: Path) -> str | None:
    """Why an existing ``path`` is not an archive file, or None if it is a regular file (or does not exist)."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    kinds = {stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device", stat.S_ISDIR: "a directory"}
    return next((kind for test, kind in kinds.items() if test(mode)), None)


def _local_archive(source: str, path: Path) -> Path:
    if "\x00" in str(path):
        raise DataSourceError(f"data source {source!r} holds a NUL character, which no path can. {_FORMS}")
    if path.is_dir():
        archives = sorted(path.glob("*.tar.gz"))
        if len(archives) != 1:
            raise DataSourceError(f"{path} holds {len(archives)} .tar.gz archives; expected exactly one")
        path = archives[0]
    if not path.is_file():
        kind = _what_it_is(path)
        if kind:
            raise DataSourceError(f"data source {source!r} is {kind}, not a regular file; an archive is read twice "
                                  "(checksum, then content), so copy it to a file first")
        raise DataSourceError(f"data source {source!r} does not exist. {_FORMS}")
    return path


def resolve_archive(source: str, cache_dir: str | Path, expected_md5: str | None = None,
                    policy: RetryPolicy | None = None) -> Path:
    """Returns a local path to the archive named by ``source``.

    The official archive is always checked against its published MD5; custom sources only
    when ``expected_md5`` is given (their cached copies are always checked against the
    SHA-256 recorded when they arrived).
    """
    cache = _expand_user(str(cache_dir), "cache directory")
    if not source or not source.strip():
        raise DataSourceError(f"the data source is empty. {_FORMS}")
    if source == SAMPLE_SOURCE:
        return _verify(sample_archive(), expected_md5)
    if source in OFFICIAL_ALIASES:
        if expected_md5 and expected_md5 != OFFICIAL_MD5:
            raise ChecksumMismatchError(f"--md5 {expected_md5} is not the official archive's MD5 {OFFICIAL_MD5}")
        return fetch_official(cache, policy)
    if is_s3_uri(source):
        return fetch_s3(source, cache, expected_md5)
    try:
        parsed = urlparse(source)
        _port = parsed.port                       # raises ValueError for a port beyond 65535
    except ValueError as exc:                     # e.g. an unclosed [IPv6 address or a port beyond 65535
        raise DataSourceError(f"data source {source!r} is not a valid URL ({exc}). {_FORMS}") from None
    if parsed.scheme in ("http", "https"):
        return fetch_url(source, cache, expected_md5, policy)
    if parsed.scheme == "file":
        path = _file_url_path(source, parsed.netloc, parsed.path)
    elif "://" in source:
        raise DataSourceError(f"data source {source!r}: the scheme {parsed.scheme!r} is not supported. {_FORMS}")
    else:
        path = _expand_user(source, "data source")
    return _verify(_local_archive(source, path), expected_md5)


@dataclass(frozen=True)
class MirroredArchive:
    """The source archive as the pipeline reads it: an S3 object named by its content."""
    uri: str
    sha256: str
    source: str

    @property
    def provenance(self) -> str:
        """The ``DataSource`` label recorded with each model package: the content first, then the name."""
        return f"sha256:{self.sha256} {self.source}"


def content_keyed_uri(raw_uri: str, sha256: str) -> str:
    """``…/raw/<name>`` → ``…/raw/sha256-<hex>/<name>``: a different archive never shares a key."""
    base, _, name = raw_uri.rpartition("/")
    return f"{base}/sha256-{sha256}/{name}"


def mirror_archive(s3, source: str, cache_dir: str | Path, raw_uri: str, expected_md5: str | None = None) -> MirroredArchive:
    """Uploads the archive ``source`` names under its SHA-256 (once; the same content is not sent again)."""
    from botocore.exceptions import ClientError

    archive = resolve_archive(source, cache_dir, expected_md5)
    digest = sha256_of(archive)
    mirrored = MirroredArchive(content_keyed_uri(raw_uri, digest), digest, source)
    target = parse_s3_uri(mirrored.uri)
    try:
        s3.head_object(Bucket=target.bucket, Key=target.key)
        return mirrored
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.upload_file(str(archive), target.bucket, target.key)
    log.info("mirrored %s (sha256 %s) to %s", source, digest[:12], mirrored.uri)
    return mirrored
