"""Tells the pipeline whether a model artifact is already registered in the model package group.

A cached pipeline run (same data, code and hyperparameters) reuses TrainModel's artifact; the
pipeline asks this function before RegisterModel and skips registering and deploying when a
package of the group already holds that ``ModelDataUrl``, instead of adding a duplicate version
and redeploying the same model.

Event: ``{"model_package_group": str, "model_data_url": "s3://…/model.tar.gz"}``.
Returns ``{"registered": "true"|"false", "model_package_arn": str, "approval_status": str}``
(strings: the LambdaStep's declared output type), newest matching package first.
"""
import logging

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger()
log.setLevel(logging.INFO)

sagemaker = boto3.client("sagemaker")


class InvalidEventError(ValueError):
    """The event lacks a non-empty 'model_package_group' or an s3:// 'model_data_url'."""


def _check(event) -> tuple[str, str]:
    if not isinstance(event, dict):
        raise InvalidEventError(f"expected a JSON object with model_package_group and model_data_url, "
                                f"got {type(event).__name__}")
    group, url = event.get("model_package_group"), event.get("model_data_url")
    if not isinstance(group, str) or not group:
        raise InvalidEventError("model_package_group must be a non-empty string")
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise InvalidEventError(f"model_data_url must be an s3:// URI, got {url!r}")
    return group, url


def _packages(group: str):
    pages = sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")
    try:
        for page in pages:
            yield from page["ModelPackageSummaryList"]
    except ClientError as exc:   # no group yet: nothing is registered
        if exc.response["Error"]["Code"] not in ("ResourceNotFound", "ValidationException"):
            raise


def lambda_handler(event, context):
    group, url = _check(event)
    for summary in _packages(group):
        package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        containers = package.get("InferenceSpecification", {}).get("Containers", [])
        if any(c.get("ModelDataUrl") == url for c in containers):
            log.info("%s is already registered as %s (%s)", url, package["ModelPackageArn"],
                     package["ModelApprovalStatus"])
            return {"registered": "true", "model_package_arn": package["ModelPackageArn"],
                    "approval_status": package["ModelApprovalStatus"]}
    log.info("%s is not registered in %s", url, group)
    return {"registered": "false", "model_package_arn": "", "approval_status": ""}
