"""Downloads against a real HTTP server on 127.0.0.1: resume, retry, verify, progress."""
import io
import logging
import os

import pytest

from processing.download import Progress, RetryPolicy, download, md5_of
from processing.errors import ChecksumMismatchError, DataSourceError
from tests.archive_server import ArchiveServer

FAST = RetryPolicy(attempts=4, first_delay=0.01, timeout=5)


@pytest.fixture
def served(tmp_path, cifar_archive):
    root = tmp_path / "www"
    root.mkdir()
    (root / "cifar-100-python.tar.gz").write_bytes(cifar_archive.read_bytes())
    with ArchiveServer(root) as server:
        yield server, cifar_archive.read_bytes()


def _files(directory):
    return sorted(p.name for p in directory.rglob("*") if p.is_file())


def test_a_whole_verified_download_lands_under_its_name_and_nothing_else(served, tmp_path):
    server, data = served
    target = tmp_path / "cache" / "cifar-100-python.tar.gz"
    assert download(f"{server.url}/cifar-100-python.tar.gz", target, md5_of_bytes(data), FAST) == target
    assert target.read_bytes() == data
    assert _files(tmp_path / "cache") == ["cifar-100-python.tar.gz"]


def test_a_dropped_connection_is_retried_from_where_it_stopped(served, tmp_path):
    server, data = served
    server.behaviour.drop_after, server.behaviour.drops = 3000, 2
    target = tmp_path / "cache" / "a.tar.gz"
    download(f"{server.url}/cifar-100-python.tar.gz", target, md5_of_bytes(data), FAST)
    assert target.read_bytes() == data
    ranges = [r["range"] for r in server.behaviour.requests]
    assert ranges == [None, "bytes=3000-", "bytes=6000-"]
    assert all(r["if_range"] for r in server.behaviour.requests[1:])      # resumed only if the file is unchanged
    assert _files(tmp_path / "cache") == ["a.tar.gz"]


def test_a_download_that_keeps_failing_leaves_only_a_part_file_and_a_rerun_resumes_it(served, tmp_path):
    server, data = served
    server.behaviour.drop_after, server.behaviour.drops = 2500, 4
    target = tmp_path / "cache" / "a.tar.gz"
    with pytest.raises(DataSourceError, match="after 4 attempts; rerun to resume from 10000 bytes"):
        download(f"{server.url}/cifar-100-python.tar.gz", target, md5_of_bytes(data), FAST)
    assert not target.exists() and (tmp_path / "cache" / "a.tar.gz.part").stat().st_size == 10000
    server.behaviour.requests.clear()
    download(f"{server.url}/cifar-100-python.tar.gz", target, md5_of_bytes(data), FAST)
    assert target.read_bytes() == data
    assert [r["range"] for r in server.behaviour.requests] == ["bytes=10000-"]


def test_a_wrong_checksum_leaves_nothing_a_rerun_would_trust(served, tmp_path):
    server, _ = served
    target = tmp_path / "cache" / "a.tar.gz"
    with pytest.raises(ChecksumMismatchError, match="expected 000"):
        download(f"{server.url}/cifar-100-python.tar.gz", target, "0" * 32, FAST)
    assert _files(tmp_path / "cache") == []


def test_a_corrupt_part_file_is_discarded_and_the_file_fetched_whole(served, tmp_path):
    server, data = served
    target = tmp_path / "cache" / "a.tar.gz"
    target.parent.mkdir()
    (target.parent / "a.tar.gz.part").write_bytes(b"x" * 1000)       # left by an older, different download
    download(f"{server.url}/cifar-100-python.tar.gz", target, md5_of_bytes(data), FAST)
    assert target.read_bytes() == data
    assert [r["range"] for r in server.behaviour.requests] == ["bytes=1000-", None]


def test_a_server_without_ranges_sends_it_all_again(served, tmp_path):
    server, data = served
    server.behaviour.drop_after, server.behaviour.drops, server.behaviour.ranges = 3000, 1, False
    target = tmp_path / "cache" / "a.tar.gz"
    download(f"{server.url}/cifar-100-python.tar.gz", target, md5_of_bytes(data), FAST)
    assert target.read_bytes() == data


def test_missing_file_fails_at_once_and_server_errors_are_retried(served, tmp_path):
    server, _ = served
    with pytest.raises(DataSourceError, match="HTTP 404"):
        download(f"{server.url}/nothing.tar.gz", tmp_path / "x.tar.gz", None, FAST)
    assert len(server.behaviour.requests) == 1
    server.behaviour.fail_with = 503
    with pytest.raises(DataSourceError, match="503.*after 4 attempts"):
        download(f"{server.url}/cifar-100-python.tar.gz", tmp_path / "x.tar.gz", None, FAST)
    assert len(server.behaviour.requests) == 1 + 4


def test_refused_connection_names_the_way_out(tmp_path):
    with pytest.raises(DataSourceError, match="--data-source PATH"):
        download("http://127.0.0.1:9/cifar.tar.gz", tmp_path / "x.tar.gz", None, FAST)


def test_progress_is_a_bar_on_a_terminal():
    data = b"x" * 500_000
    controller, terminal = os.openpty()
    with os.fdopen(terminal, "w") as stream:
        progress = Progress("downloading a.tar.gz", stream)
        assert progress.tty
        progress.start(0, len(data))
        progress.advance(len(data) // 2)
        progress._last_shown = 0
        progress.advance(len(data) - len(data) // 2)
        progress.finish()
    shown = ""
    while not shown.endswith("\n"):
        shown += os.read(controller, 4096).decode()
    os.close(controller)
    assert "\rdownloading a.tar.gz [" in shown and "100%" in shown and shown.endswith("\r\n")


def test_progress_is_log_lines_elsewhere(caplog):
    stream = io.StringIO()
    progress = Progress("downloading a.tar.gz", stream, log_every=0)
    with caplog.at_level(logging.INFO, logger="processing.download"):
        progress.start(0, 2_000_000)
        progress.advance(1_000_000)
        progress.finish()
    assert stream.getvalue() == ""
    assert any("downloading a.tar.gz:  50% 1.0/2.0 MB" in r.getMessage() for r in caplog.records)


def md5_of_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()


def test_md5_of_matches_hashlib(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert md5_of(path) == md5_of_bytes(b"abc")
