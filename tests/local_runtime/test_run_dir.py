"""The run directory's rules, in process: whose it is (the marker, nothing weaker), the lock file never
followed through a symlink, and ``--fresh`` forgetting nothing until the run can start."""
import json
import os

import pytest

from local_runtime.run_dir import LOCK, MARKER, check_run_dir, hold_run_dir
from scones_common.directories import UnsafeDirectoryError
from tests.builders import make_cifar_archive


def _snapshot(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def test_a_folder_holding_only_state_and_cache_is_not_taken_for_a_run_directory(tmp_path):
    folder = tmp_path / "mine"
    (folder / "state").mkdir(parents=True)
    (folder / "cache").mkdir()
    (folder / "state" / "thesis.tex").write_text("mine")
    with pytest.raises(UnsafeDirectoryError, match="not an earlier output of scones-local"):
        check_run_dir(folder)
    (folder / MARKER).write_text(json.dumps({"written_by": "scones-local"}))
    assert check_run_dir(folder) == folder.resolve()


def test_an_empty_folder_or_one_holding_only_the_lock_is_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / LOCK).write_text("{}")
    assert check_run_dir(tmp_path / "empty") and check_run_dir(tmp_path / "locked")


def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "important.txt"
    victim.write_text("do not truncate me")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.symlink(victim, run_dir / LOCK)
    with pytest.raises(UnsafeDirectoryError, match="is a symlink"):
        with hold_run_dir(run_dir, "scones-local run"):
            pass
    assert victim.read_text() == "do not truncate me"
    assert not (run_dir / MARKER).exists()


def test_fresh_with_a_corrupt_archive_deletes_nothing(tmp_path):
    """The archive exists but cannot be staged: the earlier runs' packages, executions and captures stay."""
    from local_runtime.run import run_local
    from local_runtime.settings import load_local_config
    from processing.cifar_archive import CorruptArchiveError

    good = make_cifar_archive(tmp_path / "good.tar.gz")
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    run_dir = tmp_path / "run"
    (run_dir / "state" / "resources" / "sagemaker.model-packages").mkdir(parents=True)
    (run_dir / "state" / "resources" / "sagemaker.model-packages" / "p.json").write_text("{}")
    (run_dir / "executions").mkdir()
    (run_dir / "executions" / "e.json").write_text("{}")
    (run_dir / MARKER).write_text(json.dumps({"written_by": "scones-local"}))
    before = _snapshot(run_dir)
    config = load_local_config(overrides={"data.source": str(corrupt)}, environ={})
    with pytest.raises(CorruptArchiveError):
        run_local(config, run_dir, executions=0, fresh=True)
    assert _snapshot(run_dir) == before
