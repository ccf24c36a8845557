"""A processing job's /opt/ml/processing/... directories as real mount points, as in its container.

SageMaker mounts each ProcessingInput and ProcessingOutput ``LocalPath`` into the container as a
volume: the job may change what is inside, but removing or renaming the directory itself fails
with ``OSError: [Errno 16] Device or resource busy``. The local runner gets the same behaviour
without root tricks: the job runs in a private mount namespace (``unshare``; a user namespace
where the runtime is not root) in which each directory is bind-mounted onto itself, then the
job's own command is exec'd unchanged. Where mount namespaces are not available (not Linux, or
a sandbox that forbids them) the directories stay plain ones and the job log says so.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# argv: <dir>... -- <command>...; bind-mounts every dir onto itself, then becomes the command
_BIND_AND_EXEC = ('while [ "$1" != "--" ]; do mount --bind "$1" "$1" || exit 125; shift; done; '
                  'shift; exec "$@"')
UNAVAILABLE_NOTE = ("local runtime: mount namespaces are unavailable here, so /opt/ml/processing directories are "
                    "plain directories (a job that removes or replaces one would fail on SageMaker, not here)")


def _command(prefix: tuple[str, ...], directories: list[Path], command: list[str]) -> list[str]:
    ordered = sorted({str(d) for d in directories}, key=lambda d: (d.count(os.sep), d))
    return [*prefix, "sh", "-c", _BIND_AND_EXEC, "sh", *ordered, "--", *command]


@functools.cache
def namespace_prefix() -> tuple[str, ...] | None:
    """The ``unshare`` invocation that works on this machine, or None when none does."""
    unshare, mount = shutil.which("unshare"), shutil.which("mount")
    if not unshare or not mount:
        return None
    candidates = [(unshare, "--mount", "--propagation", "private")] if os.geteuid() == 0 else []
    candidates.append((unshare, "--user", "--map-root-user", "--mount", "--propagation", "private"))
    with tempfile.TemporaryDirectory(prefix="mount-probe-") as probe:
        for prefix in candidates:
            try:
                result = subprocess.run(_command(prefix, [Path(probe)], ["true"]), capture_output=True, timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if result.returncode == 0:
                return prefix
    return None


def with_mount_points(command: list[str], directories: list[Path]) -> tuple[list[str], str | None]:
    """``command`` run with ``directories`` as mount points; the note says when that is not possible."""
    prefix = namespace_prefix()
    if prefix is None:
        return command, UNAVAILABLE_NOTE
    return _command(prefix, directories, command), None
