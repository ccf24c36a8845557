"""Drift scores of an image classifier: pure functions, standard library only (they run in a Lambda).

A *profile* summarises a set of inferences as histograms over fixed bins: the predicted-class
mix, the top-class confidence, the low-confidence share, the per-image brightness and the
per-pixel red/green/blue levels. The baseline profile is written at evaluation time on the test
split (``processing/baseline.py``) and carries its bin edges; the monitor builds the same profile
from captured traffic with those edges and compares feature by feature with the population
stability index (PSI) and, for the ordered features, the Kolmogorov-Smirnov distance of the
binned distributions.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PSI_FLOOR = 1e-4          # empty bins: a share this small instead of 0, so ln() stays finite
CHANNELS = ("red", "green", "blue")


@dataclass(frozen=True)
class Bins:
    """Default bin edges; the baseline stores the ones it used and the monitor reuses them."""
    confidence: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(11))
    brightness: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
    channel: tuple[float, ...] = tuple(16 * i for i in range(17))

    def to_dict(self) -> dict:
        return {"confidence": list(self.confidence), "brightness": list(self.brightness), "channel": list(self.channel)}

    @classmethod
    def from_dict(cls, raw: dict) -> "Bins":
        return cls(tuple(raw["confidence"]), tuple(raw["brightness"]), tuple(raw["channel"]))


@dataclass
class Profile:
    """Counts per bin for each feature; ``count`` inferences, ``low_confidence`` of them below threshold."""
    class_names: tuple[str, ...]
    threshold: float
    bins: Bins = field(default_factory=Bins)
    count: int = 0
    low_confidence: int = 0
    classes: list[int] = field(default_factory=list)
    confidence: list[int] = field(default_factory=list)
    brightness: list[int] = field(default_factory=list)
    channels: dict[str, list[int]] = field(default_factory=dict)
    images: int = 0

    def __post_init__(self):
        self.classes = self.classes or [0] * len(self.class_names)
        self.confidence = self.confidence or [0] * (len(self.bins.confidence) - 1)
        self.brightness = self.brightness or [0] * (len(self.bins.brightness) - 1)
        for name in CHANNELS:
            self.channels.setdefault(name, [0] * (len(self.bins.channel) - 1))

    def add_prediction(self, probabilities: Sequence[float]) -> None:
        top = max(range(len(probabilities)), key=lambda i: probabilities[i])
        self.count += 1
        self.classes[top] += 1
        self.confidence[bin_index(self.bins.confidence, probabilities[top])] += 1
        if probabilities[top] < self.threshold:
            self.low_confidence += 1

    def add_image(self, pixels: Iterable[tuple[int, int, int]]) -> None:
        """``pixels``: (r, g, b) 0-255 of one image."""
        counts = {name: self.channels[name] for name in CHANNELS}
        edges = self.bins.channel
        total, n = 0.0, 0
        for r, g, b in pixels:
            counts["red"][bin_index(edges, r)] += 1
            counts["green"][bin_index(edges, g)] += 1
            counts["blue"][bin_index(edges, b)] += 1
            total += 0.299 * r + 0.587 * g + 0.114 * b
            n += 1
        if n:
            self.brightness[bin_index(self.bins.brightness, total / n / 255.0)] += 1
            self.images += 1

    @property
    def low_confidence_share(self) -> float:
        return self.low_confidence / self.count if self.count else 0.0

    def to_dict(self) -> dict:
        return {"class_names": list(self.class_names), "threshold": self.threshold, "bins": self.bins.to_dict(),
                "count": self.count, "low_confidence": self.low_confidence, "images": self.images,
                "low_confidence_share": self.low_confidence_share, "classes": self.classes,
                "confidence": self.confidence, "brightness": self.brightness, "channels": self.channels}

    @classmethod
    def from_dict(cls, raw: dict) -> "Profile":
        return cls(tuple(raw["class_names"]), float(raw["threshold"]), Bins.from_dict(raw["bins"]), int(raw["count"]),
                   int(raw["low_confidence"]), list(raw["classes"]), list(raw["confidence"]), list(raw["brightness"]),
                   {k: list(v) for k, v in raw["channels"].items()}, int(raw.get("images", 0)))

    def empty_like(self) -> "Profile":
        return Profile(self.class_names, self.threshold, self.bins)


def bin_index(edges: Sequence[float], value: float) -> int:
    """The bin of ``value``; values outside the edges go to the first or last bin."""
    return min(max(bisect.bisect_right(edges, value) - 1, 0), len(edges) - 2)


def shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total for c in counts] if total else [0.0] * len(counts)


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two binned distributions (counts or shares): Σ (a − e)·ln(a / e)."""
    if len(expected) != len(actual):
        raise ValueError(f"PSI needs the same bins on both sides: {len(expected)} vs {len(actual)}")
    e, a = shares(expected), shares(actual)
    return sum((max(ai, PSI_FLOOR) - max(ei, PSI_FLOOR)) * math.log(max(ai, PSI_FLOOR) / max(ei, PSI_FLOOR))
               for ei, ai in zip(e, a))


def ks(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Kolmogorov-Smirnov distance of two binned distributions over the same ordered bins."""
    if len(expected) != len(actual):
        raise ValueError(f"KS needs the same bins on both sides: {len(expected)} vs {len(actual)}")
    distance, ce, ca = 0.0, 0.0, 0.0
    for ei, ai in zip(shares(expected), shares(actual)):
        ce, ca = ce + ei, ca + ai
        distance = max(distance, abs(ce - ca))
    return distance


@dataclass(frozen=True)
class FeatureScore:
    feature: str
    psi: float
    ks: float | None
    baseline: float | None = None     # a summary value where one makes sense (the low-confidence share)
    current: float | None = None


def compare(baseline: Profile, current: Profile) -> list[FeatureScore]:
    """One score per feature; features without data in ``current`` (no images decoded) are left out."""
    scores = [FeatureScore("predicted_class", psi(baseline.classes, current.classes), None),
              FeatureScore("confidence", psi(baseline.confidence, current.confidence),
                           ks(baseline.confidence, current.confidence)),
              FeatureScore("low_confidence_share",
                           psi([baseline.count - baseline.low_confidence, baseline.low_confidence],
                               [current.count - current.low_confidence, current.low_confidence]), None,
                           baseline.low_confidence_share, current.low_confidence_share)]
    if current.images and baseline.images:
        scores.append(FeatureScore("brightness", psi(baseline.brightness, current.brightness),
                                   ks(baseline.brightness, current.brightness)))
        scores += [FeatureScore(f"{name}_histogram", psi(baseline.channels[name], current.channels[name]),
                                ks(baseline.channels[name], current.channels[name])) for name in CHANNELS]
    return scores


@dataclass(frozen=True)
class DriftVerdict:
    scores: list[FeatureScore]
    threshold: float
    records: int
    min_records: int

    @property
    def enough_data(self) -> bool:
        return self.records >= self.min_records

    @property
    def violations(self) -> list[FeatureScore]:
        return [s for s in self.scores if s.psi > self.threshold] if self.enough_data else []

    @property
    def drift_score(self) -> float:
        return max((s.psi for s in self.scores), default=0.0)


def judge(baseline: Profile, current: Profile, threshold: float = 0.2, min_records: int = 30) -> DriftVerdict:
    """PSI above ``threshold`` on a feature is a violation (0.1-0.2 is usually read as moderate shift,
    above 0.2 as significant); fewer than ``min_records`` inferences never make violations."""
    return DriftVerdict(compare(baseline, current), threshold, current.count, min_records)
