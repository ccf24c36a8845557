"""``scones-prepare-data`` as a user runs it (a real subprocess): hostile archives, directory
arguments, an output directory that is a mount point, downloads over a flaky connection."""
import builtins
import hashlib
import json
import os
import pickle
import tarfile

import pytest

from tests.archive_server import ArchiveServer
from tests.builders import RunsOnLoad, make_cifar_archive
from tests.console import run_script


def _stage(*args, cwd=None):
    return run_script("scones-prepare-data", *args, cwd=cwd)


def _no_traceback(result):
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("payload", ["os.system", "builtins.open"])
def test_a_crafted_pickle_creates_no_file_and_names_the_member(tmp_path, payload):
    planted_file = tmp_path / "planted"
    plant = (RunsOnLoad(os.system, f"touch {planted_file}") if payload == "os.system"
             else RunsOnLoad(builtins.open, str(planted_file), "w"))
    archive = make_cifar_archive(tmp_path / "cifar-100-python.tar.gz", planted={"train": plant})
    with tarfile.open(archive) as tar:                  # the payload is live: a plain pickle.load runs it
        pickle.loads(tar.extractfile("cifar-100-python/train").read(), encoding="bytes")
    assert planted_file.exists()
    planted_file.unlink()

    result = _stage("--data-source", str(archive), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert not planted_file.exists()
    assert "CorruptArchiveError" in result.stderr and "cifar-100-python/train" in result.stderr
    assert ("posix.system" if payload == "os.system" else "io.open") in result.stderr
    assert not (tmp_path / "out").exists()
    _no_traceback(result)


@pytest.mark.parametrize("argument", [".", "..", "/", "~"])
def test_special_directories_are_refused_and_nothing_is_deleted(tmp_path, cifar_archive, argument):
    cwd = tmp_path / "work" / "here"
    cwd.mkdir(parents=True)
    (cwd / "notes.txt").write_text("mine")
    (tmp_path / "work" / "other.txt").write_text("also mine")
    result = _stage("--data-source", str(cifar_archive), "--output-dir", argument, cwd=cwd)
    assert result.returncode == 2, result.stderr
    assert "UnsafeDirectoryError" in result.stderr and "nothing was changed" in result.stderr.lower()
    assert (cwd / "notes.txt").read_text() == "mine" and (tmp_path / "work" / "other.txt").read_text() == "also mine"
    assert sorted(p.name for p in cwd.iterdir()) == ["notes.txt"]
    _no_traceback(result)


def test_a_foreign_non_empty_directory_is_refused(tmp_path, cifar_archive):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.png").write_bytes(b"not ours")
    result = _stage("--data-source", str(cifar_archive), "--output-dir", str(out))
    assert result.returncode == 2 and "holiday.png" in result.stderr
    assert [p.name for p in out.iterdir()] == ["holiday.png"]
    _no_traceback(result)


def test_an_earlier_output_is_replaced_in_place_but_not_if_it_holds_other_files(tmp_path):
    out = tmp_path / "staged"
    first = make_cifar_archive(tmp_path / "a.tar.gz", seed=1)
    second = make_cifar_archive(tmp_path / "b.tar.gz", seed=2)
    assert _stage("--data-source", str(first), "--output-dir", str(out)).returncode == 0
    inode = out.stat().st_ino
    result = _stage("--data-source", str(second), "--output-dir", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "staging_report.json").read_text())
    assert report["source_sha256"] == hashlib.sha256(second.read_bytes()).hexdigest()
    assert out.stat().st_ino == inode
    assert sorted(p.name for p in out.iterdir()) == ["staging_report.json", "test", "test.lst", "train", "train.lst",
                                                     "validation", "validation.lst"]
    (out / "my-notes.txt").write_text("keep me")
    refused = _stage("--data-source", str(first), "--output-dir", str(out))
    assert refused.returncode == 2 and "my-notes.txt" in refused.stderr
    assert json.loads((out / "staging_report.json").read_text()) == report


def test_a_mount_like_output_dir_with_a_read_only_parent_is_filled_in_place(tmp_path, cifar_archive):
    """As /opt/ml/processing/output in a container: the directory stays (same inode), its parent is untouched."""
    parent = tmp_path / "processing"
    out = parent / "output"
    out.mkdir(parents=True)
    inode = out.stat().st_ino
    parent.chmod(0o555)
    try:
        result = _stage("--data-source", str(cifar_archive), "--output-dir", str(out))
    finally:
        parent.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in parent.iterdir()] == ["output"]
    assert out.stat().st_ino == inode
    assert (out / "train.lst").exists() and not [p for p in out.iterdir() if p.name.startswith(".")]


def test_an_http_source_survives_a_dropped_connection(tmp_path, cifar_archive):
    www = tmp_path / "www"
    www.mkdir()
    (www / "cifar-100-python.tar.gz").write_bytes(cifar_archive.read_bytes())
    md5 = hashlib.md5(cifar_archive.read_bytes()).hexdigest()
    with ArchiveServer(www) as server:
        server.behaviour.drop_after, server.behaviour.drops = 4096, 1
        result = _stage("--data-source", f"{server.url}/cifar-100-python.tar.gz", "--md5", md5,
                        "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "retrying" in result.stderr
    assert [r["range"] for r in server.behaviour.requests] == [None, "bytes=4096-"]
    assert json.loads(result.stdout)["totals"]["train"] == 72
    assert not list((tmp_path / "cache").rglob("*.part"))
