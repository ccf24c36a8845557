"""The run directory: whose it is, who is using it, and clearing it on ``--fresh``.

- A run directory must be new, empty or an earlier run directory (its marker file
  ``.scones-run.json`` says so, nothing weaker); ``.``, ``..``, ``/`` and the home folder are refused.
  The lock file is opened without following symlinks.
- One process at a time: ``scones-local run`` and ``serve`` hold an exclusive ``flock`` on
  ``.scones-run.lock`` (which records the holder's pid and command) for as long as they use
  the directory. Each saves the whole state and deletes what it does not know, so a second
  process would silently lose the first one's packages and captures; it is refused instead.
  The kernel drops the lock when the holder dies, however it dies.
- ``--fresh`` clears the directory's contents (not the directory, the marker or the lock), and
  only while the lock is held, after the inputs were checked.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from local_runtime.errors import LocalRuntimeError
from scones_common.directories import UnsafeDirectoryError, not_ours, refuse_special, write_marker, written_by

COMMAND = "scones-local"
MARKER = ".scones-run.json"
LOCK = ".scones-run.lock"


class RunDirLockedError(LocalRuntimeError):
    """Another scones-local process is using the run directory."""


def check_run_dir(path: str | Path) -> Path:
    """The resolved run directory if scones-local may use it; else ``UnsafeDirectoryError``."""
    run_dir = refuse_special(path, "--run-dir", "runs/local")
    if not run_dir.exists() or written_by(run_dir, MARKER, COMMAND):     # the marker, nothing weaker (a folder
        return run_dir                                                     # of state/ and cache/ may be anyone's)
    entries = [p.name for p in run_dir.iterdir() if p.name != LOCK]
    if not entries:
        return run_dir
    raise not_ours("--run-dir", path, COMMAND, entries)


def _holder(lock_path: Path) -> str:
    for _ in range(20):                  # the holder writes its pid right after locking
        try:
            holder = json.loads(lock_path.read_text())
            return f"{holder['command']} (pid {holder['pid']})"
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "another process (pid unknown)"


@contextmanager
def hold_run_dir(run_dir: Path, command: str) -> Iterator[Path]:
    """Holds the run directory's lock for the duration, or raises :class:`RunDirLockedError`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_path = run_dir / LOCK
    try:     # never through a symlink: truncating and writing would reach the file it points to
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise UnsafeDirectoryError(f"{lock_path} is a symlink; scones-local writes its lock file only in the run "
                                   "directory itself. Remove the link, or pass another --run-dir") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeDirectoryError(f"{lock_path} is not a regular file; remove it, or pass another --run-dir")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirLockedError(f"{run_dir} is in use by {_holder(lock_path)}; wait for it to finish or stop it "
                                    "(Ctrl-C), or pass another --run-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode(), 0)
        write_marker(run_dir, MARKER, COMMAND)
        yield run_dir
    finally:
        os.close(fd)                     # closing the only descriptor releases the lock


def clear_run_dir(run_dir: Path) -> None:
    """``--fresh``: everything inside goes except the marker and the lock (call it holding the lock)."""
    for child in run_dir.iterdir():
        if child.name in (MARKER, LOCK):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
