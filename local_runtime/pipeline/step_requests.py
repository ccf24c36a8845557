"""The SageMaker request a pipeline step becomes, for checking against the service model before it runs.

A Processing, Training, Transform, Model or RegisterModel step's resolved arguments are the request
body of one SageMaker API call, plus the job or resource name the service adds; the executor checks
that request with :func:`local_runtime.request_validation.validate_request` and fails the step as
the service would refuse it.
"""
from __future__ import annotations

from collections.abc import Mapping

_JOB_REQUESTS = {   # step type -> (the API call its arguments become, the name member the service adds)
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Model": ("CreateModel", "ModelName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
    "RegisterModel": ("CreateModelPackage", None),
}


def step_request(step_type: str, arguments: Mapping, name: str) -> tuple[str, dict] | None:
    """The request SageMaker makes from a step's resolved arguments: the arguments plus the job's name."""
    if step_type not in _JOB_REQUESTS:
        return None
    operation, name_member = _JOB_REQUESTS[step_type]
    return operation, {**arguments, **({name_member: name} if name_member else {})}
