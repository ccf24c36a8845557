"""Captures and drift: the latest captured images with prediction and confidence, the low-confidence
share, and the drift monitor's reports.

Reads S3 only: the endpoint's data capture (``<prefix>/<capture_prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/``,
records in ``scones_common/contracts/capture.py``'s format, parsed by the capture report's reader)
and the drift reports (``<prefix>/<monitor.report_prefix>/<endpoint>/yyyy/mm/dd/HHMMSS.json``).
Both trees grow for ever on AWS, so neither is listed whole: :func:`newest_keys` walks the
date folders from the newest down and stops once it has enough.
"""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, render_template

from console import plots
from console.context import context
from inference_workflow.capture_report import CapturedInference, parse_jsonl
from scones_common.contracts.capture import CAPTURE_FILE_SUFFIX, CaptureFormatError
from scones_common.contracts.classes import CLASS_NAMES
from scones_common.names import capture_uri, drift_reports_uri
from scones_common.s3uri import parse_s3_uri

blueprint = Blueprint("captures", __name__)
log = logging.getLogger("console.captures")
IMAGES_SHOWN = 24
RECORDS_READ = 200              # the low-confidence share and the histogram are over the newest records
CAPTURE_FILES_READ = 12
DRIFT_REPORTS_READ = 48
# Only raster types are put in a data: URL; a capture is whatever a client sent
IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif",
               b"GIF89a": "image/gif", b"BM": "image/bmp"}


@dataclass(frozen=True)
class CaptureView:
    time: datetime
    label: str
    confidence: float
    confident: bool
    image_url: str | None        # data: URL of the captured image, None when it is not a known raster format
    source: str


def newest_keys(s3, bucket: str, prefix: str, want: int, suffix: str) -> list[str]:
    """Up to ``want`` object keys ending in ``suffix`` under ``prefix``, newest first, for trees whose folders
    sort by time (``yyyy/mm/dd/hh/``): a depth-first walk over the folders in reverse order, which stops
    early, rather than a listing of everything."""
    found: list[str] = []

    def walk(folder: str) -> None:
        folders, files = [], []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder, Delimiter="/"):
            folders += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            files += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(suffix)]
        for key in sorted(files, reverse=True):
            if len(found) >= want:
                return
            found.append(key)
        for sub in sorted(folders, reverse=True):
            if len(found) >= want:
                return
            walk(sub)

    walk(prefix.rstrip("/") + "/")
    return found


def image_url(data: bytes) -> str | None:
    for magic, content_type in IMAGE_TYPES.items():
        if data.startswith(magic):
            return f"data:{content_type};base64,{base64.b64encode(data).decode()}"
    return None


def capture_view(record: CapturedInference, threshold: float) -> CaptureView:
    return CaptureView(record.time, record.label, record.confidence, record.confidence >= threshold,
                       image_url(record.image), record.source)


def latest_captures(s3, uri: str, endpoint: str, want: int = RECORDS_READ) -> tuple[list[CapturedInference], int]:
    """The newest captured inferences (newest first) and how many lines could not be read. Variants are
    walked together: the capture tree is ``<endpoint>/<variant>/yyyy/…``, so each variant's newest files are read."""
    location = parse_s3_uri(uri.rstrip("/") + f"/{endpoint}/")
    variants = [p["Prefix"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=location.bucket, Prefix=location.key, Delimiter="/") for p in page.get("CommonPrefixes", [])]
    records, skipped = [], 0
    for variant in variants:
        for key in newest_keys(s3, location.bucket, variant, CAPTURE_FILES_READ, CAPTURE_FILE_SUFFIX):
            body = s3.get_object(Bucket=location.bucket, Key=key)["Body"].read().decode("utf-8", "replace")
            for number, line in enumerate(body.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    records += parse_jsonl(line, f"{key}:{number}")
                except CaptureFormatError as exc:
                    skipped += 1
                    log.warning("skipped %s", exc)
            if len(records) >= want:
                break
    records.sort(key=lambda r: r.time, reverse=True)
    return records[:want], skipped


def drift_reports(s3, uri: str, endpoint: str, want: int = DRIFT_REPORTS_READ) -> list[dict]:
    """The newest drift monitor reports, oldest first (for plotting); unreadable ones are skipped."""
    location = parse_s3_uri(uri.rstrip("/") + f"/{endpoint}/")
    reports = []
    for key in newest_keys(s3, location.bucket, location.key, want, ".json"):
        try:
            report = json.loads(s3.get_object(Bucket=location.bucket, Key=key)["Body"].read())
            report["end"] = datetime.fromisoformat(report["window"]["end"])
            report["key"] = key
            reports.append(report)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("skipped s3://%s/%s: not a drift report (%s)", location.bucket, key, exc)
    return sorted(reports, key=lambda r: r["end"])


@blueprint.get("/captures")
def index():
    ctx = context()
    s3, config = ctx.client("s3"), ctx.config
    threshold = config.inference.confidence_threshold
    records, skipped = latest_captures(s3, capture_uri(config), config.endpoint.name)
    views = [capture_view(r, threshold) for r in records[:IMAGES_SHOWN]]
    low = sum(r.confidence < threshold for r in records)
    histogram = plots.confidence_histogram(
        {name: [r.confidence for r in records if r.label == name] for name in CLASS_NAMES}, threshold) if records else None
    reports = drift_reports(s3, drift_reports_uri(config), config.endpoint.name)
    judged = [r for r in reports if r.get("enough_data")]
    drift_plot = plots.drift_scores([(r["end"], {f["feature"]: f["psi"] for f in r.get("features", [])}) for r in judged],
                                    config.monitor.psi_threshold) if judged else None
    return render_template("captures.html", views=views, records=len(records), low=low, skipped=skipped,
                           threshold=threshold, histogram=histogram, reports=list(reversed(reports))[:10],
                           drift_plot=drift_plot, latest=reports[-1] if reports else None,
                           capture_uri=f"{capture_uri(config)}/{config.endpoint.name}/",
                           reports_uri=f"{drift_reports_uri(config)}/{config.endpoint.name}/")
