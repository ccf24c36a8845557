"""Runs ``buildspec.yml``'s phases on this machine against the local stack, as CodeBuild would run them.

The environment is what CodeBuild gives the build: the process environment, the buildspec's
``env.variables``, ``CODEBUILD_SRC_DIR`` / ``CODEBUILD_BUILD_ID`` / ``CODEBUILD_RESOLVED_SOURCE_VERSION``,
then the local stack's endpoint variables (``<run-dir>/local-aws.env``, written by ``scones-local
serve``) and ``SCONES_ENVIRONMENT=local``, so the build talks to the laptop instead of AWS.

Adapted, and why: the ``install`` phase is skipped (it builds a fresh ``.venv`` from the public
index; here the project is already installed in the running interpreter's environment) and the
commands' ``.venv/bin/`` prefix names that environment's bin directory instead. ``runtime-versions``
is ignored. Phases run in order in ``/bin/sh``; the first failing command fails its phase and the
build, as with CodeBuild's default ``on-failure: ABORT``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from local_runtime.errors import LocalRuntimeError
from local_runtime.serve import read_env_file

PHASES = ("install", "pre_build", "build", "post_build")
SKIPPED = ("install",)


class BuildspecError(LocalRuntimeError, RuntimeError):
    """The buildspec cannot be run locally: missing, malformed, or no local stack to run against."""


@dataclass
class PhaseResult:
    name: str
    commands: list[str] = field(default_factory=list)
    exit_code: int = 0
    skipped: bool = False


@dataclass
class BuildResult:
    phases: list[PhaseResult]
    artifacts_missing: list[str]

    @property
    def succeeded(self) -> bool:
        return all(p.exit_code == 0 for p in self.phases) and not self.artifacts_missing


def load_buildspec(path: Path) -> dict:
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BuildspecError(f"cannot read {path}: {exc}") from None
    if not isinstance(spec, dict) or str(spec.get("version")) != "0.2" or not isinstance(spec.get("phases"), dict):
        raise BuildspecError(f"{path} is not a version 0.2 buildspec with phases")
    unknown = sorted(set(spec["phases"]) - set(PHASES))
    if unknown:
        raise BuildspecError(f"{path}: unknown phases {unknown}; CodeBuild knows {list(PHASES)}")
    return spec


def check_phases(phases: tuple[str, ...], spec: dict, path: Path) -> None:
    """``--phases`` names phases this buildspec has and the local build runs; anything else would run nothing."""
    unknown = [p for p in phases if p not in PHASES]
    if unknown or not phases:
        raise BuildspecError(f"--phases {','.join(phases)!r}: {unknown or 'no phase'} is not a CodeBuild phase; "
                             f"choose from {', '.join(p for p in PHASES if p not in SKIPPED)}")
    skipped = [p for p in phases if p in SKIPPED]
    if skipped:
        raise BuildspecError(f"--phases {','.join(skipped)}: skipped locally (it builds a fresh .venv from the "
                             "public index; the project is already installed here)")
    absent = [p for p in phases if p not in spec["phases"]]
    if absent:
        raise BuildspecError(f"--phases {','.join(absent)}: {path} has no such phase (it has "
                             f"{', '.join(spec['phases'])})")


def local_command(command: str, bin_dir: Path) -> str:
    return command.replace(".venv/bin/", f"{bin_dir}/")


def build_environment(spec: dict, env_file: Path, source_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    from pipelines.scones.launch import git_commit

    env = {**os.environ, **{k: str(v) for k, v in (spec.get("env", {}).get("variables") or {}).items()}}
    env.update({"CODEBUILD_SRC_DIR": str(source_dir), "CODEBUILD_BUILD_ID": f"scones-local:{uuid.uuid4()}",
                "CODEBUILD_RESOLVED_SOURCE_VERSION": git_commit(), "CODEBUILD_LOCAL": "true"})
    env.update(read_env_file(env_file))
    env["SCONES_ENVIRONMENT"] = "local"
    env.update(extra or {})
    return env


def run_buildspec(buildspec: Path, env_file: Path, phases: tuple[str, ...] | None = None,
                  extra_env: dict[str, str] | None = None, source_dir: Path | None = None) -> BuildResult:
    spec = load_buildspec(buildspec)
    if phases is not None:
        check_phases(phases, spec, buildspec)
    source_dir = source_dir or buildspec.parent
    env = build_environment(spec, env_file, source_dir, extra_env)
    bin_dir = Path(sys.executable).parent
    wanted = phases or tuple(p for p in PHASES if p not in SKIPPED)
    results = []
    for name in PHASES:
        commands = (spec["phases"].get(name) or {}).get("commands") or []
        if name not in spec["phases"]:
            continue
        result = PhaseResult(name, [local_command(c, bin_dir) for c in commands], skipped=name not in wanted)
        results.append(result)
        if result.skipped:
            continue
        sys.stderr.write(f"[{name}]\n")
        for command in result.commands:
            sys.stderr.write(f"  $ {command}\n")
            sys.stderr.flush()
            result.exit_code = subprocess.run(["/bin/sh", "-c", command], cwd=source_dir, env=env).returncode
            if result.exit_code:
                sys.stderr.write(f"  phase {name} failed: exit {result.exit_code}\n")
                return BuildResult(results, [])
    ran_build = any(p.name == "build" and not p.skipped for p in results)
    files = (spec.get("artifacts") or {}).get("files") or []
    missing = [f for f in files if ran_build and not list(source_dir.glob(f))]
    return BuildResult(results, missing)
