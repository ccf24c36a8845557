"""Runs Lambda functions for moto, which otherwise needs Docker, answering and logging as Lambda does.

Replaces ``moto.awslambda.models.LambdaFunction._invoke_lambda(self, event)`` (stable since
2021). Any function a (signed) request created runs:

- the stack's own functions (the packages provisioning recorded with :func:`allow_package`: name,
  handler and the SHA-256 of the zip) run in this process, their modules loaded once per server;
- every other function (a user's, or foreign code uploaded over one of ours) runs in its own
  execution environment, a process of its own (``lambda_workers.py``): its own modules,
  environment, Timeout and memory limit, so its ``sys.exit``, a crash or an import clash cannot
  touch ``serve``.

Both answer with the Python runtime's documents (``lambda_bootstrap.py``): the error document
with the handler's frames only (``/var/task/…``), ``Runtime.MarshalError`` for a result that is
not JSON, ``Runtime.ImportModuleError`` & co., an exception an ``Unhandled`` FunctionError; a
``null``, string or array payload reaches the handler as such. Both write the invocation's log to
``/aws/lambda/<function>``: ``START``, every line the handler logged (a user's function: also every
line it printed) with its own integer millisecond timestamp, ``END`` and ``REPORT``;
``LogType=Tail`` returns its last 4 KB. Packages are unpacked into a folder private to this process (``mkdtemp``:
a fresh random name, mode 0700), never into a path another user could have prepared. The canary
test in tests/local_runtime/moto_ext/test_lambda_invoker.py fails loudly if a moto upgrade moves
this hook.
"""
from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import io
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from local_runtime.aws_env import applied_environment
from local_runtime.moto_ext import lambda_bootstrap, lambda_workers

_ENV_LOCK = threading.RLock()
_CURRENT = threading.local()
_HANDLERS: dict[tuple[str, str, str], object] = {}
_STREAMS: dict[tuple[str, str], str] = {}     # in-process function (name, CodeSha256) -> its log stream
_ROOT_LEVELS: dict[str, int] = {}     # per function: what its code set the root logger to (Lambda default WARNING)
_PROVISIONED: dict[str, "ProvisionedPackage"] = {}
_UNPACKED: dict[tuple[str, str], Path] = {}
_CODE_ROOT: Path | None = None
TAIL_BYTES = 4096           # LogType=Tail: the last 4 KB of the invocation's log


@dataclass(frozen=True)
class ProvisionedPackage:
    handler: str
    code_sha256: str      # base64 of the zip's SHA-256 digest, as Lambda reports CodeSha256


def code_sha256(code: bytes) -> str:
    """Lambda's ``CodeSha256`` of a zip."""
    return base64.b64encode(hashlib.sha256(code).digest()).decode()


def allow_package(function_name: str, handler: str, code: bytes) -> None:
    """Called by the local stack for each function it provisions: these run in this process."""
    _PROVISIONED[function_name] = ProvisionedPackage(handler, code_sha256(code))


def runs_in_process(function) -> bool:
    expected = _PROVISIONED.get(function.function_name)
    return (expected is not None and expected.handler == function.handler
            and expected.code_sha256 == code_sha256(function.code_bytes))


def unpack_root() -> Path | None:
    """This process's private folder of unpacked function code (None until a function first runs)."""
    return _CODE_ROOT


def _private_code_root() -> Path:
    global _CODE_ROOT
    if _CODE_ROOT is None:
        _CODE_ROOT = Path(tempfile.mkdtemp(prefix="scones-lambda-"))
        atexit.register(shutil.rmtree, _CODE_ROOT, ignore_errors=True)
    return _CODE_ROOT


def _forget_code_root() -> None:
    """A new server unpacks into a new folder; the old one's modules are already imported."""
    global _CODE_ROOT
    if _CODE_ROOT is not None:
        shutil.rmtree(_CODE_ROOT, ignore_errors=True)
        _CODE_ROOT = None
    _UNPACKED.clear()


