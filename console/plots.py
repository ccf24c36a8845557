"""The console's plots as inline SVG markup (matplotlib, Agg, ``format="svg"``).

Inline SVG rather than PNG files: a page is one response (nothing else to authenticate or cache),
text stays selectable, and plots scale with the window. Figures are built with the object API
(``matplotlib.figure.Figure``), never pyplot, whose global state is not for a threaded server; a
lock serialises drawing all the same (matplotlib's font cache and text layout are shared).
Text is emitted as ``<text>`` (``svg.fonttype: none``), which keeps a plot a few kilobytes.
"""
from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"     # only affects SVG output

from matplotlib.figure import Figure  # noqa: E402  (after the backend is chosen)

_LOCK = threading.Lock()
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_SIZE = re.compile(r'(<svg[^>]*?)\s(width|height)="[^"]*"')
THRESHOLD_COLOUR = "#c5221f"
COLOURS = ("#1a73e8", "#e8710a", "#188038", "#9334e6", "#d01884", "#5f6368")


def to_svg(fig: Figure, label: str) -> str:
    """The figure as an ``<svg>`` element to put in a page: no XML prologue, sized by CSS, with a label."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    markup = _PROLOGUE.sub("", buffer.getvalue(), count=1)
    for _ in range(2):
        markup = _SIZE.sub(r"\1", markup, count=1)
    safe_label = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return markup.replace("<svg ", f'<svg class="plot" role="img" aria-label="{safe_label}" ', 1)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    fig.patch.set_alpha(0)
    return fig


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.25)
    ax.tick_params(labelsize=8)


def confusion_matrix(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """Counts of true (rows) × predicted (columns) classes on the test split."""
    with _LOCK:
        fig = _figure(3.6, 3.0)
        ax = fig.add_subplot()
        top = max((max(row) for row in matrix), default=1) or 1
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=top)
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", fontsize=12,
                        color="white" if count > top / 2 else "#202124")
        ax.set_xticks(range(len(labels)), labels, fontsize=9)
        ax.set_yticks(range(len(labels)), labels, fontsize=9)
        ax.set_xlabel("predicted", fontsize=9)
        ax.set_ylabel("true", fontsize=9)
        ax.set_title("Confusion matrix (test split)", fontsize=10)
        return to_svg(fig, "confusion matrix")


def coverage_precision(curves: Mapping[str, Mapping[str, Any]], threshold: float) -> str:
    """Coverage (share routed without a human) and precision of the confident, by threshold; one pair of
    lines per curve (one version, or two side by side in the compare view)."""
    with _LOCK:
        fig = _figure(6.0, 3.4)
        ax = fig.add_subplot()
        for i, (name, curve) in enumerate(curves.items()):
            colour = COLOURS[i % len(COLOURS)]
            prefix = f"{name}: " if len(curves) > 1 else ""
            ax.plot(curve["thresholds"], curve["coverage"], color=colour, label=f"{prefix}coverage")
            ax.plot(curve["thresholds"], [math.nan if p is None else p for p in curve["precision"]], color=colour,
                    linestyle="--", label=f"{prefix}precision")
        ax.axvline(threshold, color=THRESHOLD_COLOUR, linestyle=":", label=f"threshold {threshold}")
        ax.set(xlabel="confidence threshold", ylim=(0, 1.02))
        ax.set_title("Coverage and precision by threshold (test split)", fontsize=10)
        _style(ax)
        ax.legend(fontsize=7, loc="lower left")
        return to_svg(fig, "coverage and precision by threshold")


def reliability(calibration: Mapping[str, Any], threshold: float) -> str:
    """Calibration: each bin's mean confidence against its accuracy, with the bin counts."""
    with _LOCK:
        fig = _figure(4.6, 3.4)
        ax = fig.add_subplot()
        bins = [b for b in calibration.get("bins", []) if b.get("count")]
        lowest = calibration["bins"][0]["lower"] if calibration.get("bins") else 0.5
        ax.plot([lowest, 1], [lowest, 1], color="#9e9e9e", linestyle=":", label="perfectly calibrated")
        ax.bar([(b["lower"] + b["upper"]) / 2 for b in bins], [b["accuracy"] for b in bins],
               width=[b["upper"] - b["lower"] for b in bins], alpha=0.35, color=COLOURS[0], edgecolor="#3c4043",
               label="accuracy in bin")
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color=COLOURS[0], markersize=4,
                label="mean confidence → accuracy")
        for b in bins:
            ax.annotate(str(b["count"]), ((b["lower"] + b["upper"]) / 2, 0.03), ha="center", fontsize=7)
        ax.axvline(threshold, color=THRESHOLD_COLOUR, linestyle=":", label=f"threshold {threshold}")
        ax.set(xlabel="top-class probability (counts at the bottom)", ylabel="accuracy", xlim=(lowest, 1),
               ylim=(0, 1.02))
        ax.set_title(f"Calibration (ECE {calibration.get('ece', math.nan):.3f})", fontsize=10)
        _style(ax)
        ax.legend(fontsize=7, loc="upper left")
        return to_svg(fig, "calibration")


