"""Plots what the endpoint's data capture recorded: every record of every .jsonl file.

    scones-capture-report --capture-uri s3://bucket/prefix/data-capture/<endpoint>/ --out report/

Writes confidence_over_time.png, confidence_histogram.png, captured_images.png and index.html.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from processing.staging import CLASS_NAMES
from scones_common.logs import setup_logging
from scones_common.s3uri import InvalidS3UriError, parse_s3_uri

log = logging.getLogger("capture_report")


class CaptureFormatError(ValueError):
    """A capture line is not a Model Monitor record."""


class NoCaptureError(LookupError):
    """Nothing was captured under the given prefix."""


@dataclass(frozen=True)
class CapturedInference:
    time: datetime
    probabilities: tuple[float, ...]
    image: bytes
    content_type: str
    source: str

    @property
    def confidence(self) -> float:
        return max(self.probabilities)

    @property
    def label(self) -> str:
        index = self.probabilities.index(self.confidence)
        return CLASS_NAMES[index] if index < len(CLASS_NAMES) else str(index)


def _decode(part: dict) -> bytes | str:
    if part.get("encoding") == "BASE64":
        return base64.b64decode(part["data"])
    return part["data"]


def parse_record(line: str, source: str) -> CapturedInference:
    try:
        record = json.loads(line)
        data = record["captureData"]
        output = _decode(data["endpointOutput"])
        probabilities = tuple(float(p) for p in json.loads(output))
        when = datetime.fromisoformat(record["eventMetadata"]["inferenceTime"].replace("Z", "+00:00"))
        image = _decode(data["endpointInput"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CaptureFormatError(f"{source}: not a data capture record ({exc})") from None
    return CapturedInference(when, probabilities, image if isinstance(image, bytes) else image.encode(),
                             data["endpointInput"].get("observedContentType", ""), source)


def parse_jsonl(text: str, source: str) -> list[CapturedInference]:
    return [parse_record(line, f"{source}:{n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_capture(s3, capture_uri: str) -> list[CapturedInference]:
    location = parse_s3_uri(capture_uri)
    records: list[CapturedInference] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".jsonl"):
                body = s3.get_object(Bucket=location.bucket, Key=obj["Key"])["Body"].read().decode()
                records += parse_jsonl(body, obj["Key"])
    return sorted(records, key=lambda r: r.time)


@dataclass(frozen=True)
class DriftPoint:
    """One drift monitor run: when its window ended, the largest PSI and each feature's PSI."""
    time: datetime
    drift_score: float
    features: dict
    violations: int


def read_drift_reports(s3, reports_uri: str) -> list[DriftPoint]:
    """The drift monitor's reports under ``<report prefix>/<endpoint>/``, oldest first."""
    location = parse_s3_uri(reports_uri)
    points = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".json"):
                report = json.loads(s3.get_object(Bucket=location.bucket, Key=obj["Key"])["Body"].read())
                if not report.get("enough_data"):
                    continue
                points.append(DriftPoint(datetime.fromisoformat(report["window"]["end"]), float(report["drift_score"]),
                                         {f["feature"]: f["psi"] for f in report["features"]},
                                         len(report["violations"])))
    return sorted(points, key=lambda p: p.time)


def draw_drift(points: list[DriftPoint], psi_threshold: float, out: Path) -> str:
    """drift_over_time.png: each feature's PSI per monitor run, with the violation threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for feature in sorted({f for p in points for f in p.features}):
        ax.plot([p.time for p in points], [p.features.get(feature, float("nan")) for p in points], marker="o",
                label=feature)
    ax.axhline(psi_threshold, color="red", linestyle="--", label=f"violation above PSI {psi_threshold}")
    ax.set(title="Drift scores over time (drift monitor runs)", ylabel="population stability index")
    ax.legend(fontsize=7, loc="upper left")
    fig.savefig(out / "drift_over_time.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    violated = sum(p.violations > 0 for p in points)
    return (f'<h2>Drift</h2><p>{len(points)} monitor runs, {violated} with violations.</p>'
            '<img src="drift_over_time.png"><br>')


def draw_report(records: list[CapturedInference], threshold: float, out_dir: str | Path, max_images: int = 24,
                drift: list[DriftPoint] | None = None, psi_threshold: float = 0.2) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from PIL import Image

    if not records:
        raise NoCaptureError("no captured inferences to plot: check --capture-uri, or invoke the endpoint first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    colors = {"bicycle": "tab:blue", "motorcycle": "tab:orange"}

    fig, ax = plt.subplots(figsize=(9, 4))
    for label in CLASS_NAMES:
        points = [r for r in records if r.label == label]
        ax.scatter([r.time for r in points], [r.confidence for r in points], s=14, label=label, color=colors[label])
    ax.axhline(threshold, color="red", linestyle="--", label=f"threshold {threshold}")
    ax.set(title="Endpoint confidence over time", ylabel="top-class probability", ylim=(0.45, 1.02))
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.legend(loc="lower left")
    fig.savefig(out / "confidence_over_time.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = [0.5 + 0.025 * i for i in range(21)]
    for label in CLASS_NAMES:
        ax.hist([r.confidence for r in records if r.label == label], bins=bins, alpha=0.6, label=label, color=colors[label])
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold}")
    ax.set(title="Confidence by predicted class", xlabel="top-class probability", ylabel="inferences")
    ax.legend()
    fig.savefig(out / "confidence_histogram.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    shown = records[-max_images:]
    columns = 6
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.7, rows * 1.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, record in zip(axes.flat, shown):
        try:
            ax.imshow(Image.open(io.BytesIO(record.image)).convert("RGB"))
        except OSError:
            ax.text(0.5, 0.5, "not an image", ha="center")
        ax.set_title(f"{record.label}\n{record.confidence:.2f}", fontsize=8,
                     color="black" if record.confidence >= threshold else "red")
    fig.suptitle("Latest captured images (red: below threshold)")
    fig.savefig(out / "captured_images.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    drift_html = draw_drift(drift, psi_threshold, out) if drift else ""
    below = sum(r.confidence < threshold for r in records)
    (out / "index.html").write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<title>Endpoint capture report</title></head><body style="font-family:sans-serif">
<h1>Endpoint capture report</h1>
<p>{len(records)} captured inferences from {html.escape(str(records[0].time))} to {html.escape(str(records[-1].time))};
{below} below the confidence threshold {threshold}.</p>
<img src="confidence_over_time.png"><br><img src="confidence_histogram.png"><br><img src="captured_images.png">
{drift_html}</body></html>
""")
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture-uri", required=True, help="s3:// prefix of the endpoint's capture files")
    parser.add_argument("--threshold", type=float, default=0.93)
    parser.add_argument("--out", default="capture-report")
    parser.add_argument("--drift-reports-uri", help="s3:// prefix of the drift monitor's reports for this endpoint "
                                                    "(…/drift-reports/<endpoint>/): adds drift scores over time")
    parser.add_argument("--psi-threshold", type=float, default=0.2)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        s3 = boto3.client("s3")
        records = read_capture(s3, args.capture_uri)
        drift = read_drift_reports(s3, args.drift_reports_uri) if args.drift_reports_uri else None
        print(draw_report(records, args.threshold, args.out, drift=drift, psi_threshold=args.psi_threshold))
    except (NoCaptureError, CaptureFormatError, InvalidS3UriError, ClientError, BotoCoreError) as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
