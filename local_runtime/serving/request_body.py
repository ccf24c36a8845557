"""Reading an HTTP request within limits, so no client can hold a handler thread or memory.

Two limits, as the SageMaker runtime's front end has them: a payload cap (InvokeEndpoint's
``Body`` is at most 6 MB) checked against the declared length before anything is read, and a
read deadline: a request must arrive in full within ``timeout`` seconds of its first byte, and a
connection idle that long is closed. A per-``recv`` timeout alone would not do: a client that
trickles one byte just inside it keeps the thread forever.
"""
from __future__ import annotations

import io
import re
import socket
import time
from email.message import Message
from http.client import HTTPMessage

from local_runtime.errors import LocalRuntimeError

MAX_HEADER_LINE_BYTES = 65536     # http.server's limits, kept
MAX_HEADER_FIELDS = 100
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")    # RFC 9110's token
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_DRAIN_CHUNK = 65536


class RequestBodyError(LocalRuntimeError):
    """The request's framing is unusable; ``status`` is the HTTP answer."""

    status = 400


class HeaderFieldsTooLargeError(RequestBodyError):
    status = 431


class PayloadTooLargeError(RequestBodyError):
    status = 413


class UnsupportedTransferEncodingError(RequestBodyError):
    status = 501


class ClientGoneError(LocalRuntimeError):
    """The client closed the connection before sending the whole body: there is nobody to answer."""


class DeadlineReader(io.RawIOBase):
    """Socket reads bounded by the current request's deadline (see the module docstring)."""

    def __init__(self, sock: socket.socket, timeout: float):
        super().__init__()
        self.sock = sock
        self.timeout = timeout
        self.deadline: float | None = None
        self.expired = False      # a started request ran out of time (an idle connection timing out is not that)

    def next_request(self) -> None:
        """The previous request is answered: wait up to ``timeout`` for the next one to start."""
        self.deadline = None
        self.expired = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.deadline is None:
            self.sock.settimeout(self.timeout)
        else:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.expired = True
                raise TimeoutError(f"the request did not arrive within {self.timeout:g} s")
            self.sock.settimeout(remaining)
        try:
            count = self.sock.recv_into(buffer)
        except TimeoutError:
            self.expired = self.deadline is not None
            raise
        if self.deadline is None and count:
            self.deadline = time.monotonic() + self.timeout
        return count


def read_header_fields(rfile: io.BufferedIOBase) -> HTTPMessage:
    """The header fields after the request line, as ``http.client.parse_headers`` returns them.

    Read line by line rather than through ``email.parser``, which took ~50 µs of an invocation's
    ~1.4 ms. Stricter where RFC 9112 allows a server to be: a line that is not ``name: value``
    (whitespace before the colon, obsolete line folding) is a 400; too long or too many is a 431.
    """
    fields = HTTPMessage()
    while True:
        line = rfile.readline(MAX_HEADER_LINE_BYTES + 1)
        if len(line) > MAX_HEADER_LINE_BYTES:
            raise HeaderFieldsTooLargeError(f"a header line is longer than {MAX_HEADER_LINE_BYTES} bytes")
        if line in (b"\r\n", b"\n", b""):
            return fields
        if len(fields) == MAX_HEADER_FIELDS:
            raise HeaderFieldsTooLargeError(f"more than {MAX_HEADER_FIELDS} header fields")
        name, colon, value = line.partition(b":")
        value = value.strip(b" \t\r\n")
        if not colon or not _FIELD_NAME.fullmatch(name) or b"\r" in value or b"\0" in value:
            raise RequestBodyError(f"malformed header line {line[:100].decode('iso-8859-1')!r}: send "
                                   "'Name: value' lines without folding, bare CR or NUL (RFC 9112)")
        fields[name.decode("ascii")] = value.decode("iso-8859-1")


def read_body(rfile: io.BufferedIOBase, headers: Message, limit: int) -> bytes:
    """The request body, by ``Content-Length`` or chunked; raises :class:`RequestBodyError` subclasses,
    :class:`ClientGoneError`, or ``TimeoutError`` from a :class:`DeadlineReader`."""
    encoding = headers.get("Transfer-Encoding")
    if encoding is not None:
        if encoding.strip().lower() != "chunked":
            raise UnsupportedTransferEncodingError(f"Transfer-Encoding {encoding!r} is not supported; "
                                                   "send Content-Length or chunked")
        if headers.get("Content-Length") is not None:
            raise RequestBodyError("a request must not carry both Content-Length and Transfer-Encoding")
        return _read_chunked(rfile, limit)
    length = declared_length(headers)
    if length > limit:
        raise PayloadTooLargeError(payload_too_large_message(limit))
    return _read_exactly(rfile, length)


def declared_length(headers: Message) -> int:
    """``Content-Length`` as a non-negative integer (0 when absent); anything else is a 400."""
    values = headers.get_all("Content-Length") or []
    if not values:
        return 0
    if len(set(v.strip() for v in values)) > 1:
        raise RequestBodyError(f"conflicting Content-Length headers: {', '.join(values)}")
    value = values[0].strip()
    if not _DIGITS.fullmatch(value):
        raise RequestBodyError(f"Content-Length {value!r} is not a non-negative integer")
    return int(value)


def payload_too_large_message(limit: int) -> str:
    """The SageMaker runtime front end's wording for an oversize invocation body."""
    return f"HTTP content length exceeded {limit} bytes."


def drain(rfile: io.BufferedIOBase, length: int, limit: int) -> None:
    """Reads and drops up to ``min(length, limit)`` bytes, so a client still sending its body
    reads our answer instead of a connection reset; stops at the read deadline."""
    remaining = min(length, limit)
    try:
        while remaining > 0:
            chunk = rfile.read1(min(_DRAIN_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
    except OSError:    # TimeoutError and resets alike: the answer is already sent
        return


def _read_exactly(rfile: io.BufferedIOBase, length: int) -> bytes:
    data = rfile.read(length) if length else b""
    if len(data) < length:
        raise ClientGoneError(f"connection closed after {len(data)} of {length} body bytes")
    return data


def _read_chunked(rfile: io.BufferedIOBase, limit: int) -> bytes:
    parts, total = [], 0
    while True:
        line = rfile.readline(1024)
        if not line:
            raise ClientGoneError("connection closed inside a chunked body")
        size_text = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not _HEX.fullmatch(size_text):
            raise RequestBodyError("malformed chunk size line in a chunked body")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            raise PayloadTooLargeError(payload_too_large_message(limit))
        parts.append(_read_exactly(rfile, size))
        if rfile.readline(3).strip():
            raise RequestBodyError("a chunk is longer than its declared size")
    while rfile.readline(65537).strip():   # trailer fields, ignored
        pass
    return b"".join(parts)
