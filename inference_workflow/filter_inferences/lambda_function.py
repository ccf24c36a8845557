"""Passes an inference on only when its top class probability reaches THRESHOLD (default 0.93)."""
import logging
import math
import os

log = logging.getLogger()
log.setLevel(logging.INFO)

CLASS_NAMES = ("bicycle", "motorcycle")
DEFAULT_THRESHOLD = 0.93


class ThresholdConfidenceError(Exception):
    """The model is not confident enough: a human should look at this image."""


class ThresholdConfigError(ValueError):
    """THRESHOLD is not a number in [0, 1]."""


class InvalidEventError(ValueError):
    """The event is not a JSON object."""


class InvalidInferencesError(ValueError):
    """The event's 'inferences' is not a non-empty list of probabilities."""


def confidence_threshold() -> float:
    raw = os.environ.get("THRESHOLD", str(DEFAULT_THRESHOLD))
    try:
        value = float(raw)
    except ValueError:
        raise ThresholdConfigError(f"THRESHOLD={raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ThresholdConfigError(f"THRESHOLD={raw!r} is not a number in [0, 1]")
    return value


def _json_type(value) -> str:
    """The JSON name of a decoded value's type, for messages about the event's shape."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def _is_probability(value) -> bool:
    """A JSON number in [0, 1]; booleans, NaN and infinities are not probabilities."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def lambda_handler(event, context):
    threshold = confidence_threshold()
    if not isinstance(event, dict):
        raise InvalidEventError(f"the event must be a JSON object with 'inferences'; got a JSON {_json_type(event)}")
    inferences = event.get("inferences")
    if not isinstance(inferences, list) or not inferences or not all(_is_probability(p) for p in inferences):
        raise InvalidInferencesError(f"'inferences' must be a non-empty list of probabilities (numbers in [0, 1]), "
                                     f"got {inferences!r}")
    confidence = max(inferences)
    best = inferences.index(confidence)
    label = CLASS_NAMES[best] if best < len(CLASS_NAMES) else str(best)
    if confidence < threshold:
        raise ThresholdConfidenceError(f"{event.get('s3_key', 'image')}: top class {label} at {confidence:.4f} "
                                       f"is below the threshold {threshold}")
    return {**event, "predicted_label": label, "confidence": confidence}
