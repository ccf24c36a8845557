"""Shows a pipeline execution's progress from the SageMaker and CloudWatch Logs APIs.

What an engineer watching a cloud execution sees: ListPipelineExecutionSteps for the steps, and
the training job's log stream for its milestones (every quarter of the epochs). Works against
any endpoint the clients point at; the local run prints it while it waits.
"""
from __future__ import annotations

import sys
from typing import TextIO

from botocore.exceptions import ClientError

from local_runtime.periodic import PeriodicThread
from local_runtime.pipeline.jobs import LOG_GROUPS
from local_runtime.pipeline.runners.training import milestone

_KINDS = {"TrainingJob": "Training", "ProcessingJob": "Processing", "TransformJob": "Transform", "Model": "Model",
          "RegisterModel": "RegisterModel", "Lambda": "Lambda", "Condition": "Condition", "Fail": "Fail"}
_MARKS = {"Succeeded": "✓", "Cached": "↺", "Failed": "✗", "Stopped": "■"}


def step_kind(step: dict) -> str:
    return next((_KINDS[key] for key in step.get("Metadata", {}) if key in _KINDS), "")


def step_seconds(step: dict) -> float:
    return (step["EndTime"] - step["StartTime"]).total_seconds() if step.get("EndTime") else 0.0


def shown_status(step: dict) -> str:
    return "Cached" if step.get("CacheHitResult") and step["StepStatus"] == "Succeeded" else step["StepStatus"]


class ExecutionWatcher(PeriodicThread):
    """Polls in a thread until closed; prints each step once when it starts and once when it ends."""
    name = "execution-watcher"

    def __init__(self, clients, execution_arn: str, stream: TextIO = sys.stderr, poll_seconds: float = 1.0):
        super().__init__(poll_seconds)
        self.sm, self.logs = clients.client("sagemaker"), clients.client("logs")
        self.arn, self.stream = execution_arn, stream
        self._seen: dict[str, str] = {}
        self._log_tokens: dict[str, str | None] = {}
        self._job_epochs: dict[str, int | None] = {}

    def tick(self) -> None:
        try:
            self.poll()
        except ClientError:
            pass    # a missed poll only delays a line

    def final(self) -> None:
        self.poll()

    close = PeriodicThread.stop

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def poll(self) -> None:
        steps = [s for page in self.sm.get_paginator("list_pipeline_execution_steps").paginate(
            PipelineExecutionArn=self.arn, SortOrder="Ascending") for s in page["PipelineExecutionSteps"]]
        for step in steps:
            name, status = step["StepName"], shown_status(step)
            if status == "Executing" and name not in self._seen:
                self._write(f"  ▶ {name:<24} {step_kind(step)} …")
            if "TrainingJob" in step.get("Metadata", {}) and (status == "Executing" or self._seen.get(name) != status):
                self._training_milestones(step["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[1])
            if status in _MARKS and self._seen.get(name) != status:
                failure = f": {step.get('FailureReason')}" if status == "Failed" else ""
                self._write(f"  {_MARKS[status]} {name:<24} {status.lower()} in {step_seconds(step):.1f}s{failure}")
            self._seen[name] = status

    def _epochs(self, job_name: str) -> int | None:
        """The job's ``epochs`` hyperparameter: milestones are quarters of it."""
        if job_name not in self._job_epochs:
            hyperparameters = self.sm.describe_training_job(TrainingJobName=job_name).get("HyperParameters", {})
            epochs = hyperparameters.get("epochs", "")
            self._job_epochs[job_name] = int(epochs) if epochs.isdigit() else None
        return self._job_epochs[job_name]

    def _training_milestones(self, job_name: str) -> None:
        group = LOG_GROUPS["Training"]
        try:
            streams = self.logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=job_name)["logStreams"]
            epochs = self._epochs(job_name)
        except ClientError:
            return
        for log_stream in streams:
            name = log_stream["logStreamName"]
            request = {"logGroupName": group, "logStreamName": name, "startFromHead": True}
            if self._log_tokens.get(name):
                request["nextToken"] = self._log_tokens[name]
            response = self.logs.get_log_events(**request)
            self._log_tokens[name] = response.get("nextForwardToken")
            for event in response["events"]:
                shown = milestone(event["message"], epochs)
                if shown:
                    self._write(f"      {shown}")
