"""HTTP downloads that survive a flaky network and never leave a file a rerun would trust.

Bytes go to ``<target>.part``; an interrupted transfer is resumed with an HTTP ``Range``
request (``If-Range`` makes the server send the whole file again if it changed meanwhile),
retried with exponential backoff, and only a complete, checksum-verified file is renamed to
``<target>``. Progress goes to stderr: a bar on a terminal, a log line every few seconds
otherwise (job logs, CI).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from processing.errors import ChecksumMismatchError, DataSourceError

_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_RETRIED_STATUSES = {408, 429, 500, 502, 503, 504}

log = logging.getLogger("processing.download")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_delay: float = 1.0      # seconds before the second attempt; doubled each time
    max_delay: float = 30.0
    timeout: float = 60.0         # per socket operation

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.first_delay * 2 ** (attempt - 1))


class _Interrupted(Exception):
    """The transfer stopped early in a way a retry may fix (reset, timeout, short body, 5xx)."""


def md5_of(path: Path) -> str:
    return file_digest(path, "md5")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


class Progress:
    """A progress bar on a terminal, periodic log lines elsewhere; silent for tiny files."""

    def __init__(self, label: str, stream: TextIO | None = None, log_every: float = 10.0):
        self.label, self.stream = label, stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every = log_every
        self.total: int | None = None
        self.done = self.started_at = 0
        self._clock = self._last_shown = 0.0

    def start(self, done: int, total: int | None) -> None:
        self.done, self.started_at, self.total = done, done, total
        self._clock = self._last_shown = time.monotonic()
        if done:
            log.info("%s: resuming at %.1f MB", self.label, done / 1e6)

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last_shown >= (0.1 if self.tty else self.log_every):
            self._last_shown = now
            self._show(now)

    def finish(self) -> None:
        if self.tty:
            self._show(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, now: float) -> None:
        rate = (self.done - self.started_at) / max(now - self._clock, 1e-6)
        size = f"{self.done / 1e6:.1f}" + (f"/{self.total / 1e6:.1f} MB" if self.total else " MB")
        if self.total:
            fraction = min(1.0, self.done / self.total)
            eta = (self.total - self.done) / rate if rate > 0 else 0
            figures = f"{fraction:4.0%} {size} {rate / 1e6:.1f} MB/s ETA {int(eta) // 60}:{int(eta) % 60:02d}"
        else:
            fraction, figures = 0.0, f"{size} {rate / 1e6:.1f} MB/s"
        if self.tty:
            bar = "#" * int(fraction * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {figures}  ")
            self.stream.flush()
        else:
            log.info("%s: %s", self.label, figures)


def _sidecar(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_sidecar(part: Path) -> dict:
    try:
        return json.loads(_sidecar(part).read_text())
    except (OSError, ValueError):
        return {}


def _request(url: str, offset: int, saved: dict, can_resume_blind: bool) -> urllib.request.Request:
    headers = {"Accept-Encoding": "identity", "User-Agent": "scones-vehicle-classifier"}
    validator = saved.get("etag") or saved.get("last_modified")
    if offset and (validator or can_resume_blind):
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    return urllib.request.Request(url, headers=headers)


def _transfer(url: str, part: Path, policy: RetryPolicy, progress: Progress, can_resume_blind: bool) -> None:
    """One attempt: appends to ``part`` from where it stops, or starts it over; raises _Interrupted."""
    offset = part.stat().st_size if part.exists() else 0
    saved = _read_sidecar(part) if offset else {}
    request = _request(url, offset, saved, can_resume_blind)
    try:
        response = urllib.request.urlopen(request, timeout=policy.timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and saved.get("total") == offset:
            return                                    # the .part is already whole
        if exc.code == 416:
            part.unlink(missing_ok=True)
            raise _Interrupted("the partial download does not match the server's file; starting over") from exc
        if exc.code in _RETRIED_STATUSES:
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from exc
        raise DataSourceError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout, ConnectionResetError)):
            raise _Interrupted(str(exc.reason)) from exc
        raise DataSourceError(f"cannot download {url}: {exc.reason}. Check the network, or pass a local "
                              "archive with --data-source PATH (a cifar-100-python .tar.gz)") from exc
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Interrupted(f"{type(exc).__name__}: {exc}") from exc
    with response:
        ranged = response.status == 206 and "Range" in request.headers
        if ranged:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                part.unlink(missing_ok=True)
                raise _Interrupted(f"server answered the range request with {response.headers.get('Content-Range')!r}")
            total = int(match.group(3)) if match.group(3) != "*" else None
        else:
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            validators = {"url": url, "total": total, "etag": response.headers.get("ETag"),
                          "last_modified": response.headers.get("Last-Modified")}
            _sidecar(part).write_text(json.dumps(validators))
        progress.start(offset, total)
        try:
            with open(part, "ab" if ranged else "wb") as handle:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                    progress.advance(len(chunk))
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, (TimeoutError, ConnectionError)):
                raise                                  # a local disk error, not the network
            raise _Interrupted(f"{type(exc).__name__}: {exc}") from exc
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Interrupted(f"connection closed at {size} of {total} bytes")


def download(url: str, target: Path, expected_md5: str | None = None, policy: RetryPolicy | None = None,
             stream: TextIO | None = None) -> Path:
    """Fetches ``url`` to ``target`` (resuming ``target.part``) and returns ``target``.

    ``target`` exists only if the whole file arrived and matches ``expected_md5`` (when given).
    Without a checksum a partial file is resumed only when the server names its version
    (ETag / Last-Modified), so bytes of two versions are never glued together.
    """
    policy = policy or RetryPolicy()
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    progress = Progress(f"downloading {target.name}", stream)
    started_over = not part.exists()
    attempt = 1
    while True:
        try:
            _transfer(url, part, policy, progress, can_resume_blind=expected_md5 is not None)
        except _Interrupted as exc:
            if attempt >= policy.attempts:
                raise DataSourceError(f"cannot download {url}: {exc} (after {attempt} attempts; rerun to resume "
                                      f"from {part.stat().st_size if part.exists() else 0} bytes)") from exc
            log.warning("download of %s interrupted (%s); retrying in %.1fs (attempt %d of %d)",
                        url, exc, policy.delay(attempt), attempt + 1, policy.attempts)
            time.sleep(policy.delay(attempt))
            attempt += 1
            continue
        progress.finish()
        if expected_md5 and (actual := md5_of(part)) != expected_md5:
            part.unlink()
            _sidecar(part).unlink(missing_ok=True)
            if not started_over:
                log.warning("resumed download of %s has MD5 %s; downloading it again from the start", url, actual)
                started_over = True
                continue
            raise ChecksumMismatchError(f"{url}: MD5 {actual} != expected {expected_md5}; "
                                        "the server sent a different or corrupt file")
        os.replace(part, target)
        _sidecar(part).unlink(missing_ok=True)
        return target
