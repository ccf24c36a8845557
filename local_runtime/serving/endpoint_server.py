"""A local SageMaker runtime: ``POST /endpoints/{name}/invocations`` for InService endpoints.

Endpoints, configs and models are read from the (local) SageMaker control plane, so whatever
the deploy Lambda created is what gets served. Also speaks the container contract
(``GET /ping``, ``POST /invocations``) for the default endpoint.

HTTP is cheroot's WSGI server (CherryPy's: a pool of worker threads, HTTP/1.1 keep-alive, so boto3
reuses its connections as it does with SageMaker's front end); this module is a WSGI application
answering what the SageMaker runtime answers: a body
over 6 MB is a 413 before it is read (from Content-Length, or while a chunked body streams in,
and before ``100 Continue``), anything the model rejects (not an image, too many pixels, wrong
content type) is a ModelError (424) carrying the container's status, a model that cannot be
loaded is a ModelError with status 500, and every error is a JSON document. Every answer
carries an ``x-amzn-RequestId`` and no ``Server`` header, cheroot's own refusals (a malformed
request, header fields over 64 KiB) too. A socket read waits at most the read timeout, and an idle
connection is closed after it.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import NamedTuple

from botocore.exceptions import BotoCoreError, ClientError
from cheroot import server as cheroot_server
from cheroot import wsgi as cheroot_wsgi
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request, Response

from local_runtime.aws import ACCOUNT_ID
from local_runtime.errors import LocalRuntimeError
from local_runtime.moto_ext import endpoint_lifecycle
from local_runtime.serving.capture import DataCapture
from local_runtime.serving.container_logs import ContainerLogs, log_group, log_group_arn
from local_runtime.serving.metrics import EndpointMetrics, invocation_values
from local_runtime.serving.model import ImageClassifier, InvalidImageError, ModelArtifactError
from local_runtime.serving.resolve import model_artifact_uri
from local_runtime.sigv4_gate import RuntimeSignatures
from scones_common.contracts.capture import capture_record
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("local_runtime.endpoint")
IMAGE_TYPES = ("image/png", "image/jpeg", "application/x-image")
REFRESH_SECONDS = 2.0
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024   # InvokeEndpoint's Body maximum in the sagemaker-runtime service model
PAYLOAD_TOO_LARGE = f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes."   # the runtime front end's words
READ_TIMEOUT_SECONDS = 60.0
ACCEPT_BACKLOG = 1024          # connections the kernel queues before the server accepts them (a burst of 200)
WORKER_THREADS = 8             # requests answered at once; idle keep-alive connections wait without a thread
MAX_HEADER_BYTES = 64 * 1024   # request line and header fields; more is a 431
_READ_BYTES = 65536    # a body is read in parts: each read allocates what it asks for


class EndpointNotFoundError(LocalRuntimeError, LookupError):
    pass


class ModelLoadError(LocalRuntimeError, RuntimeError):
    """The model behind an endpoint's variant cannot be loaded (missing or unusable artifact)."""

    def __init__(self, variant: str, message: str):
        super().__init__(message)
        self.variant = variant


class Reply(NamedTuple):
    status: int
    headers: dict
    body: bytes


class _Answer(NamedTuple):
    reply: Reply
    variant: str | None = None            # the variant that answered; None when no model was reached
    model_seconds: float | None = None
    model_status: int = 200               # the container's own status: 2xx, 4xx or 5xx for the metrics


@dataclass
class LoadedEndpoint:
    name: str
    config_name: str
    variant: str
    model: ImageClassifier
    capture: dict | None
    checked: float


