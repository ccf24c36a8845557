"""``scones-registry``: what ML engineers do in the Model Registry.

    scones-registry list                 packages with status, accuracy, commit; the last deployment's outcome
    scones-registry approve ARN|VERSION --reason "…"   approve (the EventBridge rule then deploys it)
    scones-registry reject ARN|VERSION --reason "…"
    scones-registry live                 the package behind the endpoint
    scones-registry history              every decision (who, when, why) and the last deployment's outcome
"""
from __future__ import annotations

import argparse
import logging
import sys

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.deploy.audit import ReasonRequiredError, decision_update, decisions, deployment_outcome
from pipelines.deploy.deployer import live_package_arn
from scones_common.config import load_config
from scones_common.logs import setup_logging

log = logging.getLogger("registry")


def list_packages(sm, group: str) -> list[dict]:
    rows = []
    pages = sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group, SortBy="CreationTime",
                                                             SortOrder="Descending")
    for page in pages:
        for summary in page["ModelPackageSummaryList"]:
            detail = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            metadata = detail.get("CustomerMetadataProperties", {})
            rows.append({"version": detail.get("ModelPackageVersion"), "arn": summary["ModelPackageArn"],
                         "status": detail["ModelApprovalStatus"], "accuracy": metadata.get("accuracy", ""),
                         "git_commit": metadata.get("git_commit", ""),
                         "created": str(detail.get("CreationTime", ""))[:19]})
    return rows


def resolve_package(sm, group: str, ref: str) -> str:
    """Accepts a full ARN or a version number of the group."""
    if ref.startswith("arn:"):
        return ref
    for row in list_packages(sm, group):
        if str(row["version"]) == ref:
            return row["arn"]
    raise LookupError(f"no model package version {ref} in group {group}; see 'scones-registry list'")


def set_status(sm, sts, package_arn: str, status: str, reason: str | None) -> None:
    """Records the decision with the caller's identity (STS GetCallerIdentity) and the reason."""
    metadata = sm.describe_model_package(ModelPackageName=package_arn).get("CustomerMetadataProperties", {})
    update = decision_update(status, sts.get_caller_identity()["Arn"], reason or "", metadata)
    sm.update_model_package(ModelPackageArn=package_arn, **update)


def describe_endpoint(sm, name: str) -> dict | None:
    try:
        return sm.describe_endpoint(EndpointName=name)
    except ClientError:
        return None


def format_history(sm, group: str, endpoint_name: str) -> str:
    lines = []
    for row in reversed(list_packages(sm, group)):
        metadata = sm.describe_model_package(ModelPackageName=row["arn"]).get("CustomerMetadataProperties", {})
        for d in decisions(metadata):
            lines.append(f"{d.when:<20}  v{row['version']!s:<4} {d.status:<9} by {d.who}: {d.reason}")
    lines.sort()
    lines.append(f"endpoint {endpoint_name}: {deployment_outcome(describe_endpoint(sm, endpoint_name))}")
    return "\n".join(lines)


def format_table(rows: list[dict], live_arn: str | None) -> str:
    header = f"{'ver':>4}  {'status':<22} {'accuracy':>8}  {'commit':<10} {'created':<19}  live"
    lines = [header, "-" * len(header)]
    for r in rows:
        accuracy = f"{float(r['accuracy']):.4f}" if r["accuracy"] else "-"
        lines.append(f"{r['version']!s:>4}  {r['status']:<22} {accuracy:>8}  {r['git_commit'][:10]:<10} "
                     f"{r['created']:<19}  {'*' if r['arn'] == live_arn else ''}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--environment", choices=("local", "dev", "prod"))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    sub.add_parser("live")
    approve = sub.add_parser("approve")
    approve.add_argument("package")
    approve.add_argument("--reason", required=True, help="why; recorded with who approved")
    sub.add_parser("history")
    reject = sub.add_parser("reject")
    reject.add_argument("package")
    reject.add_argument("--reason", required=True, help="why; stored as the ApprovalDescription")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.environment)
    sm = boto3.client("sagemaker", region_name=config.project.region)
    group = config.registry.model_package_group
    try:
        if args.command == "list":
            print(format_table(list_packages(sm, group), live_package_arn(sm, config.endpoint.name)))
            print(f"endpoint {config.endpoint.name}: {deployment_outcome(describe_endpoint(sm, config.endpoint.name))}")
        elif args.command == "live":
            print(live_package_arn(sm, config.endpoint.name) or f"endpoint {config.endpoint.name} does not exist")
        elif args.command == "history":
            print(format_history(sm, group, config.endpoint.name))
        else:
            arn = resolve_package(sm, group, args.package)
            sts = boto3.client("sts", region_name=config.project.region)
            set_status(sm, sts, arn, "Approved" if args.command == "approve" else "Rejected", args.reason)
            print(f"{arn} -> {'Approved' if args.command == 'approve' else 'Rejected'}")
    except (ClientError, BotoCoreError, LookupError, ReasonRequiredError) as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
