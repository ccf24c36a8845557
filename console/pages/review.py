"""Human review: the images the model was unsure of, waiting for a person, and answering one.

The list and the answer go through ``inference_workflow/review.py``, the same functions as
``scones-review``: the pending records (never SQS ReceiveMessage, which would count as a delivery),
then SendTaskSuccess to the waiting execution, or the recording function when the execution is gone.
The reviewer is the console's signed-in identity as AWS knows it (STS GetCallerIdentity), as the
registry's decisions record it; the answer is checked as the recording step checks it.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.exceptions import ClientError
from flask import Blueprint, flash, redirect, render_template, request, url_for

from console.context import context
from console.pages.captures import IMAGE_TYPES
from inference_workflow.errors import InferenceWorkflowError
from inference_workflow.review import PendingReview, ReviewStore, answer_review, list_reviews
from scones_common.contracts.classes import CLASS_NAMES
from scones_common.s3uri import InvalidS3UriError, parse_s3_uri

blueprint = Blueprint("review", __name__)
THUMBNAIL_MAX_BYTES = 256 * 1024       # what the workflow accepts (SerializeImageData's limit is lower still)
SHOWN = 50


@dataclass(frozen=True)
class ReviewRow:
    review_id: str
    image: str
    image_url: str | None         # data: URL of a known raster image, else None
    prediction: str
    confidence: float | None
    age: str
    execution_status: str
    open: bool


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 86400 else f"{seconds / 86400:.1f} days"


def thumbnail(s3, uri: str) -> str | None:
    """The image as a data: URL when it is a known raster format of a sensible size (never anything else)."""
    try:
        location = parse_s3_uri(uri)
        obj = s3.get_object(Bucket=location.bucket, Key=location.key, Range=f"bytes=0-{THUMBNAIL_MAX_BYTES}")
    except (InvalidS3UriError, ClientError):
        return None
    data = obj["Body"].read()
    if len(data) > THUMBNAIL_MAX_BYTES:
        return None
    kind = next((mime for magic, mime in IMAGE_TYPES.items() if data.startswith(magic)), None)
    return f"data:{kind};base64,{base64.b64encode(data).decode()}" if kind else None


def review_row(s3, review: PendingReview, now: datetime) -> ReviewRow:
    record = review.record
    confidence = record.get("confidence")
    return ReviewRow(review.review_id, str(record.get("image", "")), thumbnail(s3, str(record.get("image", ""))),
                     str(record.get("prediction", "")), confidence if isinstance(confidence, (int, float)) else None,
                     _age(review.age_seconds(now)), review.execution_status, review.open)


@blueprint.get("/review")
def index():
    ctx = context()
    s3, sfn = ctx.client("s3"), ctx.client("stepfunctions")
    reviews = list_reviews(s3, sfn, ReviewStore.of(ctx.config), include_closed=request.args.get("all") == "1")
    now = datetime.now(UTC)
    rows = [review_row(s3, review, now) for review in reviews[:SHOWN]]
    return render_template("review.html", rows=rows, more=max(0, len(reviews) - SHOWN), labels=CLASS_NAMES,
                           threshold=ctx.config.inference.confidence_threshold,
                           show_all=request.args.get("all") == "1")


@blueprint.post("/review/<review_id>/answer")
def answer(review_id: str):
    ctx = context()
    label, note = request.form.get("label", ""), request.form.get("note", "")
    reviewer = ctx.client("sts").get_caller_identity()["Arn"]
    try:
        outcome = answer_review(ctx.client("s3"), ctx.client("stepfunctions"), ctx.client("lambda"),
                                ReviewStore.of(ctx.config), review_id, label, reviewer, note, wait_seconds=5.0)
    except InferenceWorkflowError as exc:
        flash(f"Not answered: {type(exc).__name__}: {exc}", "error")
        return redirect(url_for("review.index"), code=303)
    flash(f"Review {outcome.review_id}: {outcome.label}, {outcome.how}"
          + (f" (execution {outcome.execution_status})" if outcome.execution_status else "") + ".", "ok")
    return redirect(url_for("review.index"), code=303)
