"""The Python Lambda runtime's side of an invocation: load the handler, call it, answer as Lambda does.

Standard library only, and importing nothing of the project: the same file is the in-process
runtime of the stack's own functions (``lambda_invoker.py`` imports it) and the bootstrap of a
user function's own execution environment (``lambda_workers.py`` runs it as a script, in its own
process, with ``python -I``: the function's code folder first on ``sys.path``).

What follows the AWS Lambda Python runtime (awslambdaric): errors are the error document
``{"errorMessage", "errorType", "requestId", "stackTrace"}`` whose stack trace holds the handler's
frames only, with the code folder shown as ``/var/task``; a result that is not JSON is a
``Runtime.MarshalError``; an import that fails is ``Runtime.ImportModuleError`` (a syntax error
``Runtime.UserCodeSyntaxError``), a missing handler ``Runtime.HandlerNotFound``, a handler string
without a dot ``Runtime.MalformedHandlerName``; ``logging`` records go to the log as
``[LEVEL]\\t<UTC time>Z\\t<request id>\\t<message>`` (one event each), the root logger at WARNING.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import sys
import time
import traceback

TASK_ROOT = "/var/task"       # where Lambda puts the function's code: stack traces name it so
LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class RuntimeFault(Exception):
    """An error of the runtime rather than of the handler (Runtime.ImportModuleError, …)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


def handler_frames(tb, code_dir: str) -> list[str]:
    """``traceback.format_list`` of the frames from the first one in the function's code on (the runtime's own
    frames above it are not shown, as on Lambda), the code folder shown as /var/task."""
    frames = traceback.extract_tb(tb)
    root = os.path.realpath(code_dir) + os.sep
    for index, frame in enumerate(frames):
        if os.path.realpath(frame.filename).startswith(root):
            frames = frames[index:]
            break
    else:
        frames = frames[-1:]
    lines = traceback.format_list(frames)
    return [line.replace(root, TASK_ROOT + "/").replace(os.path.realpath(code_dir), TASK_ROOT) for line in lines]


def error_document(error_type: str, message: str, request_id: str, stack: list[str] | None = None) -> dict:
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack or []}


def error_log_line(document: dict) -> str:
    """What the runtime logs for an error: ``[ERROR] Type: message`` and the traceback, one event."""
    description = "[ERROR]"
    if document.get("errorType"):
        description += " " + document["errorType"] + (":" if document.get("errorMessage") else "")
    if document.get("errorMessage"):
        description += " " + document["errorMessage"]
    lines = [description]
    if document.get("stackTrace"):
        lines.append("Traceback (most recent call last):")
        for element in document["stackTrace"]:
            lines.extend(element.splitlines() or [""])
    return "\n".join(lines)


def load_handler(handler: str, code_dir: str, module_name: str | None = None):
    """The handler function, or :class:`RuntimeFault` as the Python runtime words each failure."""
    try:
        module_path, attribute = handler.rsplit(".", 1)
    except ValueError as exc:
        raise RuntimeFault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from None
    module_path = module_path.replace("/", ".")
    try:
        if module_name is None:
            module = importlib.import_module(module_path)
        else:                       # in-process: a private module name, so functions never share modules
            path = os.path.join(code_dir, *module_path.split(".")) + ".py"
            if not os.path.exists(path):
                raise ModuleNotFoundError(f"No module named '{module_path}'")
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module       # dataclasses and pickling look modules up by name
            sys.path.insert(0, code_dir)
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
            finally:
                if code_dir in sys.path:
                    sys.path.remove(code_dir)
    except SyntaxError as exc:
        raise RuntimeFault("Runtime.UserCodeSyntaxError",
                           f"Syntax error in module '{module_path}': {exc}") from None
    except ImportError as exc:
        raise RuntimeFault("Runtime.ImportModuleError", f"Unable to import module '{module_path}': {exc}") from None
    function = getattr(module, attribute, None)
    if function is None:
        raise RuntimeFault("Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_path}'")
    return function


