"""A local SageMaker runtime: ``POST /endpoints/{name}/invocations`` for InService endpoints.

Endpoints, configs and models are read from the (local) SageMaker control plane, so whatever
the deploy Lambda created is what gets served. Also speaks the container contract
(``GET /ping``, ``POST /invocations``) for the default endpoint.

Bad requests get what the SageMaker runtime answers and never cost the server a thread: a body
over 6 MB is a 413 before it is read, a request must arrive within the read timeout, anything
the model rejects (not an image, too many pixels, wrong content type) is a ModelError (424)
carrying the container's status, a model that cannot be loaded is a ModelError with status
500, and every answer is a JSON error document.
"""
from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from local_runtime.aws import ACCOUNT_ID
from local_runtime.errors import LocalRuntimeError
from local_runtime.moto_ext import endpoint_lifecycle
from local_runtime.serving.capture import DataCapture
from local_runtime.serving.container_logs import ContainerLogs, log_group, log_group_arn
from local_runtime.serving.metrics import EndpointMetrics, invocation_values
from local_runtime.serving.model import ImageClassifier, InvalidImageError, ModelArtifactError
from local_runtime.serving.request_body import (
    MAX_HEADER_LINE_BYTES,
    ClientGoneError,
    DeadlineReader,
    PayloadTooLargeError,
    RequestBodyError,
    declared_length,
    drain,
    payload_too_large_message,
    read_body,
    read_header_fields,
)
from local_runtime.serving.resolve import model_artifact_uri
from scones_common.contracts.capture import capture_record
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("local_runtime.endpoint")
IMAGE_TYPES = ("image/png", "image/jpeg", "application/x-image")
REFRESH_SECONDS = 2.0
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024   # InvokeEndpoint's Body maximum in the sagemaker-runtime service model
READ_TIMEOUT_SECONDS = 60.0
DRAIN_LIMIT_BYTES = 4 * MAX_PAYLOAD_BYTES
LINGER_SECONDS = 1.0
_HTTP_VERSION = re.compile(r"HTTP/([0-9]{1,10})\.([0-9]{1,10})")


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
        server = self

        class Handler(_Handler):
            owner = server
            read_timeout = read_timeout_seconds

        self.httpd = _QuietServer((host, port), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="endpoint-server", daemon=True)

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
        self.capture.start()
        self.metrics.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        endpoint_lifecycle.remove_health_check(self.health_check)
        self.httpd.shutdown()
        self.httpd.server_close()
        self.capture.stop()
        self.metrics.stop()

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


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A connection that fails mid-request is the client's business: no traceback on the console."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def shutdown_request(self, request):
        """Lingering close: after our last answer, read (and drop) what the client still sends for a moment,
        so closing with unread input does not reset the connection and destroy that answer in flight."""
        try:
            request.shutdown(socket.SHUT_WR)
            request.settimeout(LINGER_SECONDS)
            deadline = time.monotonic() + LINGER_SECONDS
            while time.monotonic() < deadline and request.recv(65536):
                pass
        except OSError:
            pass
        self.close_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"   # answer even a garbled request line with a full HTTP response
    disable_nagle_algorithm = True     # keep-alive + Nagle + delayed ACK would add ~40 ms per response
    wbufsize = 65536                   # head and body leave in one send (_send flushes)
    owner: EndpointServer
    read_timeout: float

    def setup(self):
        super().setup()
        self._reader = DeadlineReader(self.connection, self.read_timeout)
        socket_file, self.rfile = self.rfile, io.BufferedReader(self._reader, 65536)
        socket_file.close()

    def handle_one_request(self):
        self._reader.next_request()
        self.command, self.requestline, self.request_version = None, "", self.default_request_version
        super().handle_one_request()     # drops the connection silently on a timeout while reading the head
        if self._reader.expired:          # a request had started: say why it is dropped
            self._answer_timeout()

    def parse_request(self) -> bool:
        """http.server's parse_request with :func:`read_header_fields` in place of ``email.parser``.

        The same answers for what a client sends, except: HTTP/0.9 (a two-word request line or that
        version) is refused; one empty line before the request line is skipped (RFC 9112 §2.2);
        header errors come from :func:`read_header_fields`."""
        self.close_connection = True
        if self.raw_requestline in (b"\r\n", b"\n"):
            self.raw_requestline = self.rfile.readline(MAX_HEADER_LINE_BYTES + 1)
            if len(self.raw_requestline) > MAX_HEADER_LINE_BYTES:
                self.send_error(414, f"the request line is longer than {MAX_HEADER_LINE_BYTES} bytes")
                return False
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            return False
        if len(words) != 3:
            self.send_error(400, f"Bad request syntax ({self.requestline!r})")
            return False
        command, path, version = words
        match = _HTTP_VERSION.fullmatch(version)
        if not match:
            self.send_error(400, f"Bad request version ({version!r})")
            return False
        version_number = int(match[1]), int(match[2])
        if not (1, 0) <= version_number < (2, 0):
            self.send_error(505, f"HTTP version {version[5:]} is not supported; use HTTP/1.1")
            return False
        self.command, self.path, self.request_version = command, path, version
        self.close_connection = version_number < (1, 1)
        try:
            self.headers = read_header_fields(self.rfile)
        except RequestBodyError as exc:
            self.send_error(exc.status, str(exc))
            return False
        connection = self.headers.get("Connection", "").lower()
        if connection in ("close", "keep-alive"):
            self.close_connection = connection == "close"
        if self.headers.get("Expect", "").lower() == "100-continue" and version_number >= (1, 1):
            return self.handle_expect_100()
        return True

    def send_response(self, code, message=None):
        """http.server's, without its ``Server: BaseHTTP/…`` header: the runtime's answers carry none."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def log_message(self, format, *args):   # keep request lines out of the console
        log.debug(format, *args)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (bad request line, unsupported method, oversize headers) as JSON."""
        self.close_connection = True
        try:
            self._send(error_reply(code, None, message or self.responses.get(code, ("error",))[0]))
        except OSError:
            pass

    def _send(self, reply: Reply) -> None:
        self.connection.settimeout(self.read_timeout)   # the read deadline may have left almost nothing
        self.send_response(reply.status)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))   # botocore's ResponseMetadata.RequestId, as on AWS
        for key, value in reply.headers.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":     # an answer to HEAD has no body (RFC 9110 §9.3.2)
            self.wfile.write(reply.body)
        self.wfile.flush()

    def _answer_timeout(self) -> None:
        self._reader.expired = False
        self.close_connection = True
        try:
            self._send(error_reply(408, None, f"the request did not arrive within {self.read_timeout:g} s"))
        except OSError:
            pass

    def do_GET(self):
        if self.headers.get("Content-Length") not in (None, "0") or self.headers.get("Transfer-Encoding"):
            self.close_connection = True     # a body we do not read must not be taken for the next request
        if self.path != "/ping":
            return self._send(error_reply(404, "UnknownOperationException", f"unknown path {self.path}"))
        try:
            self.owner.registry.get(self.owner.default_endpoint)
            reply = Reply(200, {"Content-Type": "text/plain"}, b"")
        except (EndpointNotFoundError, ModelLoadError):
            reply = Reply(503, {"Content-Type": "text/plain"}, b"no model loaded")
        except Exception:
            log.exception("endpoint ping failed")
            reply = error_reply(500, "InternalFailure", "An internal failure occurred.")
        self._send(reply)

    def do_POST(self):
        try:
            body = read_body(self.rfile, self.headers, MAX_PAYLOAD_BYTES)
        except PayloadTooLargeError:
            return self._refuse_oversize()
        except RequestBodyError as exc:
            self.close_connection = True
            return self._send(error_reply(exc.status, None, str(exc)))
        except TimeoutError:
            return self._answer_timeout()
        except (ClientGoneError, ConnectionError):
            self.close_connection = True
            return
        try:
            reply = self._route(body, self.headers.get("Content-Type", ""))
        except Exception:    # a bug must still be answered, never a dropped connection
            log.exception("endpoint request %s failed", self.path)
            reply = error_reply(500, "InternalFailure", "An internal failure occurred.")
        self._send(reply)

    def _route(self, body: bytes, content_type: str) -> Reply:
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "invocations":
            return self.owner.invoke(parts[1], body, content_type)
        if parts == ["invocations"]:
            return self.owner.invoke(self.owner.default_endpoint, body, content_type)
        return error_reply(404, "UnknownOperationException", f"unknown path {self.path}")

    def _refuse_oversize(self) -> None:
        """Answers 413 like the runtime's front end, then reads and drops what the client is still sending
        (bounded), so it gets the answer rather than a reset."""
        self.close_connection = True
        self._send(error_reply(413, None, payload_too_large_message(MAX_PAYLOAD_BYTES)))
        try:
            length = declared_length(self.headers)
        except RequestBodyError:
            return
        drain(self.rfile, length, DRAIN_LIMIT_BYTES)

    def handle_expect_100(self):
        """Refuse an oversize body before the client sends it (``Expect: 100-continue``)."""
        try:
            too_large = declared_length(self.headers) > MAX_PAYLOAD_BYTES
        except RequestBodyError:
            too_large = False    # do_POST answers the bad header
        if too_large:
            self.close_connection = True
            self._send(error_reply(413, None, payload_too_large_message(MAX_PAYLOAD_BYTES)))
            return False
        accepted = super().handle_expect_100()
        self.wfile.flush()     # the client waits for this "100 Continue" before it sends the body
        return accepted
