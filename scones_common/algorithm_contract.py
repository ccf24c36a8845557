"""The built-in ``image-classification`` algorithm's documented hyperparameters, as one table.

Source: the SageMaker developer guide, "Image Classification Hyperparameters" (IC-Hyperparameter):
exactly these 29 names, with the valid values and defaults documented there. The algorithm
validates its ``hyperparameters.json`` against a schema before training and fails the job with a
``ClientError`` for an unknown name, a missing required one or an invalid value; the messages
here follow the wording of the built-in algorithms' validator ("Additional hyperparameters are
not allowed ('x' was unexpected)", "No value(s) were specified for 'x' which are required
hyperparameter(s)", "The value 'v' is not valid for the 'x' hyperparameter which …").

Used by the config loader (its hyperparameter rules), the pipeline (how values are written) and
the local stand-in trainer (what it accepts), so the three cannot drift apart. No torch here.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from scones_common.errors import SconesError

IMAGE_CONTENT_TYPES = ("image/png", "image/jpeg", "application/x-image")


class HyperparameterValidationError(SconesError, ValueError):
    """The algorithm's hyperparameter validation failed: the training job fails at start."""

    @property
    def failure_reason(self) -> str:
        """What DescribeTrainingJob's FailureReason says for a built-in algorithm's validation error."""
        return f"ClientError: {self} (caused by ValidationError)"


@dataclass(frozen=True)
class PositiveInt:
    minimum: int = 1

    @property
    def expects(self) -> str:
        return "a positive integer" if self.minimum == 1 else f"a positive integer larger than {self.minimum - 1}"

    def parse(self, text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text) or int(text) < self.minimum:
            raise ValueError(text)
        return int(text)


@dataclass(frozen=True)
class Real:
    low: float = 0.0
    high: float = 1.0

    @property
    def expects(self) -> str:
        return f"a float between {self.low:g} and {self.high:g}"

    def parse(self, text: str) -> float:
        value = float(text)
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise ValueError(text)
        return value


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    @property
    def expects(self) -> str:
        return "one of the following: " + ", ".join(f"'{o}'" for o in self.options)

    def parse(self, text: str) -> str:
        if text not in self.options:
            raise ValueError(text)
        return text


@dataclass(frozen=True)
class IntegerList:
    """Comma-separated positive integers: ``image_shape`` ('3,32,32') and ``lr_scheduler_step`` ('10, 20')."""

    length: int | None
    description: str

    @property
    def expects(self) -> str:
        return self.description

    def parse(self, text: str) -> tuple[int, ...]:
        parts = [p.strip() for p in text.split(",")]
        if any(not re.fullmatch(r"[0-9]+", p) or int(p) < 1 for p in parts):
            raise ValueError(text)
        if self.length is not None and len(parts) != self.length:
            raise ValueError(text)
        return tuple(int(p) for p in parts)


Rule = PositiveInt | Real | Choice | IntegerList


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    rule: Rule
    required: bool = False
    default: str | None = None      # the documented default; None where the doc says "no default value"


FLAG = Choice(("0", "1"))
BOOLEAN = Choice(("True", "False"))
NUM_LAYERS = Choice(tuple(str(n) for n in (18, 34, 50, 101, 152, 200, 20, 32, 44, 56, 110)))

