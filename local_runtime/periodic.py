"""One way to do something every few seconds in the background of the local stack.

Data capture and endpoint metrics flush buffers, the alarm evaluator, deployment driver and
scheduler look at the control plane: each is a daemon thread that calls ``tick()`` every
``interval`` seconds, outlives a failing tick (logged) and, when stopped, runs ``final()`` once
(a last flush, so nothing buffered is lost).
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("local_runtime")


class PeriodicThread:
    name = "periodic"

    def __init__(self, interval: float):
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> object:
        raise NotImplementedError

    def final(self) -> None:
        """Runs once after the thread stopped."""

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self):
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:     # the thread outlives a failed tick
                log.warning("%s: tick failed: %s", self.name, exc)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        self.final()