class Context:
    """The Lambda context object."""

    def __init__(self, details: dict, deadline_ms: int):
        self.function_name = details["function_name"]
        self.function_version = details["function_version"]
        self.invoked_function_arn = details["invoked_function_arn"]
        self.memory_limit_in_mb = str(details["memory_limit_in_mb"])
        self.aws_request_id = details["aws_request_id"]
        self.log_group_name = details["log_group_name"]
        self.log_stream_name = details["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def invoke(handler, event, context: Context, code_dir: str) -> tuple[str, bool, str | None]:
    """Calls the handler: (the response payload, whether it is an error document, the runtime's error log line)."""
    request_id = context.aws_request_id
    try:
        result = handler(event, context)
    except Exception as exc:    # any handler error becomes the error document, as Lambda answers
        document = error_document(type(exc).__name__, str(exc), request_id,
                                  handler_frames(exc.__traceback__, code_dir))
        return json.dumps(document), True, error_log_line(document)
    try:
        return json.dumps(result), False, None
    except (TypeError, ValueError, RecursionError) as exc:
        document = error_document("Runtime.MarshalError", f"Unable to marshal response: {exc}", request_id)
        return json.dumps(document), True, error_log_line(document)


def fault(exc: RuntimeFault, request_id: str) -> tuple[str, bool, str]:
    document = error_document(exc.error_type, str(exc), request_id)
    return json.dumps(document), True, error_log_line(document)


class RequestIdFilter(logging.Filter):
    """Gives each record the current request id (the log format names it)."""

    def __init__(self, current):
        super().__init__()
        self.current = current

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.current() or ""
        return True


def formatter() -> logging.Formatter:
    form = logging.Formatter(LOG_FORMAT, DATE_FORMAT)
    form.converter = time.gmtime
    return form


# -- the execution environment's main loop (run as a script) ------------------------------------------------

def _watch(limits: dict) -> None:
    """Ends this environment when the process that started it is gone, or when an invocation outlives its
    deadline by far (the parent enforces the Timeout; this is the guard if the parent cannot)."""
    import threading

    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            deadline = limits.get("deadline_ms")
            if os.getppid() != parent or (deadline and time.time() * 1000 > deadline + 10_000):
                os._exit(137)
    threading.Thread(target=watch, daemon=True, name="lambda-watchdog").start()


def peak_memory_mb() -> int:
    """This process's peak resident memory (VmHWM: ru_maxrss would count the parent's, inherited at fork)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 * 1024 if sys.platform == "darwin" else 1024)


def main() -> None:     # pragma: no cover - runs in the execution environment's own process
    import resource

    code_dir = os.environ["LAMBDA_TASK_ROOT"]
    memory = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")) * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    except (ValueError, OSError):
        pass
    results = os.fdopen(int(os.environ.pop("_LAMBDA_RESULTS_FD", "3")), "w", buffering=1)
    commands = sys.stdin
    sys.stdin = open(os.devnull)
    sys.path.insert(0, code_dir)
    current = {"request_id": None}
    handler_log = logging.StreamHandler(sys.stdout)
    handler_log.setFormatter(formatter())
    handler_log.addFilter(RequestIdFilter(lambda: current["request_id"]))
    handler_log.terminator = "\n"
    root = logging.getLogger()
    root.addHandler(handler_log)
    root.setLevel(logging.WARNING)
    _OneLine.install(handler_log)
    limits: dict = {}
    _watch(limits)
    handler = None
    for line in commands:
        request = json.loads(line)
        current["request_id"] = request_id = request["context"]["aws_request_id"]
        limits["deadline_ms"] = request["deadline_ms"]
        init_ms = handler_ms = None
        try:
            if handler is None:
                loading = time.perf_counter()
                try:
                    handler = load_handler(os.environ["_HANDLER"], code_dir)
                finally:
                    init_ms = (time.perf_counter() - loading) * 1000
            running = time.perf_counter()
            payload, errored, error_line = invoke(handler, request["event"],
                                                  Context(request["context"], request["deadline_ms"]), code_dir)
            handler_ms = (time.perf_counter() - running) * 1000
        except RuntimeFault as exc:
            payload, errored, error_line = fault(exc, request_id)
        if error_line:
            sys.stdout.write(error_line.replace("\n", "\r") + "\n")
        limits["deadline_ms"] = None
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.write(1, f"\x1e{request_id}\n".encode())
        results.write(json.dumps({"request_id": request_id, "payload": payload, "errored": errored,
                                  "max_memory_mb": peak_memory_mb(), "init_ms": init_ms,
                                  "handler_ms": handler_ms}) + "\n")
        current["request_id"] = None


class _OneLine(logging.Formatter):
    """Keeps a multi-line record (a traceback) one log event: its newlines travel as carriage returns."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return self.inner.format(record).replace("\n", "\r")

    @classmethod
    def install(cls, handler: logging.Handler) -> None:
        handler.setFormatter(cls(handler.formatter))


if __name__ == "__main__":
    main()
