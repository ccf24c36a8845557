"""The local stand-in trainer's own knobs: only what has no cloud meaning (seed, threads).

Declared here, once; the local runtime's config section ``local_trainer:`` uses this model, and the
trainer process gets the section as the JSON object in the environment variable
``SCONES_LOCAL_TRAINER`` (the way a container gets its environment), so the cloud request only ever
carries the algorithm's documented hyperparameters. Errors name the variable, the key, the value
and what is expected.
"""
from __future__ import annotations

import json
import os
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from local_runtime.errors import LocalRuntimeError

__all__ = ["LOCAL_TRAINER_ENV", "LocalSettingsError", "LocalTrainerSettings", "from_environment",
           "parse_local_settings"]

LOCAL_TRAINER_ENV = "SCONES_LOCAL_TRAINER"
SEED_MAX = 10**9


class LocalSettingsError(LocalRuntimeError, ValueError):
    """``SCONES_LOCAL_TRAINER`` is not a JSON object of known knobs with valid values."""


def _no_boolean(value: object) -> object:
    if isinstance(value, bool):      # pydantic would take true as 1
        raise ValueError("a boolean is not a whole number")
    return value


Whole = Annotated[int, BeforeValidator(_no_boolean)]


class LocalTrainerSettings(BaseModel):
    """``seed``: the new layers' initial weights, the order of the mini-batches, the augmentation.
    ``threads``: the intra-op threads of the heavy work, onnxruntime's for the ImageNet features or
    torch's for the network trained from scratch. The layer trained on the features uses one: its
    tiny mini-batches gain nothing from more, and two took 36 s instead of 5 s on a busy host."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: Whole = Field(default=0, ge=0, le=SEED_MAX, description=f"a whole number in [0, {SEED_MAX}]")
    threads: Whole = Field(default=2, ge=1, le=64, description="a whole number in [1, 64]")


def parse_local_settings(text: str | None) -> LocalTrainerSettings:
    """Parses the JSON object; absent or empty means the defaults. Unknown keys are refused."""
    if not text:
        return LocalTrainerSettings()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocalSettingsError(f'{LOCAL_TRAINER_ENV} is not JSON ({exc.msg}); expected an object like {{"seed": 1}}') from None
    if not isinstance(raw, dict):
        raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} must be a JSON object, got {type(raw).__name__}")
    known = sorted(LocalTrainerSettings.model_fields)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} has unknown keys {unknown}; known: {known}")
    try:
        return LocalTrainerSettings.model_validate(raw)
    except ValidationError as exc:
        key = str(exc.errors()[0]["loc"][0])
        raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} {key} = {raw[key]!r} is invalid: expected "
                                 f"{LocalTrainerSettings.model_fields[key].description}") from None


def from_environment() -> LocalTrainerSettings:
    return parse_local_settings(os.environ.get(LOCAL_TRAINER_ENV))
