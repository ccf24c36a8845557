"""``scones-review``: the reviews waiting for a person, and answering one.

    scones-review [--environment local] list [--all]
    scones-review [--environment local] answer ID bicycle|motorcycle [--reviewer WHO] [--note TEXT]

Only AWS APIs, so the same command works against AWS and against ``scones-local serve``:

- ``list`` reads the pending review records (``<prefix>/human-reviews/pending/<id>.json``, written by
  the workflow's PrepareReview step) and asks Step Functions whether each execution still waits
  (DescribeExecution). It never calls SQS ReceiveMessage: a receive counts as a delivery, and enough
  of them move a review to the dead-letter queue.
- ``answer`` checks the answer as the recording step will, finds the task token in the execution's
  history (the RequestReview task's TaskScheduled event) and calls SendTaskSuccess; the workflow's
  RecordReview step then writes the label. When the execution that asked is gone (locally: a serve
  restarted since), the label is recorded by invoking the same recording function directly, with
  the saved request. A review answered already is never recorded twice.

The pure parts (:func:`review_metrics`, :func:`find_review`) take no client.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import boto3
from botocore.exceptions import ClientError

from inference_workflow.errors import InferenceWorkflowError
from inference_workflow.human_review.lambda_function import InvalidReviewAnswerError, validate_answer
from inference_workflow.start_retraining.lambda_function import read_records
from scones_common.config import ENVIRONMENTS, SconesConfig, load_config
from scones_common.errors import cli_entry
from scones_common.names import human_labels_uri, human_review_function_name, pending_reviews_uri
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("review")
CALLBACK_RESOURCE = "sendMessage.waitForTaskToken"
CLOSED_TOKEN_ERRORS = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")


class ReviewNotFoundError(InferenceWorkflowError, LookupError):
    """No pending review has this id (or it was answered already)."""


class AmbiguousReviewIdError(InferenceWorkflowError, LookupError):
    """The id given is the start of more than one pending review's id."""


class InvalidAnswerError(InferenceWorkflowError, ValueError):
    """The answer is not a class label with a reviewer: the recording step would refuse it."""


class ReviewClosedError(InferenceWorkflowError, RuntimeError):
    """The execution that asked ended without an answer (timed out, failed, aborted): nothing waits for one."""


@dataclass(frozen=True)
class PendingReview:
    """One saved review request and whether its execution still waits ("waiting", "gone" or its end status)."""
    record: dict
    execution_status: str

    @property
    def review_id(self) -> str:
        return self.record["review_id"]

    @property
    def open(self) -> bool:
        return self.execution_status in ("waiting", "gone")

    def age_seconds(self, now: datetime) -> float | None:
        try:
            return max(0.0, (now - datetime.fromisoformat(self.record.get("requested_at", ""))).total_seconds())
        except ValueError:
            return None


@dataclass(frozen=True)
class AnswerOutcome:
    review_id: str
    label: str
    how: str                 # "sent to the waiting execution", "recorded directly (execution gone)", "already answered"
    execution_status: str = ""
    record_uri: str = ""


@dataclass(frozen=True)
class ReviewStore:
    """Where one deployment keeps its reviews: the pending records, the labels and the recording function."""
    pending_uri: str
    labels_uri: str
    function_name: str

    @classmethod
    def of(cls, config: SconesConfig) -> "ReviewStore":
        return cls(pending_reviews_uri(config), human_labels_uri(config), human_review_function_name(config))


# -- pure ---------------------------------------------------------------------------------------------------

def find_review(pending: list[PendingReview], wanted: str) -> PendingReview:
    """The pending review whose id is ``wanted`` or starts with it (at least 4 characters, as git's short ids)."""
    wanted = wanted.strip().lower()
    exact = [p for p in pending if p.review_id == wanted]
    if exact:
        return exact[0]
    matches = [p for p in pending if len(wanted) >= 4 and p.review_id.startswith(wanted)]
    if len(matches) > 1:
        raise AmbiguousReviewIdError(f"{wanted!r} starts {len(matches)} review ids "
                                     f"({', '.join(m.review_id for m in matches[:5])}); give more of it")
    if not matches:
        raise ReviewNotFoundError(f"no pending review {wanted!r}; `scones-review list` shows the ones waiting "
                                  "(an answered review leaves the list)")
    return matches[0]


