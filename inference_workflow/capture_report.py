"""Plots what the endpoint's data capture recorded: every record of every .jsonl file.

    scones-capture-report --capture-uri s3://bucket/prefix/data-capture/<endpoint>/ --out report/

Writes confidence_over_time.png, confidence_histogram.png, captured_images.png and index.html;
with ``--evaluation-uri`` also the model's reliability and coverage/precision plots, with
``--drift-reports-uri`` the drift monitor's scores over time (drift_over_time.png).
"""
from __future__ import annotations

import argparse
import html
import io
import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import boto3

from inference_workflow.errors import InferenceWorkflowError
from scones_common.cli_args import finite_number
from scones_common.contracts.capture import CAPTURE_FILE_SUFFIX, CaptureFormatError, parse_capture_record
from scones_common.contracts.classes import CLASS_NAMES, class_name
from scones_common.directories import check_output_dir, write_marker
from scones_common.errors import cli_entry
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("capture_report")
COMMAND, REPORT_MARKER = "scones-capture-report", ".scones-capture-report.json"


class NoCaptureError(InferenceWorkflowError, LookupError):
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
        return class_name(self.probabilities.index(self.confidence))


def parse_record(line: str, source: str) -> CapturedInference:
    """A capture record whose response is the endpoint's JSON list of class probabilities."""
    record = parse_capture_record(line, source)
    try:
        probabilities = tuple(float(p) for p in json.loads(record.response.data))
    except (ValueError, TypeError) as exc:
        raise CaptureFormatError(f"{source}: the captured response is not a list of probabilities ({exc})") from None
    return CapturedInference(record.inference_time, probabilities, record.request.data, record.request.content_type,
                             source)


