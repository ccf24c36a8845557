"""The jobs the local pipeline executor runs, kept in moto's SageMaker with their real state.

moto's CreateTrainingJob/CreateProcessingJob/CreateTransformJob record a job that is
``Completed`` at once, with made-up metrics (``train:progress``, a ``test:dcg`` metric
definition). Here the executor's jobs are recorded when they start (``InProgress``, secondary
status ``Starting`` then ``Training``), and finish ``Completed`` with the runner's
FinalMetricDataList, ModelArtifacts and times, ``Failed`` with its FailureReason or ``Stopped``, so
DescribeTrainingJob / ListTrainingJobs / DescribeProcessingJob / DescribeTransformJob show what
really ran. ``snapshot``/``restore`` carry them across restarts. The canary test in
tests/local_runtime/moto_ext/test_sagemaker_jobs.py fails loudly if a moto upgrade reshapes what is used here.
"""
from __future__ import annotations

import copy
import inspect
import re
import threading
from datetime import UTC, datetime
from typing import Any

from local_runtime.aws_env import ACCOUNT_ID

_CREATE = {"Training": "create_training_job", "Processing": "create_processing_job", "Transform": "create_transform_job"}
_STORE = {"Training": "training_jobs", "Processing": "processing_jobs", "Transform": "transform_jobs"}
_STATUS = {"Training": "training_job_status", "Processing": "processing_job_status", "Transform": "transform_job_status"}
_START = {"Training": "training_start_time", "Processing": "processing_start_time", "Transform": "transform_start_time"}
_END = {"Training": "training_end_time", "Processing": "processing_end_time", "Transform": "transform_end_time"}
_LOCK = threading.Lock()


def backend(region: str):
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT_ID][region]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _now() -> datetime:
    return datetime.now(UTC)


def _job(region: str, kind: str, name: str):
    return getattr(backend(region), _STORE[kind])[name]


def _transition(job, status: str, message: str) -> None:
    now = _now()
    for previous in job.secondary_status_transitions:
        previous.setdefault("EndTime", now)
    job.secondary_status_transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
    job.secondary_status = status


def job_started(region: str, kind: str, name: str, arn: str, arguments: dict) -> str:
    """Records the job as SageMaker shows it once it is created: InProgress. Returns its ARN."""
    sm = backend(region)
    create = getattr(sm, _CREATE[kind])
    accepted = inspect.signature(create).parameters
    request = copy.deepcopy(arguments)
    kwargs = {param: None for param in accepted}
    kwargs.update({k: False for k in accepted if k.startswith("enable_")})
    kwargs.update({_snake(key): value for key, value in request.items() if _snake(key) in accepted})
    kwargs[f"{_snake(kind)}_job_name"] = name
    with _LOCK:
        job = create(**kwargs)
        job.arn = arn
        setattr(job, _STATUS[kind], "InProgress")
        setattr(job, _START[kind], _now())
        setattr(job, _END[kind], None)
        job.last_modified_time = _now()
        if kind == "Training":
            job.algorithm_specification = copy.deepcopy(arguments.get("AlgorithmSpecification", {}))
            job.final_metric_data_list = []
            job.secondary_status_transitions = []
            _transition(job, "Starting", "Preparing the instances for training")
            _transition(job, "Training", "Training image download completed. Training in progress.")
    return arn


def _end(region: str, kind: str, name: str, status: str):
    """Marks the job ended with ``status``; returns it and the end time."""
    job = _job(region, kind, name)
    now = _now()
    setattr(job, _STATUS[kind], status)
    setattr(job, _END[kind], now)
    job.last_modified_time = now
    return job, now


def job_finished(region: str, kind: str, name: str, properties: dict) -> None:
    with _LOCK:
        job, now = _end(region, kind, name, "Completed")
        if kind == "Training":
            job.model_artifacts = properties.get("ModelArtifacts", job.model_artifacts)
            job.final_metric_data_list = [{**metric, "Timestamp": now}
                                          for metric in properties.get("FinalMetricDataList", [])]
            seconds = max(1, round(properties.get("TrainingTimeInSeconds", 0)))
            job.training_time_in_seconds = job.billable_time_in_seconds = seconds
            _transition(job, "Uploading", "Uploading generated training model")
            _transition(job, "Completed", "Training job completed")
            job.secondary_status_transitions[-1]["EndTime"] = now


def job_failed(region: str, kind: str, name: str, reason: str) -> None:
    with _LOCK:
        job, now = _end(region, kind, name, "Failed")
        job.failure_reason = reason[:1024]
        if kind == "Training":
            _transition(job, "Failed", reason[:1024])
            job.secondary_status_transitions[-1]["EndTime"] = now
        elif kind == "Processing":
            job.exit_message = reason[:1024]


def job_stopped(region: str, kind: str, name: str) -> None:
    """StopPipelineExecution stopped the step's job: Stopped, as StopTrainingJob (…) leaves it."""
    with _LOCK:
        job, now = _end(region, kind, name, "Stopped")
        if kind == "Training":
            _transition(job, "Stopping", "Stopping the training job")
            _transition(job, "Stopped", "Training job stopped")
            job.secondary_status_transitions[-1]["EndTime"] = now


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def snapshot(region: str) -> list[dict]:
    """Every job in the local SageMaker, as restorable attribute sets."""
    sm = backend(region)
    return [{"kind": kind, "attributes": _encode(dict(vars(job)))}
            for kind, store in _STORE.items() for job in list(getattr(sm, store).values())]


def restore(region: str, jobs: list[dict]) -> int:
    """Puts saved jobs back; a job that was InProgress when the stack stopped is Failed, as it can no longer finish."""
    sm = backend(region)
    for saved in jobs:
        kind, attributes = saved["kind"], _decode(saved["attributes"])
        name = attributes[f"{_snake(kind)}_job_name"]
        request = {"".join(part.title() for part in key.split("_")): value for key, value in attributes.items()}
        job_started(region, kind, name, attributes["arn"], request)
        job = getattr(sm, _STORE[kind])[name]
        job.__dict__.update(attributes)
        if getattr(job, _STATUS[kind]) == "InProgress":
            job_failed(region, kind, name, "the local stack stopped while the job was running")
    return len(jobs)