def time_series(series: Mapping[str, tuple[Sequence[datetime], Sequence[float]]], title: str, ylabel: str,
                start: datetime, end: datetime, threshold: float | None = None) -> str:
    """One line per named series (e.g. per variant) over the whole window ``start``–``end`` (a lone data point
    is not stretched over years); an empty plot says there is no data in the window."""
    import matplotlib.dates as mdates

    with _LOCK:
        fig = _figure(4.2, 2.5)
        ax = fig.add_subplot()
        drawn = False
        top = threshold or 0.0
        for i, (name, (times, values)) in enumerate(series.items()):
            if times:
                ax.plot(list(times), list(values), marker="o", markersize=3, color=COLOURS[i % len(COLOURS)],
                        label=name)
                drawn = True
                top = max(top, max(values))
        if threshold is not None:
            ax.axhline(threshold, color=THRESHOLD_COLOUR, linestyle=":", label=f"alarm above {threshold:g}")
        if not drawn:
            ax.text(0.5, 0.5, "no data in this window", ha="center", va="center", transform=ax.transAxes,
                    color="#5f6368")
        if drawn or threshold is not None:
            ax.legend(fontsize=7)
        ax.set_xlim(start, end)
        ax.set_ylim(0, top * 1.15 if top > 0 else 1)
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(title, fontsize=10)
        _style(ax)
        return to_svg(fig, title)


def confidence_histogram(confidences: Mapping[str, Sequence[float]], threshold: float) -> str:
    """Captured top-class confidence by predicted class, with the routing threshold."""
    with _LOCK:
        fig = _figure(6.0, 3.0)
        ax = fig.add_subplot()
        bins = [0.5 + 0.025 * i for i in range(21)]
        for i, (label, values) in enumerate(confidences.items()):
            ax.hist(values, bins=bins, alpha=0.6, color=COLOURS[i % len(COLOURS)], label=label)
        ax.axvline(threshold, color=THRESHOLD_COLOUR, linestyle=":", label=f"threshold {threshold}")
        ax.set(xlabel="top-class probability", ylabel="captured inferences")
        ax.set_title("Confidence by predicted class", fontsize=10)
        _style(ax)
        ax.legend(fontsize=7, loc="upper left")
        return to_svg(fig, "confidence by predicted class")


def drift_scores(points: Sequence[tuple[datetime, Mapping[str, float]]], psi_threshold: float) -> str:
    """Each feature's population stability index per drift monitor run."""
    import matplotlib.dates as mdates

    with _LOCK:
        fig = _figure(7.0, 3.0)
        ax = fig.add_subplot()
        features = sorted({name for _, scores in points for name in scores})
        for i, feature in enumerate(features):
            ax.plot([t for t, _ in points], [scores.get(feature, math.nan) for _, scores in points], marker="o",
                    markersize=3, color=COLOURS[i % len(COLOURS)], label=feature)
        ax.axhline(psi_threshold, color=THRESHOLD_COLOUR, linestyle=":", label=f"violation above {psi_threshold}")
        if points:
            first, last = min(t for t, _ in points), max(t for t, _ in points)
            pad = max((last - first) * 0.05, timedelta(minutes=30))       # one report is not stretched over years
            ax.set_xlim(first - pad, last + pad)
            locator = mdates.AutoDateLocator(maxticks=6)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_ylim(0, max([psi_threshold * 1.3, *(v * 1.15 for _, scores in points for v in scores.values())]))
        ax.set_ylabel("PSI", fontsize=8)
        ax.set_title("Drift monitor: PSI per feature", fontsize=10)
        _style(ax)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return to_svg(fig, "drift scores")
