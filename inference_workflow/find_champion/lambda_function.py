"""Tells the pipeline which model the challenger must beat: the champion (an AWS Lambda: stdlib + boto3 only).

The champion is the model the endpoint serves now: DescribeEndpoint → its current EndpointConfig
(while Updating, the old config, which still serves) → the variant's Model → the Model's
ModelPackageName (the deploy Lambda creates models from packages) or, for a model made from an
artifact, the group's package holding that ModelDataUrl. With no endpoint (or a Failed one, which
serves nothing), the champion is the newest Approved package of the group, served by the Model the
deploy Lambda would create for it (``<endpoint>-v<version>``; created here from the package if it
does not exist yet, with EXECUTION_ROLE_ARN). With neither, there is no champion: the pipeline's
ScoreChampion step then scores with the challenger's own model (``challenger_model_name``), which
CompareWithChampion ignores, and the first model of a group passes on the absolute gate alone.

Event: ``{"model_package_group": str, "endpoint_name": str, "challenger_model_name": str}``.
Returns strings (the LambdaStep's declared output type): ``found`` ("true"/"false"),
``model_name`` (what ScoreChampion's transform runs), ``model_package_arn`` and
``model_package_version`` ("" when the served model is not in the registry), ``source``
("endpoint", "registry" or "none").
"""
import logging
import os

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger()
log.setLevel(logging.INFO)

sagemaker = boto3.client("sagemaker")


class InvalidEventError(ValueError):
    """The event lacks one of its three non-empty strings."""


class ChampionModelError(RuntimeError):
    """The champion's Model is missing and cannot be created (no EXECUTION_ROLE_ARN)."""


FIELDS = ("model_package_group", "endpoint_name", "challenger_model_name")


def _check(event) -> tuple[str, str, str]:
    if not isinstance(event, dict):
        raise InvalidEventError(f"expected a JSON object with {', '.join(FIELDS)}, got {type(event).__name__}")
    values = tuple(event.get(field) for field in FIELDS)
    for field, value in zip(FIELDS, values):
        if not isinstance(value, str) or not value:
            raise InvalidEventError(f"{field} must be a non-empty string, got {value!r}")
    return values


def _not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") in ("ResourceNotFound", "ResourceNotFoundException") or (
        error.get("Code") == "ValidationException" and error.get("Message", "").startswith("Could not find"))


def _describe_endpoint(name: str) -> dict | None:
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise


def _packages(group: str, **filters):
    pages = sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group, **filters)
    try:
        for page in pages:
            yield from page["ModelPackageSummaryList"]
    except ClientError as exc:   # no group yet: no package
        if exc.response["Error"]["Code"] not in ("ResourceNotFound", "ValidationException"):
            raise


def _package_holding(group: str, model_data_url: str) -> dict | None:
    for summary in _packages(group):
        package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        containers = package.get("InferenceSpecification", {}).get("Containers", [])
        if any(c.get("ModelDataUrl") == model_data_url for c in containers):
            return package
    return None


def _answer(found: bool, model_name: str, package: dict | None, source: str) -> dict:
    return {"found": "true" if found else "false", "model_name": model_name,
            "model_package_arn": package["ModelPackageArn"] if package else "",
            "model_package_version": str(package.get("ModelPackageVersion", "")) if package else "",
            "source": source}


def served_champion(group: str, endpoint: dict) -> dict:
    """The champion as the endpoint's current configuration names it."""
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model_name = config["ProductionVariants"][0]["ModelName"]
    model = sagemaker.describe_model(ModelName=model_name)
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    if container.get("ModelPackageName"):
        package = sagemaker.describe_model_package(ModelPackageName=container["ModelPackageName"])
    else:
        package = _package_holding(group, container.get("ModelDataUrl", ""))
    return _answer(True, model_name, package, "endpoint")


def newest_approved(group: str) -> dict | None:
    newest = None
    for summary in _packages(group, ModelApprovalStatus="Approved"):
        if newest is None or summary.get("ModelPackageVersion", 0) > newest.get("ModelPackageVersion", 0):
            newest = summary
    return newest


def model_for(package: dict, endpoint_name: str) -> str:
    """The Model the deploy Lambda creates for a package (``<endpoint>-v<version>``), created if missing."""
    name = f"{endpoint_name}-v{package['ModelPackageVersion']}"
    try:
        sagemaker.describe_model(ModelName=name)
        return name
    except ClientError as exc:
        if not _not_found(exc):
            raise
    role = os.environ.get("EXECUTION_ROLE_ARN")
    if not role:
        raise ChampionModelError(f"model {name} for the champion {package['ModelPackageArn']} does not exist and "
                                 "EXECUTION_ROLE_ARN is not set to create it")
    try:
        sagemaker.create_model(ModelName=name, ExecutionRoleArn=role,
                               PrimaryContainer={"ModelPackageName": package["ModelPackageArn"]})
    except ClientError as exc:   # created concurrently (by the deploy Lambda): the same model
        if not exc.response["Error"].get("Message", "").startswith("Cannot create already existing"):
            raise
    return name


def lambda_handler(event, context):
    group, endpoint_name, challenger_model = _check(event)
    endpoint = _describe_endpoint(endpoint_name)
    if endpoint is not None and endpoint["EndpointStatus"] != "Failed":
        answer = served_champion(group, endpoint)
    else:
        newest = newest_approved(group)
        if newest is None:
            log.info("no endpoint %s and no approved package in %s: no champion", endpoint_name, group)
            return _answer(False, challenger_model, None, "none")
        package = sagemaker.describe_model_package(ModelPackageName=newest["ModelPackageArn"])
        answer = _answer(True, model_for(package, endpoint_name), package, "registry")
    log.info("champion: model %s, package %s (from the %s)", answer["model_name"], answer["model_package_arn"] or "-",
             answer["source"])
    return answer