def _unpacked(function) -> Path:
    key = (function.function_name, function.code_sha_256)
    if key not in _UNPACKED or not _UNPACKED[key].exists():
        target = Path(tempfile.mkdtemp(prefix=f"{function.function_name}-", dir=_private_code_root()))
        with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
            archive.extractall(target)
        _UNPACKED[key] = target
    return _UNPACKED[key]


_EMPTY_PAYLOAD = "{}"     # what moto's LambdaFunction.invoke hands on, undecoded, when Invoke has no payload


def _function_environment(function):
    return applied_environment(lambda_workers.lambda_environment(function))


def running_in_lambda(record: logging.LogRecord | None = None) -> bool:
    """True on a thread that is executing a Lambda handler (its logs go to the function's log stream)."""
    return getattr(_CURRENT, "function", None) is not None


def keep_lambda_logs_off_console() -> None:
    for handler in logging.getLogger().handlers:
        if not any(getattr(f, "__name__", "") == "_not_lambda" for f in handler.filters):
            handler.addFilter(_not_lambda)


def _not_lambda(record: logging.LogRecord) -> bool:
    return not running_in_lambda(record)


def error_document(exc: BaseException, request_id: str = "") -> dict:
    """The Lambda error document of a handler's exception (its type's name, message and frames)."""
    return lambda_bootstrap.error_document(type(exc).__name__, str(exc), request_id,
                                           lambda_bootstrap.handler_frames(exc.__traceback__, "/nonexistent"))


class _EventHandler(logging.Handler):
    """The runtime's logging handler: one event per record, in the Python runtime's format."""

    def __init__(self, events: list[tuple[int, str]]):
        super().__init__()
        self.events = events
        self.setFormatter(lambda_bootstrap.formatter())
        self.addFilter(lambda_bootstrap.RequestIdFilter(lambda: getattr(_CURRENT, "request_id", None)))

    def emit(self, record: logging.LogRecord) -> None:
        if running_in_lambda(record):
            self.events.append((int(record.created * 1000), self.format(record)))


def _handler(function, code_dir: Path):
    key = (function.function_name, function.code_sha_256, function.handler)
    if key not in _HANDLERS:
        module_path = function.handler.rpartition(".")[0].replace("/", ".")
        _HANDLERS[key] = lambda_bootstrap.load_handler(
            function.handler, str(code_dir), f"lambda_{function.function_name}_{module_path}")
    return _HANDLERS[key]


def _invoke_here(function, event, request_id: str) -> lambda_workers.Outcome:
    """An invocation of one of the stack's own functions, in this process (serialized: the environment
    variables are process-wide). They log through ``logging``; ``sys.stdout`` is this process's and is left
    alone (swapping it for a while races with every other thread that prints)."""
    events: list[tuple[int, str]] = []
    now = lambda: int(time.time() * 1000)  # noqa: E731
    stream_key = (function.function_name, function.code_sha_256)
    cold = stream_key not in _STREAMS
    if cold:
        _STREAMS[stream_key] = lambda_workers.stream_name(str(function.version))
    code_dir = _unpacked(function)
    with _ENV_LOCK, _function_environment(function):
        handler_log = _EventHandler(events)
        root = logging.getLogger()
        process_level = root.level
        root.setLevel(_ROOT_LEVELS.get(function.function_name, logging.WARNING))
        root.addHandler(handler_log)
        _CURRENT.function, _CURRENT.request_id = function.function_name, request_id
        started = time.perf_counter()
        init_ms = None
        events.append((now(), f"START RequestId: {request_id} Version: {function.version}"))
        try:
            try:
                handler = _handler(function, code_dir)
                if cold:
                    init_ms = (time.perf_counter() - started) * 1000
                    started = time.perf_counter()
                context = lambda_bootstrap.Context({
                    "function_name": function.function_name, "function_version": str(function.version),
                    "invoked_function_arn": function.function_arn, "memory_limit_in_mb": function.memory_size,
                    "aws_request_id": request_id, "log_group_name": function.logs_group_name,
                    "log_stream_name": _STREAMS[stream_key]}, now() + int(float(function.timeout) * 1000))
                payload, errored, error_line = lambda_bootstrap.invoke(handler, event, context, str(code_dir))
            except lambda_bootstrap.RuntimeFault as exc:
                payload, errored, error_line = lambda_bootstrap.fault(exc, request_id)
            if error_line:
                events.append((now(), error_line))
        finally:
            _CURRENT.function = _CURRENT.request_id = None
            root.removeHandler(handler_log)
            _ROOT_LEVELS[function.function_name] = root.level   # handlers set the root level, as Lambda code does
            root.setLevel(process_level)
    duration = (time.perf_counter() - started) * 1000
    events.append((now(), f"END RequestId: {request_id}"))
    events.append((now(), lambda_workers.report_line(request_id, duration, function.memory_size, _max_memory_mb(),
                                                     init_ms)))
    return lambda_workers.Outcome(payload, errored, events, _STREAMS[stream_key])


