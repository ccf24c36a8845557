"""Runs Lambda functions in-process for moto, which otherwise needs Docker.

Replaces ``moto.awslambda.models.LambdaFunction._invoke_lambda(self, event)`` (stable since
2021) with a call of the uploaded zip's handler under the function's environment. Failures
come back as the Lambda error document (``errorMessage``, ``errorType``), so Step Functions
Retry/Catch match on the exception's class name exactly as on AWS. The canary test in
tests/local_runtime/moto_ext/test_lambda_invoker.py fails loudly if a moto upgrade moves this hook.

Code runs inside this process, and the Lambda API on loopback has no authentication, so only
the packages the local stack provisioned are run: :func:`allow_package` records each function's
name, handler and the SHA-256 of its zip, and an invocation of anything else (a function created
by another process, foreign code uploaded over a provisioned one, a changed handler) is refused
with ``AccessDeniedException`` (HTTP 403) before any of its code is unpacked. Packages are
unpacked into a folder private to this process (``mkdtemp``: a fresh random name, mode 0700),
never into a path another user could have prepared.
"""
from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import importlib.util
import io
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from local_runtime.aws_env import applied_environment

_ENV_LOCK = threading.RLock()
_CURRENT = threading.local()
_MODULES: dict[tuple[str, str], object] = {}
_ROOT_LEVELS: dict[str, int] = {}     # per function: what its code set the root logger to (Lambda default WARNING)
_PROVISIONED: dict[str, "ProvisionedPackage"] = {}
_CODE_ROOT: Path | None = None


@dataclass(frozen=True)
class ProvisionedPackage:
    handler: str
    code_sha256: str      # base64 of the zip's SHA-256 digest, as Lambda reports CodeSha256


def code_sha256(code: bytes) -> str:
    """Lambda's ``CodeSha256`` of a zip."""
    return base64.b64encode(hashlib.sha256(code).digest()).decode()


def allow_package(function_name: str, handler: str, code: bytes) -> None:
    """Called by the local stack for each function it provisions: the only code this invoker runs."""
    _PROVISIONED[function_name] = ProvisionedPackage(handler, code_sha256(code))


def unpack_root() -> Path | None:
    """This process's private folder of unpacked function code (None until a function first runs)."""
    return _CODE_ROOT


def _refuse_unless_provisioned(function) -> None:
    expected = _PROVISIONED.get(function.function_name)
    actual = code_sha256(function.code_bytes)
    if expected is None or expected.code_sha256 != actual or expected.handler != function.handler:
        from moto.core.exceptions import JsonRESTError

        refusal = JsonRESTError("AccessDeniedException",
                                "the local stack runs only the function packages it provisioned; "
                                f"{function.function_name} (handler {function.handler}, CodeSha256 {actual}) is not "
                                "one of them. Deploy function code through the project (scones-local run / serve "
                                "provisions it).")
        refusal.code = 403
        raise refusal


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
_EMPTY_PAYLOAD = "{}"     # what moto's LambdaFunction.invoke hands on, undecoded, when Invoke has no payload


class LambdaContext:
    def __init__(self, function, deadline: float):
        self.function_name = function.function_name
        self.function_version = function.version
        self.invoked_function_arn = function.function_arn
        self.memory_limit_in_mb = function.memory_size
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = function.logs_group_name
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _load_handler(function):
    module_name, _, attribute = function.handler.rpartition(".")
    key = (function.function_name, function.code_sha_256)
    if key not in _MODULES:
        target = Path(tempfile.mkdtemp(prefix=f"{function.function_name}-", dir=_private_code_root()))
        with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
            archive.extractall(target)
        path = target / (module_name.replace(".", "/") + ".py")
        spec = importlib.util.spec_from_file_location(f"lambda_{function.function_name}_{module_name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module      # dataclasses and pickling look modules up by name
        sys.path.insert(0, str(target))
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(spec.name, None)
            raise
        finally:
            sys.path.remove(str(target))
        _MODULES[key] = module
    return getattr(_MODULES[key], attribute)


def _function_environment(function):
    return applied_environment({"AWS_LAMBDA_FUNCTION_NAME": function.function_name,
                                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
                                "AWS_LAMBDA_FUNCTION_VERSION": str(function.version), "AWS_REGION": function.region,
                                **{k: str(v) for k, v in function.environment_vars.items()}})


def running_in_lambda(record: logging.LogRecord | None = None) -> bool:
    """True on a thread that is executing a Lambda handler (its logs go to the function's log stream)."""
    return getattr(_CURRENT, "function", None) is not None


def keep_lambda_logs_off_console() -> None:
    for handler in logging.getLogger().handlers:
        if not any(getattr(f, "__name__", "") == "_not_lambda" for f in handler.filters):
            handler.addFilter(_not_lambda)


def _not_lambda(record: logging.LogRecord) -> bool:
    return not running_in_lambda(record)


def error_document(exc: BaseException) -> dict:
    return {"errorMessage": str(exc), "errorType": type(exc).__name__,
            "stackTrace": traceback.format_tb(exc.__traceback__)}


def invoke_in_process(function, event=None) -> tuple[str, bool, str]:
    """The replacement for ``_invoke_lambda``: returns (payload, errored, logs)."""
    _refuse_unless_provisioned(function)
    if event == _EMPTY_PAYLOAD:      # moto passes every other payload already decoded: null, a string, a list…
        event = {}
    logs = io.StringIO()
    handler_log = logging.StreamHandler(logs)
    handler_log.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    with _ENV_LOCK, _function_environment(function):
        root = logging.getLogger()
        process_level = root.level
        root.setLevel(_ROOT_LEVELS.get(function.function_name, logging.WARNING))
        root.addHandler(handler_log)
        _CURRENT.function = function.function_name
        try:
            handler = _load_handler(function)
            result = handler(event, LambdaContext(function, time.monotonic() + function.timeout))
            payload, errored = json.dumps(result), False
        except Exception as exc:   # any handler error becomes the Lambda error document
            logging.getLogger().error("%s: %s", type(exc).__name__, exc)
            payload, errored = json.dumps(error_document(exc)), True
        finally:
            _CURRENT.function = None
            root.removeHandler(handler_log)
            _ROOT_LEVELS[function.function_name] = root.level   # handlers set the root level, as Lambda code does
            root.setLevel(process_level)
    output = logs.getvalue()
    try:
        _save_logs(function, output or "(no log output)")
    except Exception as exc:       # logs are best effort, the invocation result is not
        logging.getLogger(__name__).warning("could not store logs of %s: %s", function.function_name, exc)
    return payload, errored, output


def _save_logs(function, output: str) -> None:
    """Lambda creates its log group on first use; moto's save_logs expects it to exist."""
    if function.logs_group_name not in function.logs_backend.groups:
        function.logs_backend.create_log_group(function.logs_group_name, tags={})
    function.save_logs(output)


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

    _MODULES.clear()
    _forget_code_root()

    if getattr(LambdaFunction._invoke_lambda, "__name__", "") != "invoke_in_process":
        LambdaFunction._invoke_lambda = invoke_in_process
    if not getattr(LambdaFunction.invoke, "__scones_unhandled__", False):
        LambdaFunction.invoke = _reporting_unhandled(LambdaFunction.invoke)
    keep_lambda_logs_off_console()
