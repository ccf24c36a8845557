"""Reads the local stand-in trainer's knobs from its environment.

They are declared once, as the config section ``local_trainer:`` (``LocalTrainerConfig`` in
scones_common/config.py), and reach the trainer process as the JSON object in the environment
variable ``SCONES_LOCAL_TRAINER`` (the way a container gets its environment), so the cloud
request only ever carries the algorithm's documented hyperparameters. The trainer parses the
object with the same declaration and checks, and names the variable in its errors.
"""
from __future__ import annotations

import dataclasses
import json
import os

from local_runtime.errors import LocalRuntimeError
from scones_common.config import LOCAL_TRAINER_ENV, ConfigError, LocalTrainerConfig, parse_section

__all__ = ["LOCAL_TRAINER_ENV", "LocalSettingsError", "LocalTrainerConfig", "from_environment", "parse_local_settings"]

_SECTION = "local_trainer"


class LocalSettingsError(LocalRuntimeError, ValueError):
    """``SCONES_LOCAL_TRAINER`` is not a JSON object of known knobs with valid values."""


def parse_local_settings(text: str | None) -> LocalTrainerConfig:
    """Parses the JSON object; absent or empty means the defaults. Unknown keys are refused."""
    if not text:
        return LocalTrainerConfig()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} is not JSON ({exc.msg}); expected an object like "
                                 f'{{"ensemble_size": 2}}') from None
    if not isinstance(raw, dict):
        raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} must be a JSON object, got {type(raw).__name__}")
    known = sorted(f.name for f in dataclasses.fields(LocalTrainerConfig))
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} has unknown keys {unknown}; known: {known}")
    try:
        return parse_section(LocalTrainerConfig, raw, _SECTION)
    except ConfigError as exc:
        name = exc.key.removeprefix(f"{_SECTION}.")
        raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} {name} = {exc.value!r} is invalid: expected {exc.expected} "
                                 f"(config {exc.key})") from None


def from_environment() -> LocalTrainerConfig:
    return parse_local_settings(os.environ.get(LOCAL_TRAINER_ENV))
