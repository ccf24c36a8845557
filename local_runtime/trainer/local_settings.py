"""Knobs of the local stand-in trainer that the built-in algorithm does not have.

They come from the config section ``local_trainer:`` and reach the trainer process as the JSON
object in the environment variable ``SCONES_LOCAL_TRAINER`` (the way a container gets its
environment), so the cloud request only ever carries the algorithm's documented hyperparameters.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields

from local_runtime.errors import LocalRuntimeError

LOCAL_TRAINER_ENV = "SCONES_LOCAL_TRAINER"


class LocalSettingsError(LocalRuntimeError, ValueError):
    """``SCONES_LOCAL_TRAINER`` is not a JSON object of known knobs with valid values."""


@dataclass(frozen=True)
class LocalTrainerSettings:
    """Defaults are the variant chosen on validation (README "Trainer": the table of what was tried)."""
    label_smoothing: float = 0.0      # 0.1 caps a 2-class model near 0.95 confidence: the 0.93 threshold becomes a cliff
    seed: int = 0
    ensemble_size: int = 1            # members trained one after another, exported as one ONNX graph
    width: int = 16                   # channels of the first stage; the next two stages are 2× and 4×
    ema_decay: float = 0.99           # exponential moving average of the weights per step (0 = off)
    flip_tta: bool = True             # the exported graph averages the image and its mirror
    temperature_scaling: bool = False # one temperature fitted on the validation split, baked into the graph
    channels_last: bool = True        # ~1.3× faster convolutions on CPU
    threads: int = 2                  # torch intra-op threads; 1 wastes less CPU when other processes hold a core


_RULES = {
    "label_smoothing": (lambda v: isinstance(v, (int, float)) and 0 <= v < 0.5, "a number in [0, 0.5)"),
    "seed": (lambda v: isinstance(v, int) and v >= 0, "a whole number >= 0"),
    "ensemble_size": (lambda v: isinstance(v, int) and 1 <= v <= 8, "a whole number in [1, 8]"),
    "width": (lambda v: isinstance(v, int) and 4 <= v <= 128, "a whole number in [4, 128]"),
    "ema_decay": (lambda v: isinstance(v, (int, float)) and 0 <= v < 1, "a number in [0, 1)"),
    "flip_tta": (lambda v: isinstance(v, bool), "true or false"),
    "temperature_scaling": (lambda v: isinstance(v, bool), "true or false"),
    "channels_last": (lambda v: isinstance(v, bool), "true or false"),
    "threads": (lambda v: isinstance(v, int) and 1 <= v <= 64, "a whole number in [1, 64]"),
}


def parse_local_settings(text: str | None) -> LocalTrainerSettings:
    """Parses the JSON object; absent or empty means the defaults. Unknown keys are refused."""
    if not text:
        return LocalTrainerSettings()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} is not JSON ({exc.msg}); expected an object like "
                                 f'{{"ensemble_size": 2}}') from None
    if not isinstance(raw, dict):
        raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} must be a JSON object, got {type(raw).__name__}")
    known = {f.name for f in fields(LocalTrainerSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} has unknown keys {unknown}; known: {sorted(known)}")
    for name, value in raw.items():
        accepts, expected = _RULES[name]
        if isinstance(value, bool) and expected != "true or false" or not accepts(value):
            raise LocalSettingsError(f"{LOCAL_TRAINER_ENV} {name} = {value!r} is invalid: expected {expected}")
    return LocalTrainerSettings(**raw)


def from_environment() -> LocalTrainerSettings:
    return parse_local_settings(os.environ.get(LOCAL_TRAINER_ENV))
