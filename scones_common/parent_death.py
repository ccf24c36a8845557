"""Worker processes that die with the process that started them (Linux's parent-death signal).

Process hygiene that both sides of a job need, standard library only: the local executor binds
each job it starts to itself (``local_runtime/pipeline/runners/job_process.py``), and a job that
starts workers of its own (the stand-in trainer, a container that imports only ``scones_common``)
binds them to itself with :func:`die_with_parent`.
"""
from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1    # prctl option: the signal this process gets when the thread that forked it dies


def die_with_parent(parent_pid: int) -> None:
    """Run first in a worker process a job starts itself (the trainer's members): SIGKILL when the job dies,
    so no worker outlives a job killed outright; exits at once if the job is already gone."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        os._exit(137)
