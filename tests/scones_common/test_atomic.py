import os
import stat

import pytest

from scones_common.atomic import write_atomic


def test_replaces_the_file_in_one_step_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "state" / "sagemaker.json"
    write_atomic(target, '{"v": 1}')
    write_atomic(target, b'{"v": 2}')
    assert target.read_text() == '{"v": 2}'
    assert [p.name for p in target.parent.iterdir()] == ["sagemaker.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()


def test_a_failed_write_keeps_the_old_content(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(target, 12345)                       # not bytes: fails after the temporary file exists
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_temporary_files_can_live_elsewhere_on_the_same_file_system(tmp_path):
    write_atomic(tmp_path / "mirror" / "a.png", b"png", durable=False, scratch_dir=tmp_path / ".tmp")
    assert (tmp_path / "mirror" / "a.png").read_bytes() == b"png" and list((tmp_path / ".tmp").iterdir()) == []


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
