"""Turns a data source (official archive, s3:// URI, file:// URL or path) into a local archive file.

Downloads are cached by checksum, resumed from a ``.part`` file and renamed into place only
once verified, so an interrupted or corrupt download never looks like a good archive.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from scones_common.s3uri import is_s3_uri, parse_s3_uri

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
OFFICIAL_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
OFFICIAL_ALIASES = ("cifar-100", "official", OFFICIAL_URL)
_CHUNK = 1 << 20

log = logging.getLogger(__name__)


class DataSourceError(RuntimeError):
    """The data source cannot be read: missing file, unreachable URL, missing S3 object."""


class ChecksumMismatchError(DataSourceError):
    """The archive's MD5 differs from the expected one: a corrupt or different file."""


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, expected_md5: str | None) -> Path:
    if expected_md5:
        actual = md5_of(path)
        if actual != expected_md5:
            raise ChecksumMismatchError(f"{path}: MD5 {actual} != expected {expected_md5}; "
                                        "the file is corrupt or not the archive you meant")
    return path


def download(url: str, cache_dir: Path, expected_md5: str | None, timeout: float = 60.0) -> Path:
    """Downloads ``url`` into ``cache_dir`` (resuming a partial download) and verifies it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / Path(urlparse(url).path).name
    if target.exists():
        try:
            return _verify(target, expected_md5)
        except ChecksumMismatchError:
            log.warning("cached %s is corrupt, downloading again", target)
            target.unlink()
    partial = target.with_suffix(target.suffix + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = offset and response.status == 206
            with open(partial, "ab" if resumed else "wb") as handle:
                shutil.copyfileobj(response, handle, _CHUNK)
    except (urllib.error.URLError, OSError) as exc:
        raise DataSourceError(f"cannot download {url}: {exc}. Check the network, or pass a local "
                              "archive with --data-source PATH (a cifar-100-python .tar.gz)") from exc
    try:
        _verify(partial, expected_md5)
    except ChecksumMismatchError:
        partial.unlink()
        raise
    partial.replace(target)
    return target


def fetch_s3(uri: str, cache_dir: Path, expected_md5: str | None, s3_client=None) -> Path:
    import boto3
    from botocore.exceptions import ClientError

    location = parse_s3_uri(uri)
    client = s3_client or boto3.client("s3")
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / Path(location.key).name
    partial = target.with_suffix(target.suffix + ".part")
    try:
        client.download_file(location.bucket, location.key, str(partial))
    except ClientError as exc:
        raise DataSourceError(f"cannot read {uri}: {exc.response['Error'].get('Code')} "
                              f"{exc.response['Error'].get('Message', '')}. Check the bucket, key and permissions") from exc
    _verify(partial, expected_md5)
    partial.replace(target)
    return target


def resolve_archive(source: str, cache_dir: str | Path, expected_md5: str | None = None) -> Path:
    """Returns a local path to the archive named by ``source``.

    The official archive is always checked against its published MD5; custom sources only
    when ``expected_md5`` is given.
    """
    cache = Path(cache_dir).expanduser()
    if source in OFFICIAL_ALIASES:
        return download(OFFICIAL_URL, cache, expected_md5 or OFFICIAL_MD5)
    if is_s3_uri(source):
        return fetch_s3(source, cache, expected_md5)
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        return download(source, cache, expected_md5)
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(source).expanduser()
    if path.is_dir():
        archives = sorted(path.glob("*.tar.gz"))
        if len(archives) != 1:
            raise DataSourceError(f"{path} holds {len(archives)} .tar.gz archives; expected exactly one")
        path = archives[0]
    if not path.is_file():
        raise DataSourceError(f"data source {source!r} does not exist. Pass 'cifar-100' for the official "
                              "download, an s3:// URI, or the path of a cifar-100-python .tar.gz")
    return _verify(path, expected_md5)
