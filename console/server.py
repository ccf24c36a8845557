"""Running the console: boto3 clients from the environment, and a threaded server that can be stopped.

``scones-console`` (console/cli.py) serves in the foreground; ``scones-local serve`` starts one in a
thread with its local stack's clients (``start_console``) and writes the URL into its 0600
``local-aws.env``. Both bind to loopback unless told otherwise and make a new login token per start.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from console.app import create_app
from console.auth import loopback_hosts, new_token
from scones_common.config import SconesConfig

log = logging.getLogger("console")
LOOPBACK = "127.0.0.1"


def boto3_clients(region: str) -> Callable[[str], Any]:
    """One client per service, made once from the default credential chain and endpoint settings
    (``AWS_ENDPOINT_URL`` & co.): the console's only way to AWS. boto3 clients are thread-safe;
    sessions are not, so clients are made under a lock."""
    import boto3

    session = boto3.session.Session(region_name=region)
    clients: dict[str, Any] = {}
    lock = threading.Lock()

    def client(service: str):
        with lock:
            if service not in clients:
                clients[service] = session.client(service)
            return clients[service]

    return client


@dataclass
class RunningConsole:
    url: str                  # with the login token: give it only to the user
    host: str
    port: int
    server: BaseWSGIServer
    thread: threading.Thread | None = None

    def stop(self) -> None:
        """Never raises: the caller (serve) still has state to save after it."""
        try:
            if self.thread:
                self.server.shutdown()
                self.thread.join(10)
            self.server.server_close()
        except Exception:
            log.exception("stopping the operator console failed")


def _url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}/?token={token}"


def make_console(clients: Callable[[str], Any], config: SconesConfig, host: str = LOOPBACK, port: int = 0,
                 target: str = "") -> RunningConsole:
    """Binds the server (port 0: any free port), then builds the app for the Host names of the port it got."""
    server = make_server(host, port, app=lambda environ, start_response: [], threaded=True)
    port = server.server_port
    token = new_token()
    server.app = create_app(clients, token, loopback_hosts(port, host), config, target)
    return RunningConsole(_url(host, port, token), host, port, server)


def start_console(clients: Callable[[str], Any], config: SconesConfig, host: str = LOOPBACK, port: int = 0,
                  target: str = "") -> RunningConsole:
    """A console serving in a daemon thread; ``stop()`` ends it."""
    console = make_console(clients, config, host, port, target)
    console.thread = threading.Thread(target=console.server.serve_forever, name="operator-console", daemon=True)
    console.thread.start()
    log.info("operator console at http://%s:%d/ (the URL with its login token is in local-aws.env)", host,
             console.port)
    return console