@dataclass(frozen=True)
class ReviewMetrics:
    """How much goes to people, and what they say: the capture report's review section."""
    executions: int              # workflow executions counted (the denominator of the review rate)
    requested: int               # of those, sent to a person
    answered: int
    pending: int
    agreement: float | None      # share of answered reviews where the person chose the model's class
    median_answer_seconds: float | None
    by_label: dict[str, int] = field(default_factory=dict)

    @property
    def review_rate(self) -> float | None:
        return self.requested / self.executions if self.executions else None


def _seconds_between(start: str, end: str) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def review_metrics(labels: list[dict], pending: list[dict], executions: int) -> ReviewMetrics:
    """Review rate, model-person agreement and the median time to answer, from the records alone.

    ``executions`` is the number of workflow executions over the same period; the reviews requested
    are the answered and the pending ones (a review is in one or the other, by its id).
    """
    answered_ids = {r.get("review_id") for r in labels}
    pending_ids = {p.get("review_id") for p in pending} - answered_ids
    requested = len(answered_ids | pending_ids)
    agreeing = [r.get("label") == r.get("model_prediction") for r in labels]
    waits = [s for r in labels if (s := _seconds_between(r.get("requested_at"), r.get("answered_at"))) is not None]
    by_label: dict[str, int] = {}
    for record in labels:
        by_label[record.get("label", "?")] = by_label.get(record.get("label", "?"), 0) + 1
    return ReviewMetrics(max(executions, requested), requested, len(answered_ids), len(pending_ids),
                         sum(agreeing) / len(agreeing) if agreeing else None,
                         statistics.median(waits) if waits else None, by_label)


# -- AWS edges -----------------------------------------------------------------------------------------------

def execution_status(sfn, execution_arn: str) -> str:
    """"waiting" (RUNNING), "gone" (Step Functions no longer knows it) or the execution's end status."""
    try:
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ExecutionDoesNotExist", "StateMachineDoesNotExist"):
            return "gone"
        raise
    return "waiting" if status == "RUNNING" else status


def list_reviews(s3, sfn, store: ReviewStore, include_closed: bool = False) -> list[PendingReview]:
    """The saved review requests, oldest first, with their executions' status; no side effect anywhere."""
    reviews = [PendingReview(record, execution_status(sfn, record.get("execution_arn", "")))
               for record in read_records(s3, store.pending_uri)]
    reviews.sort(key=lambda r: r.record.get("requested_at", ""))
    return [r for r in reviews if include_closed or r.open]


def task_token(sfn, execution_arn: str) -> str | None:
    """The token of the execution's latest review request, from its history (the TaskScheduled event's parameters)."""
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn, reverseOrder=True):
        for event in page["events"]:
            details = event.get("taskScheduledEventDetails")
            if details and details.get("resource", "").endswith(CALLBACK_RESOURCE):
                body = json.loads(details["parameters"]).get("MessageBody", {})
                body = json.loads(body) if isinstance(body, str) else body
                return body.get("taskToken")
    return None


def _label_record(s3, store: ReviewStore, review_id: str) -> dict | None:
    location = parse_s3_uri(f"{store.labels_uri.rstrip('/')}/{review_id}.json")
    try:
        return json.loads(s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read())
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise


