"""Generates workflow inputs from test images in S3, runs the executions and tabulates the outcomes.

    scones-workflow-test --state-machine-arn ARN --bucket B --prefix staged/test/ -n 10
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
import uuid
from dataclasses import dataclass

import boto3

from inference_workflow.errors import InferenceWorkflowError
from scones_common.cli_args import whole_number
from scones_common.contracts.staged_data import label_of_path
from scones_common.errors import cli_entry

log = logging.getLogger("workflow_test")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class NotTestSplitError(InferenceWorkflowError, ValueError):
    """Test cases must come from the test split: training images would flatter the model."""


class NoTestImagesError(InferenceWorkflowError, LookupError):
    """The prefix holds no images."""


@dataclass
class WorkflowResult:
    s3_key: str
    true_label: str
    status: str
    predicted_label: str = ""
    confidence: float | None = None
    error: str = ""
    seconds: float = 0.0                      # as the caller saw it: start to observed end
    execution_arn: str = ""
    execution_seconds: float | None = None    # as Step Functions recorded it: startDate to stopDate
    waiting_for_review: bool = False          # RUNNING, its review request sent: a person answers it (scones-review)
    reviewed_by: str = ""                     # SUCCEEDED with a person's label (predicted_label is theirs)

    @property
    def outcome(self) -> str:
        """SUCCEEDED, REVIEWED, WAITING_FOR_REVIEW, or the error's name."""
        if self.waiting_for_review:
            return "WAITING_FOR_REVIEW"
        if self.status == "SUCCEEDED":
            return "REVIEWED" if self.reviewed_by else "SUCCEEDED"
        return self.error.split(":")[0] or self.status


def true_label(key: str) -> str:
    """Staged test images live under test/<class>/…; the folder is the label."""
    return label_of_path(key) or "unknown"


def image_keys_in_test_split(s3, bucket: str, prefix: str) -> list[str]:
    """Image keys under a ``test/`` prefix only: never the .lst file, never train or validation."""
    if "test/" not in prefix.rstrip("/") + "/":
        raise NotTestSplitError(f"prefix {prefix!r} is not a test/ prefix; test cases come from the test split only")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].lower().endswith(IMAGE_SUFFIXES)]
    return keys


def generate_test_cases(s3, bucket: str, prefix: str, count: int, seed: int = 0) -> list[dict]:
    keys = image_keys_in_test_split(s3, bucket, prefix)
    if not keys:
        raise NoTestImagesError(f"no test images under s3://{bucket}/{prefix}; is the prefix the staged test/ folder?")
    chosen = random.Random(seed).sample(keys, min(count, len(keys)))
    return [{"s3_bucket": bucket, "s3_key": key} for key in chosen]


def _start(sfn, state_machine_arn: str, event: dict) -> str:
    return sfn.start_execution(stateMachineArn=state_machine_arn, name=uuid.uuid4().hex,
                               input=json.dumps(event))["executionArn"]


def _result(description: dict, event: dict, seconds: float, waiting_for_review: bool = False) -> WorkflowResult:
    result = WorkflowResult(event["s3_key"], true_label(event["s3_key"]), description["status"], seconds=seconds,
                            execution_arn=description["executionArn"])
    if description.get("stopDate") and description.get("startDate"):
        result.execution_seconds = (description["stopDate"] - description["startDate"]).total_seconds()
    if description["status"] == "SUCCEEDED":
        output = json.loads(description.get("output") or "{}")
        result.predicted_label, result.confidence = output.get("predicted_label", ""), output.get("confidence")
        if output.get("label_source") == "human":
            result.reviewed_by = output.get("reviewer", "") or "?"
    elif description["status"] == "RUNNING" and waiting_for_review:
        result.waiting_for_review = True
    elif description["status"] != "RUNNING":
        cause = description.get("cause", "")
        try:
            cause = json.loads(cause).get("errorMessage", cause)
        except (ValueError, AttributeError):
            pass
        result.error = f"{description.get('error', '')}: {cause}".strip(": ")
    else:
        result.error = "TimedOut: still running when the caller stopped waiting"
    return result


REVIEW_RESOURCE_TYPE = "sqs"        # the RequestReview task: sqs:sendMessage.waitForTaskToken
REVIEW_CHECK_AFTER = 0.2            # seconds an execution runs before its history is read for a review request


