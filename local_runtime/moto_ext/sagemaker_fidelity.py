"""Answers of moto's SageMaker that differ from SageMaker's, put right.

- An unknown pipeline is ``ResourceNotFound`` (``Pipeline '<arn>' does not exist.``), not moto's
  ``ValidationException``; an unknown execution ``Pipeline execution '<arn>' does not exist.``.
- CreatePipeline/UpdatePipeline refuse a definition in which a step depends on a Fail step (through
  ``DependsOn`` or a ``Steps.<Fail step>`` reference): a Fail step ends the execution, SageMaker
  refuses it as a dependency.
- DescribeEndpoint's production variants carry ``CurrentWeight``/``DesiredWeight`` (a variant's
  ``InitialVariantWeight``, 1.0 when the config gives none, as SageMaker defaults it); moto leaves
  them out unless the config set a weight.

The canary test in tests/local_runtime/moto_ext/test_sagemaker_fidelity.py fails loudly if a moto
upgrade moves what is replaced here.
"""
from __future__ import annotations

import functools
import json
import re
from typing import Any

from local_runtime.errors import LocalRuntimeError

_WRAPPED = "__scones_sagemaker_fidelity__"


def get_pipeline_from_name(pipelines: dict, pipeline_name: str):
    from moto.sagemaker.exceptions import ResourceNotFound

    try:
        return pipelines[pipeline_name]
    except KeyError:
        region, account = _region_account(pipelines)
        raise ResourceNotFound(f"Pipeline 'arn:aws:sagemaker:{region}:{account}:pipeline/{pipeline_name}' "
                               "does not exist.") from None


def get_pipeline_execution_from_arn(pipelines: dict, pipeline_execution_arn: str):
    from moto.sagemaker.exceptions import ResourceNotFound

    name = pipeline_execution_arn.split(":pipeline/", 1)[-1].split("/execution/", 1)[0]
    pipeline = pipelines.get(name)
    execution = pipeline.pipeline_executions.get(pipeline_execution_arn) if pipeline else None
    if execution is None:
        raise ResourceNotFound(f"Pipeline execution '{pipeline_execution_arn}' does not exist.")
    return execution


def _region_account(pipelines: dict) -> tuple[str, str]:
    import os

    from local_runtime.aws_env import ACCOUNT_ID

    for pipeline in pipelines.values():       # any pipeline's ARN names the backend's region and account
        parts = pipeline.arn.split(":")
        return parts[3], parts[4]
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1", ACCOUNT_ID


# -- Fail steps as dependencies ----------------------------------------------------------------------------

class FailStepDependencyError(LocalRuntimeError, ValueError):
    pass


def _steps(steps: list) -> list[dict]:
    """Every step of a definition, those inside Condition branches too."""
    found = []
    for step in steps or []:
        if not isinstance(step, dict):
            continue
        found.append(step)
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments") or {}
            found.extend(_steps(arguments.get("IfSteps")) + _steps(arguments.get("ElseSteps")))
    return found


def _references(value: Any) -> set[str]:
    """The steps ``value`` reads properties of (``{"Get": "Steps.<name>.…"}``)."""
    names: set[str] = set()
    if isinstance(value, dict):
        target = value.get("Get")
        if isinstance(target, str):
            match = re.match(r"Steps\.([^.\[]+)", target)
            if match:
                names.add(match.group(1))
        for item in value.values():
            names |= _references(item)
    elif isinstance(value, list):
        for item in value:
            names |= _references(item)
    return names


def check_fail_dependencies(definition: str | None) -> None:
    """:class:`FailStepDependencyError` when a step depends on a Fail step."""
    try:
        document = json.loads(definition or "{}")
    except ValueError:
        return                  # not JSON: moto keeps definitions as given, the executor reports it
    if not isinstance(document, dict):
        return
    steps = _steps(document.get("Steps"))
    fail_steps = {step.get("Name") for step in steps if step.get("Type") == "Fail"}
    for step in steps:
        depends = set(step.get("DependsOn") or []) | _references(step.get("Arguments"))
        for fail in sorted(depends & fail_steps):
            raise FailStepDependencyError(
                f"Invalid pipeline definition: step {step.get('Name')} depends on Fail step {fail}. A Fail step "
                "ends the execution; it cannot be a dependency of another step.")


def _checking_fail_dependencies(original, definition_position: int):
    @functools.wraps(original)
    def checked(self, *args, **kwargs):
        from moto.sagemaker.exceptions import ValidationError

        definition = kwargs.get("pipeline_definition")
        if definition is None and len(args) > definition_position:
            definition = args[definition_position]
        try:
            check_fail_dependencies(definition)
        except FailStepDependencyError as exc:
            raise ValidationError(str(exc)) from None
        return original(self, *args, **kwargs)
    setattr(checked, _WRAPPED, original)
    return checked


# -- variant weights ---------------------------------------------------------------------------------------

def _weighted(original):
    @functools.wraps(original)
    def process(self, production_variants):
        variants = original(self, production_variants)
        for variant, requested in zip(variants, production_variants):
            weight = float(requested.get("InitialVariantWeight") or 1.0)
            variant.setdefault("CurrentWeight", weight)
            variant.setdefault("DesiredWeight", weight)
        return variants
    setattr(process, _WRAPPED, original)
    return process


def install() -> None:
    import inspect

    from moto.sagemaker import models

    models.get_pipeline_from_name = get_pipeline_from_name
    models.get_pipeline_execution_from_arn = get_pipeline_execution_from_arn
    for name in ("create_pipeline", "update_pipeline"):
        current = getattr(models.SageMakerModelBackend, name)
        if not hasattr(current, _WRAPPED):
            parameters = list(inspect.signature(current).parameters)     # self first; update_pipeline: **kwargs
            position = parameters.index("pipeline_definition") - 1 if "pipeline_definition" in parameters else 99
            setattr(models.SageMakerModelBackend, name, _checking_fail_dependencies(current, position))
    current = models.FakeEndpoint._process_production_variants
    if not hasattr(current, _WRAPPED):
        models.FakeEndpoint._process_production_variants = _weighted(current)
