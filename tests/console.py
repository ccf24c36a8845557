"""Runs the installed console scripts (the user's entry points) as real subprocesses on this checkout."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def script(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise FileNotFoundError(f"console script {name} is not installed next to {sys.executable}; "
                                "pip install -e . first")
    return str(path)


def script_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This checkout first on the path (its code, not another editable install's), no AWS endpoint leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "SCONES__"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


def run_script(name: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([script(name), *args], cwd=cwd, env=script_env(env), capture_output=True, text=True,
                          timeout=timeout)


def start_script(name: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                 **popen) -> subprocess.Popen:
    return subprocess.Popen([script(name), *args], cwd=cwd, env=script_env(env), text=True, **popen)
