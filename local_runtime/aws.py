"""Local AWS APIs: a moto server on loopback that plain boto3 code reaches via AWS_ENDPOINT_URL.

Nothing in the project's product code knows it is talking to moto: this module only sets the
standard endpoint and credential environment variables that boto3 reads. The runtime's own
clients (:meth:`LocalAws.client`) name the endpoints explicitly, so they work whether or not
the process environment points at the server. Each local AWS makes its own access key, and the
server answers only requests signed with it (``sigv4_gate.py``): the key is in these clients, in the
environment this process applies for its Lambdas and jobs, and in ``serve``'s env file (mode 0600).
"""
from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
from botocore.config import Config

from local_runtime.aws_env import ACCOUNT_ID as ACCOUNT_ID  # re-exported: the account of the local AWS
from local_runtime.aws_env import applied_environment
from local_runtime.errors import LocalRuntimeError
from local_runtime.sigv4_gate import AccessKey

LOOPBACK = "127.0.0.1"
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


@functools.cache
def _keyed_session() -> boto3.session.Session:
    """For clients with a local AWS's own key: its loaded service models outlive each stack (the default
    session is reset with every local AWS, and a new one parses them again, ~1 s)."""
    return boto3.session.Session()


@dataclass
class LocalAws:
    url: str
    region: str
    runtime_url: str | None = None
    key: AccessKey | None = None      # None: the credentials of the environment (a client of someone else's serve)

    @classmethod
    def from_environment(cls, env: dict[str, str]) -> "LocalAws":
        """Clients for the local AWS an env file (``serve``'s ``local-aws.env``) describes, with its key."""
        key = (AccessKey(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
               if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY") else None)
        return cls(env["AWS_ENDPOINT_URL"], env["AWS_DEFAULT_REGION"], env.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"),
                   key)

    def client(self, service: str):
        """One client per service and local AWS, shared: boto3 clients are thread-safe, creating them is not
        (the default session, and the environment that in-process Lambdas change), and it costs ~20 ms."""
        endpoint = self.runtime_url if service == _RUNTIME_SERVICE and self.runtime_url else self.url
        key = (service, endpoint, self.region, self.key.access_key_id if self.key else None)
        with _CLIENTS_LOCK:
            if key not in _CLIENTS:
                credentials = ({"aws_access_key_id": self.key.access_key_id,
                                "aws_secret_access_key": self.key.secret_access_key} if self.key else {})
                session = _keyed_session() if self.key else boto3
                _CLIENTS[key] = session.client(service, region_name=self.region, endpoint_url=endpoint,
                                               config=Config(retries={"max_attempts": 2}), **credentials)
            return _CLIENTS[key]

    def credentials(self) -> dict[str, str]:
        return ({"AWS_ACCESS_KEY_ID": self.key.access_key_id, "AWS_SECRET_ACCESS_KEY": self.key.secret_access_key}
                if self.key else {})

    def environment(self) -> dict[str, str]:
        """What points unmodified boto3 code (Lambdas, CLIs, the SageMaker SDK) at these local APIs, signed with
        this local AWS's key; MOTO_PORT is how moto's Step Functions interpreter reaches the Lambda API of its
        own server. STS is served locally too (the SDK asks it for the account)."""
        variables = {**self.credentials(), "AWS_ENDPOINT_URL": self.url, "AWS_ENDPOINT_URL_STS": self.url,
                     "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region,
                     "MOTO_PORT": self.url.rsplit(":", 1)[1]}
        if self.runtime_url:
            variables["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = self.runtime_url
        return variables


def _reset_moto() -> None:
    """What ``/moto-api/reset`` and ``/moto-api/config`` do, done in process: the HTTP control API is closed."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})


@contextmanager
def _no_session_token() -> Iterator[None]:
    """The local key has no session token: one left in the environment would be sent, and refused."""
    os.environ.pop("AWS_SESSION_TOKEN", None)
    yield


@contextmanager
def local_aws(region: str, runtime_url: str | None = None, port: int | None = None,
              endpoint_transition_seconds: float | None = None, cors_origins: tuple[str, ...] = ()
              ) -> Iterator[LocalAws]:
    """Starts an empty moto server, answering only requests signed with a key made for it, and points this
    process's boto3 at it for the duration.

    moto keeps its state in process-wide backends: they are reset at start, so each local AWS
    begins empty (the run directory's saved state is restored on top by the caller).
    ``endpoint_transition_seconds`` is how long an endpoint stays Creating or Updating;
    ``cors_origins`` the browser origins that may call the APIs (none by default).
    """
    from local_runtime import aws_env, moto_ext, sigv4_gate
    from local_runtime.moto_ext import write_ahead

    port = free_port(port)
    key = sigv4_gate.new_access_key()
    sigv4_gate.close_global_cors()
    gate = functools.partial(sigv4_gate.SigV4Gate, keys={key.access_key_id: key.secret_access_key},
                             allowed_origins=cors_origins)
    server = write_ahead.moto_server(LOOPBACK, port, wrap=gate)   # answers once a change is saved (with a state)
    server.start()
    aws = LocalAws(url=f"http://{LOOPBACK}:{port}", region=region, runtime_url=runtime_url, key=key)
    moto_ext.install(endpoint_transition_seconds)
    logging.getLogger("moto").setLevel(logging.CRITICAL)   # failed executions are reported by us, not as moto tracebacks
    boto3.DEFAULT_SESSION = None      # it caches the credentials it first found: an earlier local AWS's key
    try:
        _reset_moto()
        with aws_env.signing_key(key.access_key_id, key.secret_access_key), \
                applied_environment({**aws.environment(), "AWS_SESSION_TOKEN": ""}), _no_session_token():
            yield aws
    finally:
        boto3.DEFAULT_SESSION = None
        write_ahead.detach()
        server.stop()
        from local_runtime.moto_ext import lambda_workers

        lambda_workers.stop_all()        # users' functions' execution environments end with their server
        with _CLIENTS_LOCK:     # a later server may get the same port: no pooled connection to this one survives
            for cached in [k for k in _CLIENTS if k[1] in (aws.url, aws.runtime_url)]:
                del _CLIENTS[cached]