def awaits_review(sfn, execution_arn: str) -> bool:
    """Whether the execution has sent its review request and waits for a person (its latest task is the SQS
    callback, submitted and not yet answered). One short history page, newest first."""
    events = sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=5)["events"]
    for event in events:
        if event["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskStateExited"):
            return False
        if event["type"] == "TaskSubmitted":
            return event.get("taskSubmittedEventDetails", {}).get("resourceType") == REVIEW_RESOURCE_TYPE
    return False


def run_execution(sfn, state_machine_arn: str, event: dict, timeout: float = 60.0, poll: float = 0.005) -> WorkflowResult:
    """Starts one execution and polls until it ends or waits for a person's review: every ``poll`` seconds for
    the first 0.2 s, then less often."""
    started = time.perf_counter()
    arn = _start(sfn, state_machine_arn, event)
    delay = poll
    while True:
        description = sfn.describe_execution(executionArn=arn)
        elapsed = time.perf_counter() - started
        if description["status"] != "RUNNING" or elapsed > timeout:
            return _result(description, event, elapsed)
        if elapsed > REVIEW_CHECK_AFTER and awaits_review(sfn, arn):    # a person answers it later
            return _result(description, event, elapsed, waiting_for_review=True)
        time.sleep(delay)
        delay = poll if time.perf_counter() - started < 0.2 else min(delay * 1.5, 0.1)


def _running(sfn, state_machine_arn: str) -> set[str]:
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING")
    return {e["executionArn"] for page in pages for e in page["executions"]}


def run_executions(sfn, state_machine_arn: str, events: list[dict], concurrency: int = 4, timeout: float = 60.0,
                   poll: float = 0.01) -> list[WorkflowResult]:
    """Keeps ``concurrency`` executions in flight; one ListExecutions call per tick watches all of them
    (a DescribeExecution poll per execution would cost the service more than the executions do)."""
    waiting = list(enumerate(events))
    in_flight: dict[str, tuple[int, dict, float]] = {}
    results: list[WorkflowResult | None] = [None] * len(events)
    while waiting or in_flight:
        while waiting and len(in_flight) < max(1, concurrency):
            index, event = waiting.pop(0)
            in_flight[_start(sfn, state_machine_arn, event)] = (index, event, time.perf_counter())
        time.sleep(poll)
        running = _running(sfn, state_machine_arn)
        now = time.perf_counter()
        for arn in [a for a, (_, _, started) in in_flight.items() if a not in running or now - started > timeout]:
            index, event, started = in_flight.pop(arn)
            results[index] = _result(sfn.describe_execution(executionArn=arn), event, now - started)
        for arn in [a for a, (_, _, started) in in_flight.items() if now - started > REVIEW_CHECK_AFTER]:
            if awaits_review(sfn, arn):       # a person answers it later: nobody waits for them here
                index, event, started = in_flight.pop(arn)
                results[index] = _result(sfn.describe_execution(executionArn=arn), event, now - started,
                                         waiting_for_review=True)
    return results


def format_table(results: list[WorkflowResult]) -> str:
    header = f"{'image (under test/)':<44} {'true':<10} {'predicted':<10} {'conf':>6}  {'outcome':<10} {'ms':>6}"
    lines = [header, "-" * len(header)]
    for r in results:
        confidence = f"{r.confidence:.3f}" if r.confidence is not None else "-"
        outcome = r.outcome
        image = r.s3_key.rsplit("test/", 1)[-1][-44:]
        lines.append(f"{image:<44} {r.true_label:<10} {r.predicted_label or '-':<10} {confidence:>6}  "
                     f"{outcome[:26]:<10} {r.seconds * 1000:6.0f}")
    succeeded = [r for r in results if r.status == "SUCCEEDED" and not r.reviewed_by]
    correct = sum(r.predicted_label == r.true_label for r in succeeded)
    lines.append(f"{len(succeeded)}/{len(results)} confident; {correct}/{len(succeeded) or 1} of those correct")
    waiting = sum(r.waiting_for_review for r in results)
    if waiting:
        lines.append(f"{waiting} waiting for review: `scones-review list` shows them, "
                     "`scones-review answer ID bicycle|motorcycle` answers one")
    return "\n".join(lines)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-machine-arn", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True, help="the staged test/ prefix, e.g. scones/staged/test/")
    parser.add_argument("-n", "--count", type=whole_number(1), default=10)
    parser.add_argument("--concurrency", type=whole_number(1, 64), default=4)
    parser.add_argument("--seed", type=whole_number(0), default=0)
    args = parser.parse_args(argv)
    events = generate_test_cases(boto3.client("s3"), args.bucket, args.prefix, args.count, args.seed)
    results = run_executions(boto3.client("stepfunctions"), args.state_machine_arn, events, args.concurrency)
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
