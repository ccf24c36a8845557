"""Files that are either the old version or the new one, never half of each.

A crash (Ctrl-C, SIGKILL, a full disk) in the middle of a plain ``write_text`` leaves a
truncated file that the next start cannot parse; writing a temporary file in the same
directory and renaming it over the target cannot.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_atomic(path: str | Path, data: bytes | str, durable: bool = True, scratch_dir: Path | None = None) -> None:
    """Replaces ``path`` with ``data`` in one rename.

    ``durable`` also flushes the bytes to disk before the rename (state and cache records);
    ``scratch_dir`` (same file system) keeps temporary files out of a directory that is
    listed or uploaded as a whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    directory = scratch_dir or path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)          # as open() would create it; mkstemp makes it private
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
