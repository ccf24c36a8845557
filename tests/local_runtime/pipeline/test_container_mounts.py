"""Processing directories as mount points: real EBUSY where mount namespaces exist, a named note where not."""
import subprocess
import sys

import pytest

from local_runtime.pipeline import container_mounts
from local_runtime.pipeline.container_mounts import UNAVAILABLE_NOTE, namespace_prefix, with_mount_points

REPLACE = """
import os, shutil, sys
out = sys.argv[1]
open(os.path.join(out, "kept.txt"), "w").write("inside")
for attempt in (lambda: os.rmdir(out), lambda: os.rename(out, out + ".old")):
    try:
        attempt()
        print("allowed")
    except OSError as exc:
        print(exc.errno)
"""


def test_mount_points_refuse_removal_and_rename(tmp_path):
    if namespace_prefix() is None:
        pytest.skip("mount namespaces are unavailable on this machine")
    out = tmp_path / "output"
    out.mkdir()
    (tmp_path / "other").mkdir()
    command, note = with_mount_points([sys.executable, "-c", REPLACE, str(out)], [out, tmp_path / "other"])
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert note is None and result.stdout.split() == ["16", "16"]   # EBUSY, as in the container
    assert (out / "kept.txt").read_text() == "inside"                # what the job writes inside stays


def test_without_mount_namespaces_the_job_runs_unchanged_and_says_so(monkeypatch):
    monkeypatch.setattr(container_mounts, "namespace_prefix", lambda: None)
    command, note = with_mount_points(["python3", "job.py"], [])
    assert command == ["python3", "job.py"] and note == UNAVAILABLE_NOTE