def _wait_for_end(sfn, execution_arn: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    status = execution_status(sfn, execution_arn)
    while status == "waiting" and time.monotonic() < deadline:
        time.sleep(0.05)
        status = execution_status(sfn, execution_arn)
    return status


def record_directly(lam, store: ReviewStore, review: dict, answer: dict) -> dict:
    """Invokes the recording function with the saved request and the answer, as RecordReview would."""
    location = parse_s3_uri(review["image"])
    event = {"step": "record", "direct": True, "workflow": {
        "review": review, "answer": answer, "s3_bucket": location.bucket, "s3_key": location.key,
        "inferences": review.get("inferences", [])}}
    response = lam.invoke(FunctionName=store.function_name, Payload=json.dumps(event).encode())
    result = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError"):
        raise InvalidAnswerError(f"the recording function refused the answer: {result.get('errorType')}: "
                                 f"{result.get('errorMessage')}")
    return result


def answer_review(s3, sfn, lam, store: ReviewStore, review_id: str, label: str, reviewer: str, note: str = "",
                  wait_seconds: float = 10.0) -> AnswerOutcome:
    """Answers one pending review (see the module's docstring); raises a named error for what cannot be answered."""
    try:
        answer = validate_answer({"label": label, "reviewer": reviewer, "note": note})
    except InvalidReviewAnswerError as exc:
        raise InvalidAnswerError(str(exc)) from None
    reviews = list_reviews(s3, sfn, store, include_closed=True)
    try:
        review = find_review(reviews, review_id)
    except ReviewNotFoundError:
        done = _label_record(s3, store, review_id.strip().lower())
        if done:
            return AnswerOutcome(done["review_id"], done["label"], f"already answered by {done.get('reviewer')} at "
                                 f"{done.get('answered_at')}: not recorded again")
        raise
    record = review.record
    if review.execution_status == "gone":
        result = record_directly(lam, store, record, answer)
        return AnswerOutcome(review.review_id, answer["label"], "recorded directly (the execution that asked is gone)",
                             "gone", result.get("record", ""))
    if not review.open:
        raise ReviewClosedError(f"review {review.review_id}: its execution ended {review.execution_status} without an "
                                f"answer (review time {record.get('timeout_seconds')} s); nothing waits for it. The "
                                "image can be sent through the workflow again")
    token = task_token(sfn, record["execution_arn"])
    if token is None:
        raise ReviewNotFoundError(f"review {review.review_id}: the execution's history has no review request yet; "
                                  "retry in a moment")
    try:
        sfn.send_task_success(taskToken=token, output=json.dumps(answer))
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in CLOSED_TOKEN_ERRORS:
            raise
        done = _label_record(s3, store, review.review_id)
        if done:
            return AnswerOutcome(review.review_id, done["label"], f"already answered by {done.get('reviewer')}: "
                                 "not recorded again")
        raise ReviewClosedError(f"review {review.review_id}: Step Functions no longer accepts its token "
                                f"({exc.response['Error']['Code']}); list the reviews again") from None
    status = _wait_for_end(sfn, record["execution_arn"], wait_seconds)
    done = _label_record(s3, store, review.review_id)
    return AnswerOutcome(review.review_id, answer["label"], "sent to the waiting execution",
                         "SUCCEEDED" if status == "SUCCEEDED" else status,
                         f"{store.labels_uri}/{review.review_id}.json" if done else "")


def format_reviews(reviews: list[PendingReview], now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    header = f"{'id':<16}  {'prediction':<10} {'conf':>6}  {'age':>8}  {'execution':<10}  image"
    lines = [header, "-" * len(header)]
    for review in reviews:
        r = review.record
        age = review.age_seconds(now)
        shown_age = "-" if age is None else f"{age / 3600:.1f}h" if age >= 3600 else f"{age / 60:.0f}m"
        confidence = r.get("confidence")
        lines.append(f"{review.review_id:<16}  {r.get('prediction', '-'):<10} "
                     f"{confidence if not isinstance(confidence, float) else f'{confidence:.3f}':>6}  {shown_age:>8}  "
                     f"{review.execution_status:<10}  {r.get('image', '')}")
    lines.append(f"{sum(r.open for r in reviews)} waiting for review; answer one with: "
                 "scones-review answer ID bicycle|motorcycle [--note TEXT]")
    return "\n".join(lines)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--environment", choices=ENVIRONMENTS)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="the reviews waiting for a person (no message is received)")
    listing.add_argument("--all", action="store_true", help="also the reviews whose execution ended unanswered")
    answering = sub.add_parser("answer", help="answer one review")
    answering.add_argument("review_id", help="its id, or the start of it (4 characters or more)")
    answering.add_argument("label", help="bicycle or motorcycle")
    answering.add_argument("--reviewer", help="who answers (default: your AWS identity, from STS)")
    answering.add_argument("--note", default="")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.environment)
    region = config.project.region
    s3, sfn = boto3.client("s3", region_name=region), boto3.client("stepfunctions", region_name=region)
    store = ReviewStore.of(config)
    if args.command == "list":
        print(format_reviews(list_reviews(s3, sfn, store, include_closed=args.all)))
        return 0
    reviewer = args.reviewer or boto3.client("sts", region_name=region).get_caller_identity()["Arn"]
    outcome = answer_review(s3, sfn, boto3.client("lambda", region_name=region), store, args.review_id, args.label,
                            reviewer, args.note)
    print(f"review {outcome.review_id}: {outcome.label}, {outcome.how}"
          + (f"; execution {outcome.execution_status}" if outcome.execution_status else "")
          + (f"; label at {outcome.record_uri}" if outcome.record_uri else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