def parse_jsonl(text: str, source: str) -> list[CapturedInference]:
    return [parse_record(line, f"{source}:{n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_capture(s3, capture_uri: str) -> list[CapturedInference]:
    location = parse_s3_uri(capture_uri)
    records: list[CapturedInference] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(CAPTURE_FILE_SUFFIX):
                body = s3.get_object(Bucket=location.bucket, Key=obj["Key"])["Body"].read().decode()
                records += parse_jsonl(body, obj["Key"])
    return sorted(records, key=lambda r: r.time)


class ReportInputError(InferenceWorkflowError, ValueError):
    """--evaluation-uri names an object that is not an evaluation.json this report can draw."""


_EVALUATION_FIELDS = ("confidence_threshold", "calibration", "coverage_curve")


def read_evaluation(s3, evaluation_uri: str) -> dict:
    """evaluation.json, checked for what the plots read, so a wrong object fails before anything is drawn."""
    location = parse_s3_uri(evaluation_uri)
    try:
        evaluation = json.loads(s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportInputError(f"{evaluation_uri} is not JSON ({exc}); pass the evaluation.json EvaluateModel "
                               "wrote (the model package's ModelStatistics)") from None
    metrics = evaluation.get("metrics") if isinstance(evaluation, dict) else None
    missing = [k for k in _EVALUATION_FIELDS if not isinstance(metrics, dict) or k not in metrics]
    if missing:
        raise ReportInputError(f"{evaluation_uri} has no metrics.{', metrics.'.join(missing)}: it is not an "
                               "evaluation.json of this pipeline's EvaluateModel step")
    return evaluation


def precision_text(metrics: dict) -> str:
    """The precision at the threshold with its 95 % lower confidence bound and the confident images behind it
    (an evaluation.json from before the bound shows the point estimate alone)."""
    precision = metrics["confident_precision"]
    if precision.get("value") is None:
        return "precision n/a (no image at or above the threshold)"
    text = f"precision {precision['value']:.4f}"
    if precision.get("lower_bound") is not None:
        text += f" (95 % lower bound {precision['lower_bound']:.4f}, {precision['confident']} confident images)"
    return text


def draw_evaluation(metrics: dict, out: Path) -> list[str]:
    """Reliability diagram and coverage/precision curve from evaluation.json's metrics; the files drawn."""
    import matplotlib.pyplot as plt

    threshold = metrics["confidence_threshold"]["value"]
    bins = [b for b in metrics["calibration"]["bins"] if b["count"]]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    lowest = metrics["calibration"]["bins"][0]["lower"]
    ax.plot([lowest, 1], [lowest, 1], color="grey", linestyle=":", label="perfectly calibrated")
    ax.bar([(b["lower"] + b["upper"]) / 2 for b in bins], [b["accuracy"] for b in bins],
           width=[b["upper"] - b["lower"] for b in bins], alpha=0.5, edgecolor="black", label="accuracy in bin")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color="tab:blue",
            label="mean confidence → accuracy")
    for b in bins:
        ax.annotate(str(b["count"]), ((b["lower"] + b["upper"]) / 2, 0.02), ha="center", fontsize=7)
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold}")
    ax.set(title=f"Reliability on the test split (ECE {metrics['calibration']['ece']:.3f})",
           xlabel="top-class probability (bin counts at the bottom)", ylabel="accuracy", xlim=(lowest, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(out / "reliability.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    curve = metrics["coverage_curve"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(curve["thresholds"], curve["coverage"], label="coverage (routed without a human)")
    ax.plot(curve["thresholds"], [float("nan") if p is None else p for p in curve["precision"]],
            label="precision of the confident")
    ax.axvline(threshold, color="red", linestyle="--",
               label=f"threshold {threshold}: coverage {metrics['coverage']['value']:.0%}, {precision_text(metrics)}")
    bound = metrics["confident_precision"].get("lower_bound")
    if bound is not None:
        ax.errorbar([threshold], [metrics["confident_precision"]["value"]], fmt="o", color="tab:orange", capsize=4,
                    yerr=[[metrics["confident_precision"]["value"] - bound], [0]],
                    label="precision at the threshold and its 95 % lower bound")
    ax.set(title="Coverage and precision by confidence threshold (test split)", xlabel="threshold", ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    fig.savefig(out / "coverage_precision.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return ["reliability.png", "coverage_precision.png"]


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
                body = s3.get_object(Bucket=location.bucket, Key=obj["Key"])["Body"].read()
                try:
                    point = _drift_point(json.loads(body))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    log.warning("skipped s3://%s/%s: not a drift report (%s: %s)", location.bucket, obj["Key"],
                                type(exc).__name__, exc)
                    continue
                if point:
                    points.append(point)
    return sorted(points, key=lambda p: p.time)


def _drift_point(report: dict) -> DriftPoint | None:
    """None for a run that had too few records to judge."""
    if not report.get("enough_data"):
        return None
    return DriftPoint(datetime.fromisoformat(report["window"]["end"]), float(report["drift_score"]),
                      {f["feature"]: f["psi"] for f in report["features"]}, len(report["violations"]))


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


def review_html(metrics, threshold: float) -> str:
    """The human review section (a :class:`~inference_workflow.review.ReviewMetrics`): what share of the workflow's
    executions went to a person, how often the person agreed with the model, and how long answers took."""
    if metrics is None:
        return ""
    rate = "-" if metrics.review_rate is None else f"{metrics.review_rate:.1%}"
    agreement = "-" if metrics.agreement is None else f"{metrics.agreement:.1%}"
    median = "-" if metrics.median_answer_seconds is None else f"{metrics.median_answer_seconds / 60:.1f} min"
    labels = ", ".join(f"{html.escape(k)}: {v}" for k, v in sorted(metrics.by_label.items())) or "none yet"
    return (f"<h2>Human review</h2><p>Review rate {rate}: {metrics.requested} of {metrics.executions} workflow executions "
            f"were sent to a person (top-class probability below {threshold}); {metrics.answered} answered, "
            f"{metrics.pending} pending. Model and person agree on {agreement} of the answered reviews; median time to "
            f"answer {median}. Labels given: {labels}.</p><p>The drift monitor's low-confidence share uses the same "
            "threshold but counts every captured endpoint invocation in its window (any caller); the review rate counts "
            "workflow executions only.</p>")


def draw_report(records: list[CapturedInference], threshold: float, out_dir: str | Path, max_images: int = 24,
                evaluation: dict | None = None, drift: list[DriftPoint] | None = None,
                psi_threshold: float = 0.2, review=None) -> Path:
    """Capture plots; the model's calibration and coverage/precision plots when its evaluation.json is given;
    drift scores over time when the drift monitor's reports are given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from PIL import Image

    if not records:
        raise NoCaptureError("no captured inferences to plot: check --capture-uri, or invoke the endpoint first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    colors = {name: f"C{i}" for i, name in enumerate(CLASS_NAMES)}   # matplotlib's default cycle

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

    model_plots = draw_evaluation(evaluation["metrics"], out) if evaluation else []
    model_section = ("<h2>Model on the test split</h2>"
                     + f"<p>At confidence {evaluation['metrics']['confidence_threshold']['value']}: coverage "
                       f"{evaluation['metrics']['coverage']['value']:.1%}, "
                       f"{html.escape(precision_text(evaluation['metrics']))}.</p>"
                     + "".join(f'<img src="{name}">' for name in model_plots) if model_plots else "")
    drift_html = draw_drift(drift, psi_threshold, out) if drift else ""
    below = sum(r.confidence < threshold for r in records)
    (out / "index.html").write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<title>Endpoint capture report</title></head><body style="font-family:sans-serif">
<h1>Endpoint capture report</h1>
<p>{len(records)} captured inferences from {html.escape(str(records[0].time))} to {html.escape(str(records[-1].time))};
{below} below the confidence threshold {threshold}.</p>
<img src="confidence_over_time.png"><br><img src="confidence_histogram.png"><br><img src="captured_images.png">
{model_section}
{drift_html}
{review_html(review, threshold)}</body></html>
""")
    return out / "index.html"


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture-uri", required=True, help="s3:// prefix of the endpoint's capture files")
    parser.add_argument("--threshold", type=finite_number(0, 1), default=0.93)
    parser.add_argument("--out", default="capture-report")
    parser.add_argument("--evaluation-uri", help="s3:// URI of the model's evaluation.json: adds reliability and "
                                                 "coverage/precision plots")
    parser.add_argument("--drift-reports-uri", help="s3:// prefix of the drift monitor's reports for this endpoint "
                                                    "(…/drift-reports/<endpoint>/): adds drift scores over time")
    parser.add_argument("--psi-threshold", type=finite_number(0, low_open=True), default=0.2)
    parser.add_argument("--human-labels-uri", help="s3:// prefix of the human labels (…/human-labels/): adds the "
                                                   "review rate, agreement and time to answer")
    parser.add_argument("--pending-reviews-uri", help="s3:// prefix of the pending reviews (…/human-reviews/pending/)")
    parser.add_argument("--state-machine-arn", help="the inference workflow, whose executions the review rate counts")
    args = parser.parse_args(argv)
    # new, empty or an earlier report (never ~, / or . nor a folder with someone's own index.html), before any work
    out = check_output_dir(args.out, "--out", COMMAND, REPORT_MARKER, "capture-report/")
    s3 = boto3.client("s3")
    records = read_capture(s3, args.capture_uri)
    evaluation = read_evaluation(s3, args.evaluation_uri) if args.evaluation_uri else None
    drift = read_drift_reports(s3, args.drift_reports_uri) if args.drift_reports_uri else None
    review = None
    if args.human_labels_uri:
        from inference_workflow.review import read_records, review_metrics

        executions = 0
        if args.state_machine_arn:
            pages = boto3.client("stepfunctions").get_paginator("list_executions").paginate(
                stateMachineArn=args.state_machine_arn)
            executions = sum(len(page["executions"]) for page in pages)
        pending = read_records(s3, args.pending_reviews_uri) if args.pending_reviews_uri else []
        review = review_metrics(read_records(s3, args.human_labels_uri), pending, executions)
    report = draw_report(records, args.threshold, out, evaluation=evaluation, drift=drift,
                         psi_threshold=args.psi_threshold, review=review)
    write_marker(out, REPORT_MARKER, COMMAND)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
