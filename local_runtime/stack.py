"""The local stack: local AWS APIs, the endpoint runtime and what the SAM template provisions.

One way to bring the serving side up, used by the main run, the tests and the benchmarks.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from local_runtime.aws import LocalAws, free_port, local_aws
from local_runtime.provision import Provisioned, provision
from local_runtime.serving.endpoint_server import EndpointServer
from scones_common.config import SconesConfig


@dataclass
class LocalStack:
    aws: LocalAws
    config: SconesConfig
    resources: Provisioned
    server: EndpointServer

    def client(self, service: str):
        return self.aws.client(service)


@contextmanager
def local_stack(config: SconesConfig, run_dir: Path, capture_flush_seconds: float = 1.0) -> Iterator[LocalStack]:
    """Starts moto and the endpoint server, provisions bucket, Lambdas, state machine and rules."""
    port = free_port()
    with local_aws(config.project.region, runtime_url=f"http://127.0.0.1:{port}") as aws:
        server = EndpointServer(aws, run_dir, config.endpoint.name, port=port,
                                capture_flush_seconds=capture_flush_seconds).start()
        try:
            yield LocalStack(aws, config, provision(aws, config), server)
        finally:
            server.stop()