def _max_memory_mb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _environment_key(function) -> tuple:
    return (function.function_arn, function.code_sha_256, function.handler, str(function.timeout),
            str(function.memory_size), function.run_time,
            json.dumps(function.environment_vars or {}, sort_keys=True, default=str))


def invoke_lambda(function, event=None) -> tuple[str, bool, str]:
    """The replacement for ``_invoke_lambda``: returns (payload, errored, the log's tail)."""
    if event == _EMPTY_PAYLOAD:      # moto passes every other payload already decoded: null, a string, a list…
        event = {}
    request_id = str(uuid.uuid4())
    if runs_in_process(function):
        outcome = _invoke_here(function, event, request_id)
    else:
        outcome = lambda_workers.invoke(function, _unpacked(function), _environment_key(function), event, request_id)
    try:
        _save_logs(function, outcome.log_stream, outcome.events)
    except Exception as exc:       # logs are best effort, the invocation result is not
        logging.getLogger(__name__).warning("could not store logs of %s: %s", function.function_name, exc)
    text = "".join(message + "\n" for _, message in outcome.events).encode()
    return outcome.payload, outcome.errored, text[-TAIL_BYTES:].decode("utf-8", errors="ignore")


invoke_in_process = invoke_lambda      # the name the hook had; the canary test checks for either


def _save_logs(function, stream: str, events: list[tuple[int, str]]) -> None:
    """Lambda creates its log group on first use, and a stream per execution environment."""
    logs = function.logs_backend
    logs.ensure_log_group(function.logs_group_name)
    logs.ensure_log_stream(function.logs_group_name, stream)
    if events:
        logs.put_log_events(function.logs_group_name, stream,
                            [{"timestamp": stamp, "message": message} for stamp, message in events])


def _reporting_unhandled(invoke):
    """An exception raised by a handler is an ``Unhandled`` FunctionError on Lambda (moto says ``Handled``)."""
    @functools.wraps(invoke)
    def reported(self, body, request_headers, response_headers):
        result = invoke(self, body, request_headers, response_headers)
        if response_headers.get("x-amz-function-error"):
            response_headers["x-amz-function-error"] = "Unhandled"
        return result
    reported.__scones_unhandled__ = True
    return reported


def install() -> None:
    """Hooks moto and starts every function cold: handler modules build their boto3 clients at import,
    bound to the endpoints of the server that was running then."""
    from moto.awslambda.models import LambdaFunction

    _HANDLERS.clear()
    _STREAMS.clear()
    lambda_workers.stop_all()
    _forget_code_root()

    if getattr(LambdaFunction._invoke_lambda, "__name__", "") != "invoke_lambda":
        LambdaFunction._invoke_lambda = invoke_lambda
    if not getattr(LambdaFunction.invoke, "__scones_unhandled__", False):
        LambdaFunction.invoke = _reporting_unhandled(LambdaFunction.invoke)
    keep_lambda_logs_off_console()
