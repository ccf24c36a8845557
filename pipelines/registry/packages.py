"""Reading and changing model packages of the group, and what approving or rejecting one means for the endpoint.

Which package the endpoint serves, and which one it should serve, are the deploy Lambda's rules
(``inference_workflow/deploy_model/lambda_function.py``); this module asks the Lambda module
rather than restating them.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from botocore.exceptions import ClientError, WaiterError

from inference_workflow.deploy_model.lambda_function import IN_PROGRESS, describe_endpoint, live_package_arn
from pipelines.errors import PackageNotFoundError
from pipelines.registry.audit import Decision, DeploymentRecord, decision_update, decisions, deployment_records
from pipelines.registry.compare import evaluation_uri, training_job_name
from scones_common.s3uri import parse_s3_uri

log = logging.getLogger("registry")
WAIT_DELAY_SECONDS = 2


@dataclass(frozen=True)
class PackageRow:
    version: int | None
    arn: str
    status: str
    accuracy: str
    git_commit: str
    created: str
    gate_figures: str = ""     # the ``challenger`` metadata the champion gate recorded at registration


@dataclass(frozen=True)
class VersionView:
    """What ``compare`` shows of one version: its description, evaluation.json and training hyperparameters."""
    package: dict
    evaluation: dict | None
    hyperparameters: dict | None
    notes: tuple[str, ...] = ()     # what could not be read, and why


@dataclass(frozen=True)
class RejectionOutcome:
    """What rejecting a package means for the endpoint, decided before the deploy Lambda reacts."""
    was_live: bool
    fallback_arn: str | None     # the newest other approved package the deploy Lambda switches to

    @property
    def stays_live(self) -> bool:
        return self.was_live and self.fallback_arn is None


def version_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def list_packages(sm, group: str) -> list[PackageRow]:
    rows = []
    pages = sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group, SortBy="CreationTime",
                                                             SortOrder="Descending")
    for page in pages:
        for summary in page["ModelPackageSummaryList"]:
            detail = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            metadata = detail.get("CustomerMetadataProperties", {})
            rows.append(PackageRow(detail.get("ModelPackageVersion"), summary["ModelPackageArn"],
                                   detail["ModelApprovalStatus"], metadata.get("accuracy", ""),
                                   metadata.get("git_commit", ""), str(detail.get("CreationTime", ""))[:19],
                                   metadata.get("challenger", "")))
    return rows


def version_view(sm, s3, group: str, ref: str) -> VersionView:
    """One version as ``compare`` shows it: DescribeModelPackage, the evaluation.json of its ModelStatistics (S3)
    and the hyperparameters of the training job that made its artifact (DescribeTrainingJob); what cannot be
    read is a note, never an error, so two versions can always be compared."""
    package = sm.describe_model_package(ModelPackageName=resolve_package(sm, group, ref))
    notes = []
    evaluation = None
    uri = evaluation_uri(package)
    if not uri:
        notes.append("no ModelStatistics (evaluation.json) registered")
    else:
        try:
            location = parse_s3_uri(uri)
            evaluation = json.loads(s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read())
        except (ClientError, ValueError) as exc:
            notes.append(f"{uri} could not be read: {exc}")
    hyperparameters = None
    containers = package.get("InferenceSpecification", {}).get("Containers", [{}]) or [{}]
    job = training_job_name(containers[0].get("ModelDataUrl"))
    if job:
        try:
            hyperparameters = sm.describe_training_job(TrainingJobName=job).get("HyperParameters")
        except ClientError as exc:
            notes.append(f"training job {job}: {exc.response['Error'].get('Message') or exc.response['Error']['Code']}")
    else:
        notes.append("the artifact's path names no training job")
    return VersionView(package, evaluation, hyperparameters, tuple(notes))


_VERSIONED_PACKAGE_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[^:]+:\d{12}:model-package/(?P<group>[^/]+)/\d+")


def resolve_package(sm, group: str, ref: str) -> str:
    """Accepts a full ARN or a version number of the group; an ARN must be a version of the configured group.

    ARNs spell names in lower case, so the group is compared that way.
    """
    if ref.startswith("arn:"):
        match = _VERSIONED_PACKAGE_ARN.fullmatch(ref)
        if not match:
            raise PackageNotFoundError(f"{ref} is not the ARN of a versioned model package "
                                       "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)")
        if match["group"].lower() != group.lower():
            raise PackageNotFoundError(f"{ref} is a version of group {match['group']}, not of the configured group "
                                       f"{group}; set registry.model_package_group (or "
                                       "SCONES__REGISTRY__MODEL_PACKAGE_GROUP) to work on that group")
        return ref
    for row in list_packages(sm, group):
        if str(row.version) == ref:
            return row.arn
    raise PackageNotFoundError(f"no model package version {ref} in group {group}; see 'scones-registry list'")


def set_status(sm, sts, package_arn: str, status: str, reason: str) -> None:
    """Records the decision with the caller's identity (STS GetCallerIdentity) and the reason."""
    metadata = sm.describe_model_package(ModelPackageName=package_arn).get("CustomerMetadataProperties", {})
    update = decision_update(status, sts.get_caller_identity()["Arn"], reason, metadata)
    sm.update_model_package(ModelPackageArn=package_arn, **update)


def history(sm, group: str) -> list[tuple[str, Decision | DeploymentRecord]]:
    """Every recorded decision and deployment outcome of the group as (version, entry), oldest first."""
    found = []
    for row in list_packages(sm, group):
        metadata = sm.describe_model_package(ModelPackageName=row.arn).get("CustomerMetadataProperties", {})
        found += [(str(row.version), entry) for entry in [*decisions(metadata), *deployment_records(metadata)]]
    return sorted(found, key=lambda item: item[1].when)


def rejection_outcome(sm, group: str, endpoint_name: str, package_arn: str) -> RejectionOutcome:
    """Read before the rejection: is the package live, and which approved package would replace it.

    An endpoint in the middle of an update may be switching to this very package: wait for it first.
    """
    settled_endpoint(sm, endpoint_name)
    others = [row for row in list_packages(sm, group) if row.status == "Approved" and row.arn != package_arn]
    fallback = max(others, key=lambda row: row.version or 0).arn if others else None
    return RejectionOutcome(live_package_arn(sm, endpoint_name) == package_arn, fallback)


def settled_endpoint(sm, endpoint_name: str, timeout_seconds: float = 1800) -> dict | None:
    """The endpoint once it is not Creating/Updating (waiting with the SDK waiter), or None if there is none."""
    endpoint = describe_endpoint(sm, endpoint_name)
    if endpoint is not None and endpoint["EndpointStatus"] in IN_PROGRESS:
        log.info("endpoint %s is %s: waiting for it to finish", endpoint_name, endpoint["EndpointStatus"])
        try:
            sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint_name, WaiterConfig={
                "Delay": WAIT_DELAY_SECONDS, "MaxAttempts": max(1, int(timeout_seconds / WAIT_DELAY_SECONDS))})
        except WaiterError:
            pass    # Failed, or still busy: the caller sees the status
        endpoint = describe_endpoint(sm, endpoint_name)
    return endpoint


def delete_endpoint(sm, endpoint_name: str) -> bool:
    """Deletes the endpoint once it is not in progress (SageMaker refuses that); False if there is none."""
    if settled_endpoint(sm, endpoint_name) is None:
        return False
    sm.delete_endpoint(EndpointName=endpoint_name)
    return True