HYPERPARAMETERS: dict[str, Hyperparameter] = {h.name: h for h in (
    Hyperparameter("num_classes", PositiveInt(), required=True),
    Hyperparameter("num_training_samples", PositiveInt(), required=True),
    Hyperparameter("augmentation_type", Choice(("crop", "crop_color", "crop_color_transform"))),
    Hyperparameter("beta_1", Real(), default="0.9"),
    Hyperparameter("beta_2", Real(), default="0.999"),
    Hyperparameter("checkpoint_frequency", PositiveInt()),
    Hyperparameter("early_stopping", BOOLEAN, default="False"),
    Hyperparameter("early_stopping_min_epochs", PositiveInt(), default="10"),
    Hyperparameter("early_stopping_patience", PositiveInt(), default="5"),
    Hyperparameter("early_stopping_tolerance", Real(), default="0.0"),
    Hyperparameter("epochs", PositiveInt(), default="30"),
    Hyperparameter("eps", Real(), default="1e-8"),
    Hyperparameter("gamma", Real(), default="0.9"),
    Hyperparameter("image_shape", IntegerList(3, "a string 'num_channels,height,width' of positive integers"),
                   default="3,224,224"),
    Hyperparameter("kv_store", Choice(("dist_sync", "dist_async"))),
    Hyperparameter("learning_rate", Real(), default="0.1"),
    Hyperparameter("lr_scheduler_factor", Real(), default="0.1"),
    Hyperparameter("lr_scheduler_step", IntegerList(None, "a string of epochs delimited by ',' such as '10,20'")),
    Hyperparameter("mini_batch_size", PositiveInt(), default="32"),
    Hyperparameter("momentum", Real(), default="0.9"),
    Hyperparameter("multi_label", FLAG, default="0"),
    Hyperparameter("num_layers", NUM_LAYERS, default="152"),
    Hyperparameter("optimizer", Choice(("sgd", "adam", "rmsprop", "nag")), default="sgd"),
    Hyperparameter("precision_dtype", Choice(("float32", "float16")), default="float32"),
    Hyperparameter("resize", PositiveInt()),
    Hyperparameter("top_k", PositiveInt(minimum=2)),
    Hyperparameter("use_pretrained_model", FLAG, default="0"),
    Hyperparameter("use_weighted_loss", FLAG, default="0"),
    Hyperparameter("weight_decay", Real(), default="0.0001"),
)}


def to_text(value: object) -> str:
    """How a typed value is written into ``HyperParameters`` (all strings; booleans as True/False)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def value_error(name: str, text: str) -> str | None:
    """The algorithm's message for one value, or None when it is valid (the name must be documented)."""
    rule = HYPERPARAMETERS[name].rule
    try:
        rule.parse(text)
    except ValueError:
        verb = "accepts" if isinstance(rule, Choice) else "expects"
        return f"The value '{text}' is not valid for the '{name}' hyperparameter which {verb} {rule.expects}"
    return None


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def validate(raw: Mapping[str, str], content_types: Mapping[str, str] | None = None) -> dict[str, object]:
    """Checks ``hyperparameters.json`` as the algorithm does; returns every documented name's typed value.

    ``content_types`` maps channel name to ContentType (``inputdataconfig.json``): with image
    content types ``resize`` is required, as documented. Names the job left out take their
    documented default (None where there is none).
    """
    unknown = sorted(set(raw) - set(HYPERPARAMETERS))
    if unknown:
        verb = "was" if len(unknown) == 1 else "were"
        raise HyperparameterValidationError(f"Additional hyperparameters are not allowed ({_quoted(unknown)} {verb} unexpected)")
    not_text = sorted(name for name, value in raw.items() if not isinstance(value, str))
    if not_text:
        name = not_text[0]
        raise HyperparameterValidationError(f"The value '{raw[name]}' is not valid for the '{name}' hyperparameter "
                                            "which expects a string")
    required = [h.name for h in HYPERPARAMETERS.values() if h.required]
    image_channels = sorted(c for c, t in (content_types or {}).items() if t.split(";")[0].strip() in IMAGE_CONTENT_TYPES)
    if image_channels:
        required.append("resize")
    missing = [name for name in required if name not in raw]
    if missing:
        why = f" (channels {_quoted(image_channels)} have image content types)" if "resize" in missing else ""
        raise HyperparameterValidationError(f"No value(s) were specified for {_quoted(missing)} which are required "
                                            f"hyperparameter(s){why}")
    for name in sorted(raw):
        problem = value_error(name, raw[name])
        if problem:
            raise HyperparameterValidationError(problem)
    values = {name: (h.rule.parse(raw[name]) if name in raw else (h.rule.parse(h.default) if h.default else None))
              for name, h in HYPERPARAMETERS.items()}
    frequency, epochs = values["checkpoint_frequency"], values["epochs"]
    if frequency is not None and frequency > epochs:
        raise HyperparameterValidationError(
            f"The value '{raw['checkpoint_frequency']}' is not valid for the 'checkpoint_frequency' hyperparameter "
            f"which expects a positive integer no greater than epochs ({epochs})")
    return values
