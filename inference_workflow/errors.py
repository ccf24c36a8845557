"""The inference_workflow package's error root for its tools (test cases, capture report).

The three Lambdas ship alone, without ``scones_common``: their exceptions stay their own.
"""
from __future__ import annotations

from scones_common.errors import SconesError


class InferenceWorkflowError(SconesError):
    """A workflow tool's input (prefix, capture files) that cannot be used."""
