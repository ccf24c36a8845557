"""``scones-local serve``: the local stack of a run directory, kept up for interactive use.

Restores what earlier runs left (registry, endpoint, captures, data), prints the environment
that points boto3 and the project's CLIs at it, and saves every change before it is acknowledged
(``state.py``: a kill loses nothing answered). With it an
ML engineer approves or rejects packages with ``scones-registry`` (the approval event reaches
the deploy Lambda), runs ``scones-workflow-test`` and ``scones-capture-report`` against the
same state machine and endpoint, starts and watches pipeline executions (``run-pipeline
--environment local``), or calls the endpoint from any boto3 code. Enabled schedule rules fire
on time while it runs. The operator console (console/) runs alongside on a free loopback port; its
URL, with a login token made for this start, is ``SCONES_CONSOLE_URL`` in the env file, which is
written readable by its owner only.
"""
from __future__ import annotations

import logging
import os
import shlex
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from local_runtime import state
from local_runtime.errors import LocalRuntimeError
from local_runtime.moto_ext.model_package_updates import wait_for_deliveries
from local_runtime.run_dir import check_run_dir, hold_run_dir
from local_runtime.scheduler import Scheduler
from local_runtime.sdk_config import write_sdk_config
from local_runtime.stack import LocalStack, local_stack, wait_until_settled
from scones_common.config import ENVIRONMENT_VARIABLE, SconesConfig

log = logging.getLogger("local_runtime.serve")
ENV_FILE = "local-aws.env"
CONSOLE_URL_VARIABLE = "SCONES_CONSOLE_URL"


class NotServingError(LocalRuntimeError, RuntimeError):
    """A command needs a running ``scones-local serve`` and found none for the run directory."""


def read_env_file(path: Path) -> dict[str, str]:
    """The ``export KEY=value`` lines ``serve`` writes while it runs (and removes when it stops)."""
    if not path.exists():
        raise NotServingError(f"{path} does not exist: start `scones-local serve --run-dir {path.parent}` first "
                              "(this command talks to its local AWS APIs)")
    variables = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            try:
                variables[key] = shlex.split(value)[0] if value else ""
            except (ValueError, IndexError):
                raise NotServingError(f"{path}: the line for {key} is not a shell value; it was edited by hand? "
                                      "Restart `scones-local serve` to write it again") from None
    missing = [k for k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION") if not variables.get(k)]
    if missing:
        raise NotServingError(f"{path} lacks {', '.join(missing)}; serve writes both. It was edited by hand or is "
                              f"another program's: restart `scones-local serve --run-dir {path.parent}`")
    return variables


def environment_script(stack: LocalStack, extra: dict[str, str] | None = None) -> str:
    exports = {**stack.aws.environment(), ENVIRONMENT_VARIABLE: stack.config.environment, **(extra or {})}
    # the local key has no session token: one left from another shell would be sent with it, and refused
    return "unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN\n" + "".join(
        f"export {key}={shlex.quote(value)}\n" for key, value in sorted(exports.items()))


def write_private(path: Path, text: str) -> None:
    """Mode 0600 from the first byte (the console's login token is in it): written to a private temporary
    file and renamed over ``path``, so an older, wider file is replaced rather than reused."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)     # mkstemp: 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def serve(config: SconesConfig, run_dir: Path, stop: threading.Event, aws_port: int | None = None,
          runtime_port: int | None = None, on_ready: Callable[[LocalStack, Path], None] | None = None) -> None:
    """Runs until ``stop`` is set; every acknowledged change is in ``run_dir`` already, however it ends.

    The run directory is held for the duration: a ``scones-local run`` on it meanwhile is refused.
    """
    run_dir = check_run_dir(run_dir)
    with hold_run_dir(run_dir, "scones-local serve"):
        saved = state.read_saved(run_dir / "state")       # a damaged state is named before the stack starts
        _serve(config, run_dir, stop, aws_port, runtime_port, on_ready, saved)


def _serve(config: SconesConfig, run_dir: Path, stop: threading.Event, aws_port: int | None,
           runtime_port: int | None, on_ready: Callable[[LocalStack, Path], None] | None,
           saved: state.SavedState) -> None:
    with local_stack(config, run_dir, aws_port=aws_port, runtime_port=runtime_port) as stack:
        restored = state.restore(stack.aws, config.storage.bucket, run_dir / "state", saved)
        if restored:    # a restored endpoint is created again: it is Creating for a moment, as on SageMaker
            wait_until_settled(stack.client("sagemaker"), config.endpoint.name,
                               timeout=30 + 3 * config.endpoint.local_transition_seconds)
        from console.server import start_console  # the composition root: console never imports local_runtime

        console = start_console(stack.client, config, target=f"local stack {stack.aws.url}")
        env_file = run_dir / ENV_FILE
        sdk = write_sdk_config(run_dir, config.storage.bucket)      # the SageMaker SDK's default bucket: no STS call
        write_private(env_file, environment_script(stack, {CONSOLE_URL_VARIABLE: console.url, **sdk}))
        log.info("local AWS at %s, endpoint runtime at %s (%s)", stack.aws.url, stack.server.url,
                 f"state restored from {run_dir / 'state'}" if restored else "no saved state: empty")
        scheduler = Scheduler(stack.aws).start()
        try:
            if on_ready:
                on_ready(stack, env_file)
            stop.wait()
        finally:
            console.stop()
            scheduler.stop()
            # approvals handed to the deploy Lambda, and the endpoint update they started, end before saving
            wait_for_deliveries()
            wait_until_settled(stack.client("sagemaker"), config.endpoint.name,
                               timeout=30 + 3 * config.endpoint.local_transition_seconds)
            state.save(stack.aws, config.storage.bucket, run_dir / "state")
            env_file.unlink(missing_ok=True)
            log.info("state saved to %s", run_dir / "state")
