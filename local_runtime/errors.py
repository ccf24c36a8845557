"""The local runtime's error root: a run directory, state file, definition or job input it cannot use."""
from __future__ import annotations

from scones_common.errors import SconesError


class LocalRuntimeError(SconesError):
    """Something about the local run the user can fix: run directory, ports, saved state, step inputs."""
