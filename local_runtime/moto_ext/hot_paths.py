"""Per-request work moto repeats needlessly, done once.

Measured on a three-Lambda workflow execution (2 cores): ~85 ms before, mostly here.

- Task clients: the ASL interpreter calls ``boto_client_for(region, service)`` for every Task
  state, a new boto3 client each time (~10 ms) aimed at ``localhost`` (an IPv6 try first).
  Cached per (region, service, server port, key), aimed at 127.0.0.1, signed with the local AWS's key.
- Program parsing: every execution re-parses the definition with ANTLR (~13 ms). The parsed
  program keeps per-execution state in the execution's environment, not in its components, so
  one parse per definition serves every execution.
- Nagle: the server (werkzeug) writes headers and body in separate sends on keep-alive
  connections; with Nagle's algorithm and the client's delayed ACK a response can wait ~40 ms.
- Request dispatch: the server lists moto's package folders with a stat per folder on every
  request (~0.8 ms, ~15 requests per execution). The list is fixed for an installed moto.

The canary tests in tests/local_runtime/moto_ext/test_hot_paths.py fail loudly if a moto
upgrade moves or reshapes any of these.
"""
from __future__ import annotations

import functools
import importlib
import sys
import threading
from typing import Any

BOTO_CLIENT_MODULE = "moto.stepfunctions.parser.asl.utils.boto_client"
LAMBDA_TASK_MODULE = "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils"
_CLIENTS: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()


def cached_boto_client_for(region: str, service: str, state_credentials: Any = None):
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port

    from local_runtime.aws_env import current_signing_key

    port = moto_server_port()
    access_key, secret = current_signing_key() or ("unsigned", "unsigned")    # the local AWS answers only its key
    key = (region, service, port, access_key)
    with _LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = boto3.client(
                service, region_name=region, endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=access_key,
                aws_secret_access_key=secret,
                config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                              connect_timeout=60, read_timeout=60, max_pool_connections=32))
        return _CLIENTS[key]


@functools.lru_cache(maxsize=32)
def parsed_program(definition: str):
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    return AmazonStateLanguageParser.parse(definition)[0]


def _cached_entrypoint(self):
    return parsed_program(self._evaluation_details.state_machine_details.definition)


def _install_task_clients() -> None:
    original = importlib.import_module(BOTO_CLIENT_MODULE).boto_client_for
    importlib.import_module(LAMBDA_TASK_MODULE)
    if original is cached_boto_client_for:
        return
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = cached_boto_client_for


def _install_program_cache() -> None:
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    ExecutionWorker._get_evaluation_entrypoint = _cached_entrypoint


def _install_dispatch_cache() -> None:
    from moto import backends

    if not getattr(backends.list_of_moto_modules, "_scones_cached", False):
        modules = tuple(backends.list_of_moto_modules())
        cached = lambda: modules  # noqa: E731
        cached._scones_cached = True
        backends.list_of_moto_modules = cached


def _install_no_delay() -> None:
    from werkzeug.serving import WSGIRequestHandler

    WSGIRequestHandler.disable_nagle_algorithm = True


def install() -> None:
    _install_no_delay()
    _install_task_clients()
    _install_program_cache()
    _install_dispatch_cache()