class EndpointRegistry:
    """Loads the model behind an endpoint once per endpoint config; re-checks the config every few seconds."""

    def __init__(self, clients, model_root: Path):
        self.clients = clients
        self.model_root = model_root
        self._loaded: dict[str, LoadedEndpoint] = {}
        self._models: dict[str, ImageClassifier] = {}
        self._lock = threading.Lock()
        self._models_lock = threading.Lock()

    def get(self, name: str) -> LoadedEndpoint:
        loaded = self._loaded.get(name)
        if loaded and time.monotonic() - loaded.checked < REFRESH_SECONDS:
            return loaded
        with self._lock:
            return self._refresh(name, self._loaded.get(name))

    def _refresh(self, name: str, loaded: LoadedEndpoint | None) -> LoadedEndpoint:
        sm = self.clients.client("sagemaker")
        try:
            endpoint = sm.describe_endpoint(EndpointName=name)
        except ClientError:
            self._loaded.pop(name, None)
            raise EndpointNotFoundError(name) from None
        if endpoint["EndpointStatus"] not in ("InService", "Updating"):
            raise EndpointNotFoundError(name)
        if loaded and loaded.config_name == endpoint["EndpointConfigName"]:
            loaded.checked = time.monotonic()
            return loaded
        loaded = self.load_config(name, endpoint["EndpointConfigName"])
        self._loaded[name] = loaded
        log.info("endpoint %s serves %s", name, endpoint["EndpointConfigName"])
        return loaded

    def load_config(self, name: str, config_name: str) -> LoadedEndpoint:
        """The endpoint as it serves ``config_name`` (also a blue/green update's new fleet, or a health check);
        loads its model, or raises ModelLoadError naming the variant."""
        sm = self.clients.client("sagemaker")
        config = sm.describe_endpoint_config(EndpointConfigName=config_name)
        variant = config["ProductionVariants"][0]
        try:
            model = self._model(sm, variant["ModelName"])
        except ModelArtifactError as exc:
            raise ModelLoadError(variant["VariantName"], str(exc)) from None
        capture = config.get("DataCaptureConfig")
        return LoadedEndpoint(name, config_name, variant["VariantName"], model,
                              capture if capture and capture.get("EnableCapture") else None, time.monotonic())

    def invalidate(self, name: str) -> None:
        """Re-read the endpoint on its next request (its config just changed)."""
        with self._lock:
            self._loaded.pop(name, None)

    def forget(self, name: str) -> None:
        """Like :meth:`invalidate` but without the lock: called from inside control-plane calls (the endpoint was
        deleted or switched configs), which a refresh holding the lock may be waiting on."""
        self._loaded.pop(name, None)

    def _model(self, sm, model_name: str) -> ImageClassifier:
        """Not cached when loading fails: once the artifact is fixed, the next request loads it."""
        try:
            uri = model_artifact_uri(sm, model_name)
        except (ClientError, LookupError, KeyError, IndexError) as exc:
            raise ModelArtifactError(f"model {model_name} names no usable model artifact ({exc})") from None
        with self._models_lock:     # not the endpoint lock: a health check loads models inside a control-plane call
            return self._load(uri, model_name)

    def _load(self, uri: str, model_name: str) -> ImageClassifier:
        if uri not in self._models:
            location = parse_s3_uri(uri)
            target = self.model_root / model_name
            target.mkdir(parents=True, exist_ok=True)
            artifact = target / "model.tar.gz"
            try:
                self.clients.client("s3").download_file(location.bucket, location.key, str(artifact))
            except (ClientError, BotoCoreError) as exc:
                raise ModelArtifactError(f"model artifact {uri} cannot be downloaded ({exc})") from None
            try:
                self._models[uri] = ImageClassifier.from_artifact(artifact, target / "model")
            except ModelArtifactError as exc:
                raise ModelArtifactError(f"{exc} (from {uri})") from None
        return self._models[uri]


