"""How sure a precision is: the exact (Clopper–Pearson) one-sided lower confidence bound of a proportion.

The precision at the confidence threshold is ``correct / confident``: a proportion measured on a few
hundred test images. Its 95 % lower bound is the smallest true precision that would still make the
observed count (or better) at least 5 % likely: the ``p`` solving ``P(X >= correct | confident, p) = 0.05``
for a binomial ``X``, which is the ``alpha`` quantile of Beta(correct, confident − correct + 1). This is
the one-sided Clopper–Pearson bound (a two-sided 95 % interval's lower end is the 97.5 % one-sided bound,
slightly lower). Computed here by bisection on the exact binomial tail in pure Python (standard library
only: the Processing image and the registry need nothing more; scipy is not one of our dependencies).

With no errors the bound has a closed form, ``alpha ** (1 / n)``, hence :func:`images_needed`: how many
confident images without an error it takes to reach a bound.
"""
from __future__ import annotations

import math

from processing.errors import ProcessingError

CONFIDENCE_LEVEL = 0.95
METHOD = "Clopper-Pearson one-sided"
_ITERATIONS = 200          # bisection halvings: far below float resolution long before that


class BoundInputError(ProcessingError, ValueError):
    """Counts that are not whole numbers with 0 <= successes <= trials, or a level outside (0, 1)."""


def _check(successes: int, trials: int, level: float) -> None:
    if isinstance(successes, bool) or isinstance(trials, bool) or not isinstance(successes, int) \
            or not isinstance(trials, int) or not 0 <= successes <= trials:
        raise BoundInputError(f"expected whole numbers 0 <= successes <= trials, got {successes!r} of {trials!r}")
    if not 0 < level < 1:
        raise BoundInputError(f"confidence level {level!r} is outside (0, 1)")


def binomial_upper_tail(successes: int, trials: int, p: float) -> float:
    """``P(X >= successes)`` for ``X ~ Binomial(trials, p)``, summed in log space (no overflow for large counts)."""
    if successes <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_terms = [math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1) + k * log_p
                 + (trials - k) * log_q for k in range(successes, trials + 1)]
    top = max(log_terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in log_terms))


def lower_bound(successes: int, trials: int, level: float = CONFIDENCE_LEVEL) -> float | None:
    """The one-sided Clopper–Pearson lower bound of ``successes / trials`` at ``level``; None without trials.

    0 successes give 0; ``trials`` successes give ``(1 - level) ** (1 / trials)`` exactly.
    """
    _check(successes, trials, level)
    if trials == 0:
        return None
    if successes == 0:
        return 0.0
    alpha = 1.0 - level
    if successes == trials:
        return alpha ** (1.0 / trials)
    low, high = 0.0, 1.0         # the tail P(X >= successes) increases with p from 0 to 1
    for _ in range(_ITERATIONS):
        middle = (low + high) / 2
        if binomial_upper_tail(successes, trials, middle) < alpha:
            low = middle
        else:
            high = middle
        if high - low < 1e-15:
            break
    return (low + high) / 2


def images_needed(bound: float, level: float = CONFIDENCE_LEVEL) -> int:
    """Fewest confident images, all correct, whose lower bound at ``level`` reaches ``bound``.

    Solves ``(1 - level) ** (1 / n) >= bound``: ``n >= ln(1 - level) / ln(bound)``. Each error needs more.
    """
    if not 0 < bound < 1:
        raise BoundInputError(f"bound {bound!r} is outside (0, 1)")
    if not 0 < level < 1:
        raise BoundInputError(f"confidence level {level!r} is outside (0, 1)")
    n = math.ceil(math.log(1.0 - level) / math.log(bound) - 1e-12)
    while (1.0 - level) ** (1.0 / n) < bound:       # guard the rounding of the logarithms
        n += 1
    return n


def precision_bound(correct: int, confident: int, level: float = CONFIDENCE_LEVEL) -> dict:
    """What evaluation.json records beside the precision: the bound, the counts behind it and how it was made."""
    return {"lower_bound": lower_bound(correct, confident, level), "confidence_level": level, "method": METHOD,
            "confident": confident, "correct": correct}
