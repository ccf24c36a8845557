import http.server
import threading

import boto3
import pytest
from moto import mock_aws

from processing.cifar_source import ChecksumMismatchError, DataSourceError, md5_of, resolve_archive


@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_and_caches(http_server, cifar_archive, tmp_path):
    served, base = http_server
    (served / "cifar.tar.gz").write_bytes(cifar_archive.read_bytes())
    digest = md5_of(cifar_archive)
    cache = tmp_path / "cache"
    path = resolve_archive(f"{base}/cifar.tar.gz", cache, digest)
    assert path.read_bytes() == cifar_archive.read_bytes()
    (served / "cifar.tar.gz").unlink()
    assert resolve_archive(f"{base}/cifar.tar.gz", cache, digest) == path  # served from cache


def test_download_resumes_partial(http_server, cifar_archive, tmp_path):
    served, base = http_server
    data = cifar_archive.read_bytes()
    (served / "cifar.tar.gz").write_bytes(data)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "cifar.tar.gz.part").write_bytes(data[:1000])
    path = resolve_archive(f"{base}/cifar.tar.gz", cache, md5_of(cifar_archive))
    assert path.read_bytes() == data


def test_bad_checksum_leaves_nothing(http_server, cifar_archive, tmp_path):
    served, base = http_server
    (served / "cifar.tar.gz").write_bytes(cifar_archive.read_bytes())
    with pytest.raises(ChecksumMismatchError):
        resolve_archive(f"{base}/cifar.tar.gz", tmp_path / "cache", "0" * 32)
    assert list((tmp_path / "cache").iterdir()) == []


def test_unreachable_url_says_what_to_do(tmp_path):
    with pytest.raises(DataSourceError, match="--data-source"):
        resolve_archive("http://127.0.0.1:9/cifar.tar.gz", tmp_path, None)


@mock_aws
def test_s3_source(cifar_archive, tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="data")
    s3.upload_file(str(cifar_archive), "data", "raw/cifar.tar.gz")
    path = resolve_archive("s3://data/raw/cifar.tar.gz", tmp_path / "cache")
    assert path.read_bytes() == cifar_archive.read_bytes()
    with pytest.raises(DataSourceError, match="404|NoSuchKey"):
        resolve_archive("s3://data/raw/missing.tar.gz", tmp_path / "cache")


def test_directory_with_one_archive(cifar_archive):
    assert resolve_archive(str(cifar_archive.parent), "/tmp/unused") == cifar_archive
