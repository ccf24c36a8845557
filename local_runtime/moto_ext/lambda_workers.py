"""Execution environments for Lambda functions the local stack did not provision: one process each.

A function a user creates (any code a signed CreateFunction/UpdateFunctionCode uploads) runs in
its own Python process, as Lambda runs each function in its own execution environment: its own
modules (the code folder first on ``sys.path``, ``python -I``), its own environment variables
(the function's, Lambda's reserved ones, and the local credentials and endpoints: nothing else of
``serve``'s), its memory limited to MemorySize (``RLIMIT_DATA``), its ``Timeout`` enforced (the
process is killed, ``Sandbox.Timedout``). A ``sys.exit``, a crash or an import clash ends that
process (``Runtime.ExitError``), never ``serve``. An environment is reused by the next invocation
of the same function version and configuration (a warm start) and stopped when the local server
stops; a changed configuration or code gets a fresh one, as on Lambda.

Each environment writes its log stream ``YYYY/MM/DD/[$LATEST]<id>`` of ``/aws/lambda/<function>``:
START, the handler's output line by line (``print`` included) with the time it was written, END
and REPORT (duration, billed duration, memory size, max memory used, init duration on a cold start).
"""
from __future__ import annotations

import atexit
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
SENTINEL = b"\x1e"
IDLE_PER_FUNCTION = 2           # warm environments kept per function configuration
_PASSED_THROUGH = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                   "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ENDPOINT_URL_STS", "PATH", "LANG")


@dataclass
class Outcome:
    payload: str
    errored: bool
    events: list[tuple[int, str]]        # (epoch ms, message) of this invocation, START … REPORT
    log_stream: str


@dataclass(eq=False)
class _Environment:
    key: tuple
    process: subprocess.Popen
    results: object                  # the read end of the results pipe (fd 3 in the environment)
    log_stream: str
    started: float
    lines: "queue.Queue[tuple[int, bytes] | None]" = field(default_factory=queue.Queue)

    def read_output(self) -> None:
        """The environment's stdout and stderr, line by line, each with the time it arrived."""
        for line in iter(self.process.stdout.readline, b""):
            self.lines.put((int(time.time() * 1000), line))
        self.lines.put(None)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 9)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.process.stdin, self.process.stdout, self.results):
            try:
                stream.close()
            except (OSError, AttributeError):
                pass


_idle: dict[tuple, list[_Environment]] = {}
_all: set[_Environment] = set()
_lock = threading.Lock()


def stream_name(version: str = "$LATEST") -> str:
    return time.strftime("%Y/%m/%d", time.gmtime()) + f"/[{version}]{uuid.uuid4().hex}"


def lambda_environment(function) -> dict[str, str]:
    """The reserved variables Lambda sets, then the function's own."""
    return {"AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": str(function.version), "AWS_REGION": function.region,
            "AWS_DEFAULT_REGION": function.region, "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time}",
            "AWS_LAMBDA_LOG_GROUP_NAME": function.logs_group_name, "_HANDLER": function.handler,
            **{k: str(v) for k, v in (function.environment_vars or {}).items()}}


