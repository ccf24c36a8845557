"""Acknowledged means saved: the moto server answers a request only after what it changed is on disk.

moto keeps every resource in memory. The local stack's saved state (``local_runtime/state.py``) is
attached here as a :class:`Journal`; this module wraps the moto server's WSGI application so that
after moto has handled a request, and before a byte of the answer is sent, the journal is told what
the request may have changed (:class:`Change`: the service, the action, for S3 the bucket and key)
and writes it. A change that cannot be written turns the answer into a 500 error naming the cause,
so nothing unsaved is ever acknowledged.

State that changes outside a request (a pipeline execution's worker, a job finishing, a blue/green
deployment ending, an endpoint phase ending when a request reads it) is reported by the code that
changes it: :func:`touch` marks a kind of resource as changed (written at the end of the current
request), :func:`commit` writes it now (from a background thread, outside any lock of moto's).

With no journal attached (moto on its own, or a stack without a run directory) everything here
does nothing. The canary test in tests/local_runtime/moto_ext/test_write_ahead.py fails loudly if a
moto upgrade moves the server pieces used here.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

log = logging.getLogger("local_runtime.state")

# actions that change nothing a saved state holds (reads, and running a function)
_JSON_READS = ("Describe", "List", "Get", "Search", "Test", "BatchDescribe", "BatchGet", "Query", "Scan", "Invoke")
# S3 sub-resources whose change the saved state does not hold (it keeps each object's bytes)
_S3_UNSAVED = {"uploadId", "uploads", "partNumber", "tagging", "acl", "retention", "legal-hold", "restore"}


@dataclass(frozen=True)
class Change:
    """What one handled request may have changed."""
    service: str                 # moto's backend name: s3, sagemaker, events, …
    action: str | None           # the JSON protocol's operation (X-Amz-Target), e.g. UpdateModelPackage
    method: str
    bucket: str | None = None    # S3 only
    key: str | None = None       # S3 only: the object a PUT or DELETE named

    @property
    def reads(self) -> bool:
        if self.method in ("GET", "HEAD", "OPTIONS"):          # REST protocols (S3, Lambda): reads by method
            return True
        return bool(self.action) and self.action.startswith(_JSON_READS)


class Journal(Protocol):
    """What ``local_runtime/state.py`` attaches: writes what a request or a background change touched."""

    def after_request(self, change: Change, touched: set[str]) -> None: ...

    def commit(self, touched: set[str]) -> None: ...


_attached: list[Journal | None] = [None]
_touched: set[str] = set()
_touched_lock = threading.Lock()


def attach(journal: Journal) -> None:
    _attached[0] = journal


def detach(journal: Journal | None = None) -> None:
    if journal is None or _attached[0] is journal:
        _attached[0] = None


def attached() -> Journal | None:
    return _attached[0]


def touch(*kinds: str) -> None:
    """Marks resource kinds as changed outside a request's own action; written before the current answer."""
    if _attached[0] is not None:
        with _touched_lock:
            _touched.update(kinds)


def _take_touched() -> set[str]:
    with _touched_lock:
        taken = set(_touched)
        _touched.clear()
    return taken


def commit(*kinds: str) -> None:
    """Writes these kinds (and anything touched) now: for changes made by background threads."""
    journal = _attached[0]
    if journal is not None:
        journal.commit(set(kinds) | _take_touched())


def _s3_location(environ: dict) -> tuple[str | None, str | None]:
    """Bucket and key of a path-style S3 request (what boto3 sends to an endpoint URL with an IP address)."""
    raw = environ.get("PATH_INFO", "")
    try:
        path = raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        path = raw
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket or None, key or None


def describe(environ: dict, service: str) -> Change:
    method = environ.get("REQUEST_METHOD", "GET").upper()
    target = environ.get("HTTP_X_AMZ_TARGET") or ""
    action = target.rsplit(".", 1)[-1] or None
    if service != "s3":
        if not action and environ.get("PATH_INFO", "").endswith("/invocations"):
            action = "Invoke"                                 # Lambda's REST protocol: runs code, changes nothing saved
        return Change(service, action, method)
    bucket, key = _s3_location(environ)
    query = set(parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    if key and method == "POST" and "uploadId" in query:        # CompleteMultipartUpload: the object appears
        return Change(service, None, method, bucket, key)
    if query & _S3_UNSAVED:                                       # parts, tags, ACLs: not in the saved state
        return Change(service, "unsaved", method, bucket, key)
    return Change(service, None, method, bucket, key)


def _error_response(service: str, message: str) -> tuple[str, list[tuple[str, str]], bytes]:
    if service == "s3":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>"
                f"{_xml_escape(message)}</Message></Error>").encode()
        return "500 Internal Server Error", [("Content-Type", "application/xml")], body
    body = json.dumps({"__type": "InternalFailure", "message": message}).encode()
    return "500 Internal Server Error", [("Content-Type", "application/x-amz-json-1.1"),
                                         ("x-amzn-ErrorType", "InternalFailure")], body


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class DurableApplication:
    """moto's dispatcher, answering only once the journal has written what the request changed."""

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher

    def __call__(self, environ: dict, start_response) -> Any:
        backend_app = self.dispatcher.get_application(environ)
        journal = _attached[0]
        service = getattr(backend_app, "service", None)
        if journal is None or not isinstance(service, str) or service in ("moto_api", "instance_metadata"):
            return backend_app(environ, start_response)
        answered: dict[str, Any] = {}

        def hold(status, headers, exc_info=None):
            answered.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: answered.setdefault("written", []).append(data)

        body = backend_app(environ, hold)
        change = describe(environ, service)
        try:        # also after an error: a refused request may still have touched something
            journal.after_request(change, _take_touched())
        except Exception as exc:     # not saved: not acknowledged
            log.error("could not save the change of %s %s: %s: %s", service, change.action or change.method,
                      type(exc).__name__, exc)
            if hasattr(body, "close"):
                body.close()
            status, headers, payload = _error_response(
                service, f"the local stack could not save this change to its run directory ({type(exc).__name__}: "
                         f"{exc}); it is not acknowledged. Free disk space or fix the run directory, then retry")
            start_response(status, headers + [("Content-Length", str(len(payload)))])
            return [payload]
        write = start_response(answered["status"], answered["headers"], answered.get("exc_info"))
        for data in answered.get("written", []):
            write(data)
        return body


def moto_server(ip_address: str, port: int, wrap=lambda app: app):
    """A ThreadedMotoServer whose application is wrapped by :class:`DurableApplication` (and by ``wrap``, outside
    it, before the first request: the signature check of ``local_runtime/sigv4_gate.py``)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class DurableMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = wrap(DurableApplication(DomainDispatcherApplication(create_backend_app)))
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return DurableMotoServer(ip_address=ip_address, port=port, verbose=False)
