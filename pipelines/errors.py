"""The pipelines package's error root (the deploy Lambda ships alone and keeps its own)."""
from __future__ import annotations

from scones_common.errors import SconesError


class PipelinesError(SconesError):
    """A pipeline or registry request that cannot be carried out as given."""


class PackageNotFoundError(PipelinesError, LookupError):
    """No model package with that version or ARN in the group."""
