"""Job subprocesses (trainer, processing scripts) that never outlive the run that started them.

Each job runs in its own process group, so Ctrl-C reaches only the run, which then stops the
whole group (SIGTERM, then SIGKILL) before it exits. If the run itself is killed outright
(SIGKILL, OOM killer), Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``) kills the job:
it is set by a few lines of Python that then ``exec`` the job's command, because setting it in
``preexec_fn`` is unsafe in a process that runs threads (the moto server, the endpoint). The
signal follows the thread that started the job; the executor starts jobs from the thread that
runs the pipeline, which outlives them. Elsewhere than Linux only the process-group part applies.
Workers a job starts itself bind to it with ``scones_common.parent_death.die_with_parent``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from scones_common.parent_death import PR_SET_PDEATHSIG

_BOUND_TO_PARENT = f"""
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl({PR_SET_PDEATHSIG}, int(signal.SIGKILL), 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):   # the run died before the signal was armed
    sys.exit(137)
os.execv(sys.argv[2], sys.argv[2:])
"""


def bound_to_parent(command: list[str]) -> list[str]:
    """``command`` wrapped so that it dies with this process (Linux)."""
    if not sys.platform.startswith("linux"):
        return list(command)
    return [sys.executable, "-c", _BOUND_TO_PARENT, str(os.getpid()), *command]


def stop_group(process: subprocess.Popen, grace_seconds: float = 5.0) -> None:
    """Ends the job's whole process group: SIGTERM, then SIGKILL after ``grace_seconds``."""
    if process.poll() is not None:
        return
    _terminate(process)
    try:
        process.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class StopSignal:
    """StopPipelineExecution for one execution: once set, the job running then is sent SIGTERM (as
    SageMaker stops a running step's job) and a job starting later is ended at once."""

    def __init__(self) -> None:
        self._set = threading.Event()
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()

    def is_set(self) -> bool:
        return self._set.is_set()

    def set(self) -> None:
        """Called from a request thread: signals and returns; the job's own exit path waits for it."""
        with self._lock:
            self._set.set()
            running = list(self._running)
        for process in running:
            _terminate(process)

    @contextmanager
    def watching(self, process: subprocess.Popen) -> Iterator[None]:
        with self._lock:
            self._running.add(process)
            stopped = self._set.is_set()
        if stopped:
            _terminate(process)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(process)


def _terminate(process: subprocess.Popen) -> None:
    """SIGTERM to the job's process group; a group already gone is not an error."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


@contextmanager
def job_process(command: list[str], stop: StopSignal | None = None, **popen) -> Iterator[subprocess.Popen]:
    """Starts ``command`` in its own process group, bound to this process; stops it on any exit and
    when ``stop`` is set."""
    process = subprocess.Popen(bound_to_parent(command), start_new_session=True, **popen)
    try:
        with stop.watching(process) if stop else nullcontext():
            yield process
    finally:
        stop_group(process)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream:
                stream.close()
        process.wait()
