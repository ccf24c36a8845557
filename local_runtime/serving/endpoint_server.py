"""A local SageMaker runtime: ``POST /endpoints/{name}/invocations`` for InService endpoints.

Endpoints, configs and models are read from the (local) SageMaker control plane, so whatever
the deploy Lambda created is what gets served. Also speaks the container contract
(``GET /ping``, ``POST /invocations``) for the default endpoint.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from botocore.exceptions import ClientError

from local_runtime.aws import ACCOUNT_ID
from local_runtime.serving.capture import DataCapture, capture_record
from local_runtime.serving.metrics import EndpointMetrics, invocation_values
from local_runtime.serving.model import ImageClassifier, InvalidImageError
from local_runtime.serving.resolve import model_artifact_uri
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("local_runtime.endpoint")
_timing = threading.local()      # what the current request learned about itself, for its metrics
IMAGE_TYPES = ("image/png", "image/jpeg", "application/x-image")
REFRESH_SECONDS = 2.0


class EndpointNotFoundError(LookupError):
    pass


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
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        variant = config["ProductionVariants"][0]
        model = self._model(sm, variant["ModelName"])
        capture = config.get("DataCaptureConfig")
        loaded = LoadedEndpoint(name, endpoint["EndpointConfigName"], variant["VariantName"], model,
                                capture if capture and capture.get("EnableCapture") else None, time.monotonic())
        self._loaded[name] = loaded
        log.info("endpoint %s serves %s (%s)", name, variant["ModelName"], endpoint["EndpointConfigName"])
        return loaded

    def load_config(self, name: str, config_name: str) -> LoadedEndpoint:
        """The endpoint as it would serve ``config_name`` (a blue/green update's new fleet); loads its model."""
        sm = self.clients.client("sagemaker")
        config = sm.describe_endpoint_config(EndpointConfigName=config_name)
        variant = config["ProductionVariants"][0]
        model = self._model(sm, variant["ModelName"])
        capture = config.get("DataCaptureConfig")
        return LoadedEndpoint(name, config_name, variant["VariantName"], model,
                              capture if capture and capture.get("EnableCapture") else None, time.monotonic())

    def invalidate(self, name: str) -> None:
        """Re-read the endpoint on its next request (its config just changed)."""
        with self._lock:
            self._loaded.pop(name, None)

    def _model(self, sm, model_name: str) -> ImageClassifier:
        uri = model_artifact_uri(sm, model_name)
        if uri not in self._models:
            location = parse_s3_uri(uri)
            target = self.model_root / model_name
            target.mkdir(parents=True, exist_ok=True)
            artifact = target / "model.tar.gz"
            self.clients.client("s3").download_file(location.bucket, location.key, str(artifact))
            self._models[uri] = ImageClassifier.from_artifact(artifact, target / "model")
        return self._models[uri]


class EndpointServer:
    def __init__(self, clients, run_dir: Path, default_endpoint: str, host: str = "127.0.0.1", port: int = 0,
                 capture_flush_seconds: float = 1.0, metrics_flush_seconds: float = 1.0):
        self.registry = EndpointRegistry(clients, Path(run_dir) / "endpoint-models")
        self.capture = DataCapture(clients.client("s3"), capture_flush_seconds)
        self.metrics = EndpointMetrics(clients.client("cloudwatch"), metrics_flush_seconds)
        self.routes: dict = {}     # endpoint -> deployments.Route while a blue/green update shifts traffic
        self.default_endpoint = default_endpoint
        self.account = ACCOUNT_ID
        self.region = clients.region
        server = self

        class Handler(_Handler):
            owner = server

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="endpoint-server", daemon=True)

    def start(self) -> "EndpointServer":
        self.capture.start()
        self.metrics.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.capture.stop()
        self.metrics.stop()

    def invoke(self, endpoint_name: str, body: bytes, content_type: str) -> tuple[int, dict, bytes]:
        """One invocation, with SageMaker's invocation metrics for the variant that answered."""
        started = time.perf_counter()
        _timing.variant, _timing.model_seconds, _timing.status_class = None, None, 2
        reply = self._invoke(endpoint_name, body, content_type)
        if _timing.variant is not None:
            elapsed = time.perf_counter() - started
            model = _timing.model_seconds
            self.metrics.record(endpoint_name, _timing.variant, time.time(), invocation_values(
                _timing.status_class, None if model is None else model * 1e6, (elapsed - (model or 0.0)) * 1e6))
        return reply

    def _invoke(self, endpoint_name: str, body: bytes, content_type: str) -> tuple[int, dict, bytes]:
        """Returns (status, headers, body) for one invocation."""
        try:
            endpoint = self.registry.get(endpoint_name)
        except EndpointNotFoundError:
            return _error(400, "ValidationError", f"Endpoint {endpoint_name} of account {self.account} not found.")
        route = self.routes.get(endpoint_name)
        if route is not None:
            endpoint = route.pick(endpoint)
        _timing.variant = endpoint.variant
        if content_type.split(";")[0].strip() not in IMAGE_TYPES:
            return self._model_error(415, f"content type {content_type!r} is not supported; send image/png or "
                                          "application/x-image", endpoint_name)
        model_started = time.perf_counter()
        try:
            probabilities = endpoint.model.predict_one(body)
        except InvalidImageError as exc:
            return self._model_error(400, str(exc), endpoint_name)
        except Exception as exc:    # the model itself failed: the container answers 500
            log.warning("model of %s failed: %s: %s", endpoint_name, type(exc).__name__, exc)
            return self._model_error(500, f"the model failed on this request ({type(exc).__name__})", endpoint_name)
        finally:
            _timing.model_seconds = time.perf_counter() - model_started
        payload = json.dumps(probabilities)
        if endpoint.capture:
            record = capture_record(body, content_type, payload, "application/json", datetime.now(UTC),
                                    tuple(endpoint.capture.get("CaptureContentTypeHeader", {}).get(
                                        "JsonContentTypes", ["application/json"])))
            self.capture.record(endpoint.capture["DestinationS3Uri"], endpoint_name, endpoint.variant,
                                int(endpoint.capture.get("InitialSamplingPercentage", 100)), record)
        return 200, {"Content-Type": "application/json", "x-Amzn-Invoked-Production-Variant": endpoint.variant}, payload.encode()

    def _model_error(self, original_status: int, message: str, endpoint: str) -> tuple[int, dict, bytes]:
        """What SageMaker answers when the model container rejects a request: HTTP 424 ModelError."""
        _timing.status_class = original_status // 100
        kind = "client" if original_status < 500 else "server"
        body = {"message": f'Received {kind} error ({original_status}) from primary with message "{message}".',
                "OriginalStatusCode": original_status, "OriginalMessage": message,
                "LogStreamArn": f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/Endpoints/{endpoint}"}
        return 424, {"Content-Type": "application/json", "x-amzn-ErrorType": "ModelError"}, json.dumps(body).encode()


def _error(status: int, code: str, message: str) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, json.dumps({"message": message}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True     # keep-alive + Nagle + delayed ACK would add ~40 ms per response
    owner: EndpointServer

    def log_message(self, format, *args):   # keep request lines out of the console
        log.debug(format, *args)

    def _send(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ping":
            try:
                self.owner.registry.get(self.owner.default_endpoint)
                return self._send(200, {"Content-Type": "text/plain"}, b"")
            except EndpointNotFoundError:
                return self._send(503, {"Content-Type": "text/plain"}, b"no model loaded")
        self._send(*_error(404, "UnknownOperationException", f"unknown path {self.path}"))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        content_type = self.headers.get("Content-Type", "")
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "invocations":
            return self._send(*self.owner.invoke(parts[1], body, content_type))
        if parts == ["invocations"]:
            return self._send(*self.owner.invoke(self.owner.default_endpoint, body, content_type))
        self._send(*_error(404, "UnknownOperationException", f"unknown path {self.path}"))
