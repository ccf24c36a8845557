"""Local AWS APIs: a moto server on loopback that plain boto3 code reaches via AWS_ENDPOINT_URL.

Nothing in the project's product code knows it is talking to moto: this module only sets the
standard endpoint and credential environment variables that boto3 reads.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import boto3
from botocore.config import Config

LOOPBACK = "127.0.0.1"
ACCOUNT_ID = "123456789012"
_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass
class LocalAws:
    url: str
    region: str

    def client(self, service: str):
        return boto3.client(service, region_name=self.region, config=Config(retries={"max_attempts": 2}))


def _configure_server(url: str) -> None:
    """Step Functions executes state machines for real (moto's ASL interpreter)."""
    request = urllib.request.Request(f"{url}/moto-api/config", method="POST",
                                     data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode())
    urllib.request.urlopen(request, timeout=10).read()


@contextmanager
def local_aws(region: str, runtime_url: str | None = None) -> Iterator[LocalAws]:
    """Starts the moto server and points this process's boto3 at it for the duration."""
    from moto.server import ThreadedMotoServer

    from local_runtime import lambda_invoker

    port = free_port()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    url = f"http://{LOOPBACK}:{port}"
    previous = {k: os.environ.get(k) for k in (*_CREDENTIALS, "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "MOTO_PORT",
                                               "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_REGION")}
    os.environ.update(_CREDENTIALS)
    os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_DEFAULT_REGION": region, "AWS_REGION": region,
                       "MOTO_PORT": str(port)})
    if runtime_url:
        os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = runtime_url
    lambda_invoker.install()
    logging.getLogger("moto").setLevel(logging.CRITICAL)   # failed executions are reported by us, not as moto tracebacks
    try:
        _configure_server(url)
        yield LocalAws(url=url, region=region)
    finally:
        server.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