class EndpointServer:
    def __init__(self, clients, run_dir: Path, default_endpoint: str, host: str = "127.0.0.1", port: int = 0,
                 capture_flush_seconds: float = 1.0, read_timeout_seconds: float = READ_TIMEOUT_SECONDS,
                 metrics_flush_seconds: float = 1.0):
        self.registry = EndpointRegistry(clients, Path(run_dir) / "endpoint-models")
        self.capture = DataCapture(clients.client("s3"), capture_flush_seconds)
        self.container_logs = ContainerLogs(clients)
        self.metrics = EndpointMetrics(clients.client("cloudwatch"), metrics_flush_seconds)
        self.routes: dict = {}     # endpoint -> deployments.Route while a blue/green update shifts traffic
        self.default_endpoint = default_endpoint
        self.account = ACCOUNT_ID
        self.region = clients.region
        self.read_timeout = read_timeout_seconds
        self.signatures = RuntimeSignatures(clients)      # only requests signed with the stack's key are served
        self.httpd = _Server((host, port), self.wsgi_app, numthreads=WORKER_THREADS,
                             request_queue_size=ACCEPT_BACKLOG, timeout=read_timeout_seconds)
        self.url: str | None = None
        self._thread = threading.Thread(target=self._serve, name="endpoint-server", daemon=True)
        self._prepared = threading.Event()
        self._failure: BaseException | None = None

    def _serve(self) -> None:
        """Binds and serves on this daemon thread: the workers it starts are daemons too (threads inherit it), so
        a process that ends without :meth:`stop` is not held up by them."""
        try:
            self.httpd.prepare()
        except BaseException as exc:    # e.g. the port was taken meanwhile: raised by start()
            self._failure = exc
            return
        finally:
            self._prepared.set()
        self.httpd.serve()

    def health_check(self, endpoint_name: str, config_name: str) -> str | None:
        """SageMaker's FailureReason when ``config_name``'s model would not pass /ping here, else None."""
        try:
            self.registry.load_config(endpoint_name, config_name)
        except Exception as exc:     # any reason the model does not load is a failed /ping
            variant = exc.variant if isinstance(exc, ModelLoadError) else "AllTraffic"
            return (f"The primary container for production variant {variant} did not pass the ping health check "
                    f"({type(exc).__name__}: {exc}). Please check CloudWatch logs for this endpoint.")
        return None

    def start(self) -> "EndpointServer":
        endpoint_lifecycle.add_health_check(self.health_check)
        endpoint_lifecycle.add_change_listener(self.registry.forget)     # a deleted endpoint stops answering at once
        self.capture.start()
        self.metrics.start()
        self._thread.start()
        self._prepared.wait()
        if self._failure is not None:
            raise self._failure
        host, port = self.httpd.bind_addr[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        endpoint_lifecycle.remove_health_check(self.health_check)
        endpoint_lifecycle.remove_change_listener(self.registry.forget)
        self.httpd.stop()
        self.capture.stop()
        self.metrics.stop()

    def wsgi_app(self, environ, start_response):
        request = Request(environ)
        try:
            reply = self._route(request)
        except _Refused as refused:
            reply = refused.reply
        except Exception:    # a bug must still be answered, never a dropped connection
            log.exception("endpoint request %s failed", request.path)
            reply = error_reply(500, "InternalFailure", "An internal failure occurred.")
        return Response(reply.body, reply.status, {**reply.headers, "x-amzn-RequestId": str(uuid.uuid4())})(
            environ, start_response)

    def _route(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and parts == ["ping"]:
            return self._signed(request, b"") or self._ping()
        if request.method == "POST" and len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "invocations":
            body = self._body(request)
            return self._signed(request, body) or self.invoke(parts[1], body, request.headers.get("Content-Type", ""))
        if request.method == "POST" and parts == ["invocations"]:
            body = self._body(request)
            return self._signed(request, body) or self.invoke(self.default_endpoint, body,
                                                              request.headers.get("Content-Type", ""))
        return error_reply(404, "UnknownOperationException", f"unknown operation {request.method} {request.path}")

    def _signed(self, request: Request, body: bytes) -> Reply | None:
        """None when the request is signed with the stack's key (sigv4_gate.py), else the runtime's refusal."""
        refused = self.signatures.refused(request.environ, body)
        return Reply(*refused) if refused else None

    def _body(self, request: Request) -> bytes:
        """The body. Over the limit is a 413: from the declared length before anything is read, or as soon as a
        chunked body streams past it (werkzeug's own ``max_content_length`` would cut that one short silently)."""
        if (request.content_length or 0) > MAX_PAYLOAD_BYTES:
            raise _Refused(error_reply(413, None, PAYLOAD_TOO_LARGE))
        parts, size = [], 0
        try:
            while size <= MAX_PAYLOAD_BYTES:
                part = request.stream.read(min(_READ_BYTES, MAX_PAYLOAD_BYTES + 1 - size))
                if not part:
                    break
                parts.append(part)
                size += len(part)
        except (ClientDisconnected, OSError, ValueError) as exc:     # ended early, malformed chunks, or stopped arriving
            late = isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)
            raise _Refused(error_reply(408 if late else 400, None, "the request body did not arrive in full" + (
                f" within {self.read_timeout:g} s" if late else ""))) from None
        if size > MAX_PAYLOAD_BYTES:
            raise _Refused(error_reply(413, None, PAYLOAD_TOO_LARGE))
        return b"".join(parts)

    def _ping(self) -> Reply:
        try:
            self.registry.get(self.default_endpoint)
            return Reply(200, {"Content-Type": "text/plain"}, b"")
        except (EndpointNotFoundError, ModelLoadError):
            return Reply(503, {"Content-Type": "text/plain"}, b"no model loaded")

    def invoke(self, endpoint_name: str, body: bytes, content_type: str) -> Reply:
        """The answer to one invocation, with SageMaker's invocation metrics for the variant that answered."""
        started = time.perf_counter()
        answer = self._answer(endpoint_name, body, content_type)
        if answer.variant is not None:
            model = answer.model_seconds
            self.metrics.record(endpoint_name, answer.variant, time.time(), invocation_values(
                answer.model_status // 100, None if model is None else model * 1e6,
                (time.perf_counter() - started - (model or 0.0)) * 1e6))
        return answer.reply

    def _answer(self, endpoint_name: str, body: bytes, content_type: str) -> _Answer:
        try:
            endpoint = self.registry.get(endpoint_name)
        except EndpointNotFoundError:
            return _Answer(error_reply(400, "ValidationError",
                                       f"Endpoint {endpoint_name} of account {self.account} not found."))
        except ModelLoadError as exc:
            return self._model_error(500, f"the model could not be loaded: {exc}", endpoint_name, exc.variant)
        route = self.routes.get(endpoint_name)
        if route is not None:
            endpoint = route.pick(endpoint)
        if content_type.split(";")[0].strip() not in IMAGE_TYPES:
            return self._model_error(415, f"content type {content_type!r} is not supported; send image/png or "
                                          "application/x-image", endpoint_name, endpoint.variant)
        model_started = time.perf_counter()
        try:
            probabilities = endpoint.model.predict_one(body)
        except InvalidImageError as exc:
            return self._model_error(400, str(exc), endpoint_name, endpoint.variant, time.perf_counter() - model_started)
        except Exception as exc:     # the model itself failed: a container's 500, still a ModelError
            log.debug("inference on endpoint %s failed: %s: %s", endpoint_name, type(exc).__name__, exc)   # in its log group
            return self._model_error(500, f"inference failed ({type(exc).__name__}: {exc})", endpoint_name,
                                     endpoint.variant, time.perf_counter() - model_started)
        model_seconds = time.perf_counter() - model_started
        payload = json.dumps(probabilities)
        if endpoint.capture:
            record = partial(capture_record, body, content_type, payload, "application/json", datetime.now(UTC),
                             tuple(endpoint.capture.get("CaptureContentTypeHeader", {}).get(
                                 "JsonContentTypes", ["application/json"])))
            self.capture.record(endpoint.capture["DestinationS3Uri"], endpoint_name, endpoint.variant,
                                int(endpoint.capture.get("InitialSamplingPercentage", 100)), record)
        reply = Reply(200, {"Content-Type": "application/json", "x-Amzn-Invoked-Production-Variant": endpoint.variant},
                      payload.encode())
        return _Answer(reply, endpoint.variant, model_seconds)

    def _model_error(self, original_status: int, message: str, endpoint: str, variant: str,
                     model_seconds: float | None = None) -> _Answer:
        """What SageMaker answers when the model container fails a request: HTTP 424 ModelError, with the
        members of botocore's ModelError shape; the container's message also goes to the endpoint's log group."""
        self.container_logs.write(endpoint, variant, f"{original_status} {message}")
        kind = "client" if original_status < 500 else "server"
        region, group = self.region, log_group(endpoint)
        text = (f'Received {kind} error ({original_status}) from primary with message "{message}". '
                f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
                f"group={group} in account {self.account} for more information.")
        body = {"Message": text, "OriginalStatusCode": original_status, "OriginalMessage": message,
                "LogStreamArn": log_group_arn(region, self.account, endpoint)}
        reply = Reply(424, {"Content-Type": "application/json", "x-amzn-ErrorType": "ModelError"},
                      json.dumps(body).encode())
        return _Answer(reply, variant, model_seconds, original_status)


def error_reply(status: int, code: str | None, message: str) -> Reply:
    """A JSON error document; without ``code`` botocore names the error by the HTTP status, as for a 413."""
    headers = {"Content-Type": "application/json"}
    if code:
        headers["x-amzn-ErrorType"] = code
    return Reply(status, headers, json.dumps({"Message": message}).encode())


class _Refused(Exception):
    """A request answered before it reaches the model, and before its body was read in full: the connection
    closes after the answer."""

    def __init__(self, reply: Reply):
        super().__init__(reply.status)
        self.reply = reply._replace(headers={**reply.headers, "Connection": "close"})


class _Fields(list):
    """An answer's header fields, less the ``Server`` field cheroot adds: the runtime's answers carry none."""

    def append(self, field: tuple[bytes, bytes]) -> None:
        if field[0].lower() != b"server":
            super().append(field)


class _HeaderReader(cheroot_server.HeaderReader):
    """cheroot's, except that a body declared over the limit is not invited: cheroot answers ``Expect:
    100-continue`` as soon as the header fields are read, and the application refuses that body with a 413."""

    def __call__(self, rfile, hdict=None):
        hdict = super().__call__(rfile, hdict)
        length = hdict.get(b"Content-Length", b"").strip()
        if length.isdigit() and int(length) > MAX_PAYLOAD_BYTES:
            hdict.pop(b"Expect", None)
        return hdict


class _Request(cheroot_server.HTTPRequest):
    """cheroot's request, answering its own refusals as the runtime does."""
    header_reader = _HeaderReader()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outheaders = _Fields()

    def simple_response(self, status, msg=""):
        """cheroot's own refusals (a malformed request line or header field, a timeout, header fields over
        :data:`MAX_HEADER_BYTES`: its 413, since bodies are the application's to limit) as JSON error documents
        with a request id; the connection closes after each. A connection that sent nothing within the read
        timeout is closed without an answer."""
        code = int(str(status)[:3])
        self.close_connection = True
        if code == HTTPStatus.REQUEST_TIMEOUT and not self.started_request:
            return
        code = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE if code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE else code
        reply = error_reply(code, None, str(msg) or HTTPStatus(code).phrase)
        self.status = f"{code} {HTTPStatus(code).phrase}".encode()
        self.outheaders = _Fields((name.encode(), value.encode()) for name, value in (
            *reply.headers.items(), ("Content-Length", str(len(reply.body))), ("x-amzn-RequestId", str(uuid.uuid4()))))
        self.ensure_headers_sent()
        self.write(reply.body)

    def send_headers(self):
        """An answer sent with ``Connection: close`` (a body refused before it was read in full) closes the
        connection; cheroot would otherwise read the rest of that body first."""
        if (b"Connection", b"close") in self.outheaders:
            self.close_connection = True
        super().send_headers()


class _Connection(cheroot_server.HTTPConnection):
    RequestHandlerClass = _Request


class _Server(cheroot_wsgi.Server):
    """cheroot's WSGI server with the runtime's refusals; what it logs goes to the endpoint's log."""
    ConnectionClass = _Connection
    max_request_header_size = MAX_HEADER_BYTES

    def error_log(self, msg="", level=logging.INFO, traceback=False):
        log.log(level if level >= logging.WARNING else logging.DEBUG, "%s", msg, exc_info=traceback)