def _start(key: tuple, function, code_dir: Path) -> _Environment:
    read_results, write_results = os.pipe()
    log_stream = stream_name(str(function.version))
    env = {**{k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}, **lambda_environment(function),
           "LAMBDA_TASK_ROOT": str(code_dir), "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
           "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "TZ": ":UTC",
           "_LAMBDA_RESULTS_FD": str(write_results)}
    try:
        process = subprocess.Popen([sys.executable, "-I", str(BOOTSTRAP)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=code_dir, env=env,
                                   pass_fds=(write_results,), start_new_session=True)
    finally:
        os.close(write_results)
    started = _Environment(key, process, os.fdopen(read_results, "r"), log_stream, time.perf_counter())
    threading.Thread(target=started.read_output, daemon=True, name=f"lambda-{function.function_name}").start()
    with _lock:
        _all.add(started)
    return started


def _take(key: tuple, function, code_dir: Path) -> _Environment:
    with _lock:
        idle = _idle.get(key, [])
        while idle:
            environment = idle.pop()
            if environment.alive():
                return environment
            _all.discard(environment)
    return _start(key, function, code_dir)


def _give_back(environment: _Environment) -> None:
    with _lock:
        idle = _idle.setdefault(environment.key, [])
        if environment.alive() and len(idle) < IDLE_PER_FUNCTION:
            idle.append(environment)
            return
        _all.discard(environment)
    environment.stop()


def _discard(environment: _Environment) -> None:
    with _lock:
        _all.discard(environment)
    environment.stop()


def _exit_description(code: int | None) -> str:
    if code is None:
        return "Runtime exited without providing a reason"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name.removeprefix("SIG").lower()
        except ValueError:
            name = str(-code)
        return f"Runtime exited with error: signal: {name}"
    return f"Runtime exited with error: exit status {code}"


def _collect(environment: _Environment, events: list[tuple[int, str]], request_id: str, until: float) -> bool:
    """The environment's output lines up to its end-of-invocation mark; False if the output ended first."""
    mark = SENTINEL + request_id.encode() + b"\n"
    while True:
        try:
            item = environment.lines.get(timeout=max(0.0, until - time.monotonic()))
        except queue.Empty:
            return False
        if item is None:
            return False
        stamp, line = item
        if line == mark:
            return True
        text = line.decode("utf-8", errors="replace").rstrip("\n").replace("\r", "\n")
        events.append((stamp, text))


def invoke(function, code_dir: Path, key: tuple, event, request_id: str) -> Outcome:
    """One invocation in an execution environment of ``function`` (started, or a warm one reused)."""
    environment = _take(key, function, code_dir)
    events: list[tuple[int, str]] = []
    now = lambda: int(time.time() * 1000)  # noqa: E731
    init_ms = None
    events.append((now(), f"START RequestId: {request_id} Version: {function.version}"))
    started = time.perf_counter()
    deadline_ms = now() + int(float(function.timeout) * 1000)
    request = {"event": event, "deadline_ms": deadline_ms, "context": {
        "function_name": function.function_name, "function_version": str(function.version),
        "invoked_function_arn": function.function_arn, "memory_limit_in_mb": function.memory_size,
        "aws_request_id": request_id, "log_group_name": function.logs_group_name,
        "log_stream_name": environment.log_stream}}
    result, failure = None, None
    try:
        environment.process.stdin.write((json.dumps(request) + "\n").encode())
        environment.process.stdin.flush()
    except (BrokenPipeError, OSError):
        failure = "exit"
    until = time.monotonic() + float(function.timeout)
    if failure is None:
        result_line = _read_result(environment, until)
        if result_line is None:
            failure = "timeout" if time.monotonic() >= until else "exit"
        else:
            result = json.loads(result_line)
            _collect(environment, events, request_id, time.monotonic() + 5)
    duration = (time.perf_counter() - started) * 1000
    if failure == "timeout":
        seconds = float(function.timeout)
        _discard(environment)
        _drain(environment, events)
        events.append((now(), f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}.{now() % 1000:03d}Z "
                              f"{request_id} Task timed out after {seconds:.2f} seconds"))
        document = {"errorMessage": f"RequestId: {request_id} Error: Task timed out after {seconds:.2f} seconds",
                    "errorType": "Sandbox.Timedout"}
        payload, errored, memory = json.dumps(document), True, None
    elif failure == "exit":
        try:
            environment.process.wait(5)
        except subprocess.TimeoutExpired:
            environment.stop()
        _drain(environment, events)
        description = _exit_description(environment.process.returncode)
        _discard(environment)
        events.append((now(), f"RequestId: {request_id} Error: {description}\nRuntime.ExitError"))
        document = {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {request_id} Error: {description}"}
        payload, errored, memory = json.dumps(document), True, None
    else:
        payload, errored, memory = result["payload"], result["errored"], result.get("max_memory_mb")
        if result.get("handler_ms") is not None:
            handler_ms = float(result["handler_ms"])
            if result.get("init_ms") is not None:   # a cold start: the runtime's start and the module's import
                init_ms = max(0.0, duration - handler_ms)
            duration = handler_ms
        _give_back(environment)
    events.append((now(), f"END RequestId: {request_id}"))
    report = report_line(request_id, duration, function.memory_size, memory or 0, init_ms)
    if failure == "timeout":
        report += "\tStatus: timeout"
    elif failure == "exit":
        report += "\tStatus: error\tError Type: Runtime.ExitError"
    events.append((now(), report))
    return Outcome(payload, errored, events, environment.log_stream)


def _read_result(environment: _Environment, until: float) -> str | None:
    """The environment's answer, or None when it did not come before ``until`` or the process ended."""
    import select

    while True:
        remaining = until - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([environment.results], [], [], min(remaining, 0.5))
        if ready:
            line = environment.results.readline()
            return line or None
        if not environment.alive():
            ready, _, _ = select.select([environment.results], [], [], 0)
            return (environment.results.readline() or None) if ready else None


def _drain(environment: _Environment, events: list[tuple[int, str]]) -> None:
    """What the environment wrote before it ended."""
    while True:
        try:
            item = environment.lines.get(timeout=1.0)
        except queue.Empty:
            return
        if item is None:
            return
        stamp, line = item
        if not line.startswith(SENTINEL):
            events.append((stamp, line.decode("utf-8", errors="replace").rstrip("\n").replace("\r", "\n")))


def stop_all() -> None:
    """Stops every execution environment (the local server stops, or this process exits)."""
    with _lock:
        environments = list(_all)
        _all.clear()
        _idle.clear()
    for environment in environments:
        environment.stop()


atexit.register(stop_all)


def report_line(request_id: str, duration_ms: float, memory_size: int, max_memory_mb: int,
                init_ms: float | None) -> str:
    """The runtime's REPORT line: billed duration rounded up to the millisecond, init duration on a cold start."""
    report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: "
              f"{max(1, int(duration_ms + 0.999))} ms\tMemory Size: {memory_size} MB\tMax Memory Used: "
              f"{max_memory_mb} MB")
    if init_ms is not None:
        report += f"\tInit Duration: {init_ms:.2f} ms"
    return report
