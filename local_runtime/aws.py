"""Local AWS APIs: a moto server on loopback that plain boto3 code reaches via AWS_ENDPOINT_URL.

Nothing in the project's product code knows it is talking to moto: this module only sets the
standard endpoint and credential environment variables that boto3 reads. The runtime's own
clients (:meth:`LocalAws.client`) name the endpoints explicitly, so they work whether or not
the process environment points at the server.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
from botocore.config import Config

from local_runtime.aws_env import ACCOUNT_ID as ACCOUNT_ID  # re-exported: the account of the local AWS
from local_runtime.aws_env import applied_environment
from local_runtime.errors import LocalRuntimeError

LOOPBACK = "127.0.0.1"
_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}
_RUNTIME_SERVICE = "sagemaker-runtime"


class PortInUseError(LocalRuntimeError, OSError):
    """A port asked for on the command line is taken by another program."""


def free_port(wanted: int | None = None) -> int:
    """``wanted`` if it is free (else a named error), or any free loopback port."""
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, wanted or 0))
        except OSError as exc:
            raise PortInUseError(f"{LOOPBACK}:{wanted} is in use ({exc.strerror}); choose another port") from None
        return sock.getsockname()[1]


_CLIENTS: dict[tuple[str, str, str], object] = {}
_CLIENTS_LOCK = threading.Lock()


@dataclass
class LocalAws:
    url: str
    region: str
    runtime_url: str | None = None

    def client(self, service: str):
        """One client per service and local AWS, shared: boto3 clients are thread-safe, creating them is not
        (the default session, and the environment that in-process Lambdas change), and it costs ~20 ms."""
        endpoint = self.runtime_url if service == _RUNTIME_SERVICE and self.runtime_url else self.url
        key = (service, endpoint, self.region)
        with _CLIENTS_LOCK:
            if key not in _CLIENTS:
                _CLIENTS[key] = boto3.client(service, region_name=self.region, endpoint_url=endpoint,
                                             aws_access_key_id=_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                             aws_secret_access_key=_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                             aws_session_token=_CREDENTIALS["AWS_SESSION_TOKEN"],
                                             config=Config(retries={"max_attempts": 2}))
            return _CLIENTS[key]

    def environment(self) -> dict[str, str]:
        """What points unmodified boto3 code (Lambdas, CLIs) at these local APIs; MOTO_PORT is how moto's
        Step Functions interpreter reaches the Lambda API of its own server."""
        variables = {**_CREDENTIALS, "AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": self.region,
                     "AWS_REGION": self.region, "MOTO_PORT": self.url.rsplit(":", 1)[1]}
        if self.runtime_url:
            variables["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = self.runtime_url
        return variables


def _moto_api(url: str, path: str, payload: dict | None = None) -> None:
    request = urllib.request.Request(f"{url}/moto-api/{path}", method="POST",
                                     data=json.dumps(payload or {}).encode())
    urllib.request.urlopen(request, timeout=10).read()


@contextmanager
def local_aws(region: str, runtime_url: str | None = None, port: int | None = None,
              endpoint_transition_seconds: float | None = None) -> Iterator[LocalAws]:
    """Starts an empty moto server and points this process's boto3 at it for the duration.

    moto keeps its state in process-wide backends: they are reset at start, so each local AWS
    begins empty (the run directory's saved state is restored on top by the caller).
    ``endpoint_transition_seconds`` is how long an endpoint stays Creating or Updating.
    """
    from moto.server import ThreadedMotoServer

    from local_runtime import moto_ext

    port = free_port(port)
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    aws = LocalAws(url=f"http://{LOOPBACK}:{port}", region=region, runtime_url=runtime_url)
    moto_ext.install(endpoint_transition_seconds)
    logging.getLogger("moto").setLevel(logging.CRITICAL)   # failed executions are reported by us, not as moto tracebacks
    try:
        _moto_api(aws.url, "reset")
        _moto_api(aws.url, "config", {"stepfunctions": {"execute_state_machine": True}})
        with applied_environment(aws.environment()):
            yield aws
    finally:
        server.stop()
        with _CLIENTS_LOCK:     # a later server may get the same port: no pooled connection to this one survives
            for key in [k for k in _CLIENTS if k[1] in (aws.url, aws.runtime_url)]:
                del _CLIENTS[key]
