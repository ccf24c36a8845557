"""The champion gate's rule: a challenger is released only if it is not worse than the live model.

Pure (standard library and the project's error root): the CompareWithChampion Processing step (``processing/champion.py``)
applies it to both models' figures on the same test images, and tests state the rule without AWS.

The challenger passes when, beyond ``tolerance`` (``evaluation.champion_tolerance``, in [0, 0.1]):

- its accuracy is not below the champion's,
- its coverage at the confidence threshold is not below the champion's, and
- its precision among those confident images is not below the champion's (when the champion has
  any confident image; a challenger with none is then worse).

Without a champion (the group's first model) the gate passes: the absolute accuracy gate alone applies.
"""
from __future__ import annotations

from dataclasses import dataclass

from processing.errors import ProcessingError

DEFAULT_TOLERANCE = 0.02
MAX_TOLERANCE = 0.1
_ROUNDING = 1e-9         # figures computed two ways (a fraction, a mean) may differ in the last bits


class ToleranceError(ProcessingError, ValueError):
    """The tolerance is not a number in [0, MAX_TOLERANCE]."""


@dataclass(frozen=True)
class Figures:
    """One model on the test images: accuracy, and what the confidence threshold does."""
    accuracy: float
    coverage: float
    precision: float | None          # among the confident images; None when there are none
    confident: int = 0
    count: int = 0
    precision_lower_bound: float | None = None      # information only (95 % Clopper–Pearson), never gated

    def metadata(self) -> str:
        """One CustomerMetadataProperties value (letters, digits, spaces and ``_.:/=+-@`` only)."""
        text = f"accuracy={self.accuracy:.4f} coverage={self.coverage:.4f} precision={_number(self.precision)}"
        return text + f" lcb95={_number(self.precision_lower_bound)} n={self.confident}"


@dataclass(frozen=True)
class GateResult:
    passed: bool
    worse_on: tuple[str, ...]     # accuracy, coverage, precision
    message: str

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def check_tolerance(tolerance) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance <= MAX_TOLERANCE:
        raise ToleranceError(f"champion tolerance {tolerance!r} is invalid: expected a number in [0, {MAX_TOLERANCE}]")
    return float(tolerance)


def _worse(challenger: float | None, champion: float | None, tolerance: float) -> bool:
    if champion is None:
        return False
    return challenger is None or challenger + tolerance + _ROUNDING < champion


def decide(challenger: Figures, champion: Figures | None, tolerance: float, threshold: float,
           champion_label: str = "the champion") -> GateResult:
    """Whether ``challenger`` may replace ``champion``; the message names both sets of figures."""
    tolerance = check_tolerance(tolerance)
    if champion is None:
        return GateResult(True, (), f"no champion: the challenger (accuracy {challenger.accuracy:.4f}) passes on "
                                    "the absolute accuracy gate alone")
    worse = tuple(name for name, a, b in (("accuracy", challenger.accuracy, champion.accuracy),
                                          ("coverage", challenger.coverage, champion.coverage),
                                          ("precision", challenger.precision, champion.precision))
                  if _worse(a, b, tolerance))
    figures = (f"accuracy {challenger.accuracy:.4f} vs {champion.accuracy:.4f}; at confidence {threshold:g} coverage "
               f"{challenger.coverage:.4f} vs {champion.coverage:.4f}, precision {_number(challenger.precision)} vs "
               f"{_number(champion.precision)}")
    if worse:
        return GateResult(False, worse, f"the challenger is worse than {champion_label} on {', '.join(worse)} beyond "
                                        f"the tolerance {tolerance:g} (challenger vs champion: {figures})")
    return GateResult(True, (), f"the challenger is not worse than {champion_label} beyond the tolerance "
                                f"{tolerance:g} (challenger vs champion: {figures})")
