import hashlib
import os

import boto3
import pytest
from moto import mock_aws

from processing.cifar_source import (
    ChecksumMismatchError,
    DataSourceError,
    InvalidS3UriError,
    md5_of,
    mirror_archive,
    resolve_archive,
    sha256_of,
)
from processing.download import RetryPolicy
from tests.archive_server import ArchiveServer
from tests.builders import make_cifar_archive

FAST = RetryPolicy(attempts=2, first_delay=0.01, timeout=5)


@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    with ArchiveServer(served) as server:
        yield served, server.url


def _files(directory):
    return sorted(p.name for p in directory.rglob("*") if p.is_file())


def test_download_verifies_and_caches(http_server, cifar_archive, tmp_path):
    served, base = http_server
    (served / "cifar.tar.gz").write_bytes(cifar_archive.read_bytes())
    digest = md5_of(cifar_archive)
    cache = tmp_path / "cache"
    path = resolve_archive(f"{base}/cifar.tar.gz", cache, digest, FAST)
    assert path.read_bytes() == cifar_archive.read_bytes() and path.name == "cifar.tar.gz"
    (served / "cifar.tar.gz").unlink()
    assert resolve_archive(f"{base}/cifar.tar.gz", cache, digest, FAST) == path  # served from cache


def test_same_basename_from_two_urls_is_two_cache_entries(http_server, tmp_path):
    served, base = http_server
    for folder, seed in (("a", 1), ("b", 2)):
        (served / folder).mkdir()
        make_cifar_archive(served / folder / "cifar.tar.gz", seed=seed)
    cache = tmp_path / "cache"
    first = resolve_archive(f"{base}/a/cifar.tar.gz", cache, policy=FAST)
    second = resolve_archive(f"{base}/b/cifar.tar.gz", cache, policy=FAST)
    assert first != second
    assert first.read_bytes() == (served / "a" / "cifar.tar.gz").read_bytes()
    assert second.read_bytes() == (served / "b" / "cifar.tar.gz").read_bytes()


def test_a_damaged_cached_download_is_fetched_again_not_trusted(http_server, cifar_archive, tmp_path):
    served, base = http_server
    (served / "cifar.tar.gz").write_bytes(cifar_archive.read_bytes())
    cache = tmp_path / "cache"
    path = resolve_archive(f"{base}/cifar.tar.gz", cache, policy=FAST)
    path.write_bytes(path.read_bytes()[:5000])           # e.g. a disk problem or a stray copy
    assert resolve_archive(f"{base}/cifar.tar.gz", cache, policy=FAST).read_bytes() == cifar_archive.read_bytes()


def test_bad_checksum_leaves_nothing(http_server, cifar_archive, tmp_path):
    served, base = http_server
    (served / "cifar.tar.gz").write_bytes(cifar_archive.read_bytes())
    with pytest.raises(ChecksumMismatchError):
        resolve_archive(f"{base}/cifar.tar.gz", tmp_path / "cache", "0" * 32, FAST)
    assert _files(tmp_path / "cache") == []


def test_unreachable_url_says_what_to_do(tmp_path):
    with pytest.raises(DataSourceError, match="--data-source"):
        resolve_archive("http://127.0.0.1:9/cifar.tar.gz", tmp_path, None, FAST)


def test_official_alias_refuses_another_checksum(tmp_path):
    with pytest.raises(ChecksumMismatchError, match="official archive's MD5"):
        resolve_archive("cifar-100", tmp_path, "0" * 32)


@mock_aws
def test_s3_source_is_cached_until_the_object_changes(cifar_archive, tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="data")
    s3.upload_file(str(cifar_archive), "data", "raw/cifar.tar.gz")
    path = resolve_archive("s3://data/raw/cifar.tar.gz", tmp_path / "cache")
    assert path.read_bytes() == cifar_archive.read_bytes()
    replacement = make_cifar_archive(tmp_path / "other.tar.gz", seed=9)
    s3.upload_file(str(replacement), "data", "raw/cifar.tar.gz")
    assert resolve_archive("s3://data/raw/cifar.tar.gz", tmp_path / "cache").read_bytes() == replacement.read_bytes()
    with pytest.raises(DataSourceError, match="404|NoSuchKey"):
        resolve_archive("s3://data/raw/missing.tar.gz", tmp_path / "cache")


def test_directory_with_one_archive(cifar_archive):
    assert resolve_archive(str(cifar_archive.parent), "/tmp/unused") == cifar_archive


@mock_aws
def test_mirror_keys_the_archive_by_content(tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bkt")
    raw = "s3://bkt/p/raw/cifar-100-python.tar.gz"
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir(), second_dir.mkdir()
    first = make_cifar_archive(first_dir / "cifar-100-python.tar.gz", seed=1)
    second = make_cifar_archive(second_dir / "cifar-100-python.tar.gz", seed=2)   # same basename, other bytes

    one = mirror_archive(s3, str(first), tmp_path / "cache", raw)
    two = mirror_archive(s3, str(second), tmp_path / "cache", raw)
    assert one.uri == f"s3://bkt/p/raw/sha256-{sha256_of(first)}/cifar-100-python.tar.gz"
    assert two.uri != one.uri and two.sha256 == hashlib.sha256(second.read_bytes()).hexdigest()
    assert one.provenance == f"sha256:{one.sha256} {first}"
    body = s3.get_object(Bucket="bkt", Key=two.uri.removeprefix("s3://bkt/"))["Body"].read()
    assert body == second.read_bytes()

    first.write_bytes(second.read_bytes())              # repaired in place: same path, new content
    assert mirror_archive(s3, str(first), tmp_path / "cache", raw).uri == two.uri
    assert len(s3.list_objects_v2(Bucket="bkt")["Contents"]) == 2


@pytest.mark.parametrize("source, expected", [
    ("~nosuchuser-scones/x.tar.gz", r"~nosuchuser-scones is not a user on this machine"),
    ("http://[::1/x.tar.gz", r"is not a valid URL \(Invalid IPv6 URL\)"),
    ("http://127.0.0.1:99999/x.tar.gz", r"is not a valid URL \(Port out of range"),
    ("file://", r"names no absolute path; write it as file:///absolute/path"),
    ("file:", r"names no absolute path"),
    ("file:cifar.tar.gz", r"names no absolute path"),
    ("file://myhost", r"'myhost' was read as the host of the file URL.*; write it as file:///absolute/path"),
    ("file://tmp/x.tar.gz", r"'tmp' was read as the host .*did you mean file:///tmp/x.tar.gz\?"),
    ("ftp://example.com/x.tar.gz", r"the scheme 'ftp' is not supported"),
    ("", r"the data source is empty"),
    (" ", r"the data source is empty"),
    ("x\x00y.tar.gz", r"holds a NUL character"),
    ("/dev/null", r"is a character device, not a regular file"),
])
def test_a_source_that_names_no_archive_is_named(source, expected, tmp_path):
    with pytest.raises(DataSourceError, match=expected):
        resolve_archive(source, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_file_urls_with_an_empty_or_local_host_resolve(cifar_archive):
    assert resolve_archive(cifar_archive.as_uri(), "/tmp/unused") == cifar_archive
    assert resolve_archive(f"file://localhost{cifar_archive}", "/tmp/unused") == cifar_archive
    assert resolve_archive(f"file:{cifar_archive}", "/tmp/unused") == cifar_archive


@pytest.mark.parametrize("as_url", [False, True])
def test_a_fifo_is_named_not_reported_missing(tmp_path, as_url):
    fifo = tmp_path / "cifar.tar.gz"
    os.mkfifo(fifo)
    with pytest.raises(DataSourceError, match="is a FIFO \\(named pipe\\), not a regular file; .* copy it to a file"):
        resolve_archive(fifo.as_uri() if as_url else str(fifo), tmp_path / "cache")
    with pytest.raises(DataSourceError, match="is a FIFO"):          # the one archive of a directory
        resolve_archive(str(tmp_path), tmp_path / "cache")


@pytest.mark.parametrize("uri", ["s3://bkt", "s3://bkt/", "s3://bkt/raw/"])
def test_an_s3_source_without_an_object_key_is_an_invalid_uri(uri, tmp_path):
    with pytest.raises(InvalidS3UriError, match="names a bucket or folder, not an object; .*s3://bkt/"):
        resolve_archive(uri, tmp_path / "cache")


def test_an_unknown_users_cache_directory_is_named(cifar_archive):
    with pytest.raises(DataSourceError, match="cache directory '~nosuchuser-scones/c'"):
        resolve_archive(str(cifar_archive), "~nosuchuser-scones/c")
