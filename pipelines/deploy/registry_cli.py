"""``scones-registry``: what ML engineers do in the Model Registry.

    scones-registry list                 packages with status, accuracy, commit
    scones-registry approve ARN|VERSION  approve (the EventBridge rule then deploys it)
    scones-registry reject ARN|VERSION --reason "…"
    scones-registry live                 the package behind the endpoint
"""
from __future__ import annotations

import argparse
import logging
import sys

import boto3

from pipelines.deploy.deployer import live_package_arn
from pipelines.errors import PackageNotFoundError
from scones_common.config import ENVIRONMENTS, load_config
from scones_common.errors import cli_entry

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
    raise PackageNotFoundError(f"no model package version {ref} in group {group}; see 'scones-registry list'")


def set_status(sm, package_arn: str, status: str, reason: str | None) -> None:
    kwargs = {"ModelPackageArn": package_arn, "ModelApprovalStatus": status}
    if reason:
        kwargs["ApprovalDescription"] = reason
    sm.update_model_package(**kwargs)


def format_table(rows: list[dict], live_arn: str | None) -> str:
    header = f"{'ver':>4}  {'status':<22} {'accuracy':>8}  {'commit':<10} {'created':<19}  live"
    lines = [header, "-" * len(header)]
    for r in rows:
        accuracy = f"{float(r['accuracy']):.4f}" if r["accuracy"] else "-"
        lines.append(f"{r['version']!s:>4}  {r['status']:<22} {accuracy:>8}  {r['git_commit'][:10]:<10} "
                     f"{r['created']:<19}  {'*' if r['arn'] == live_arn else ''}")
    return "\n".join(lines)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--environment", choices=ENVIRONMENTS)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    sub.add_parser("live")
    approve = sub.add_parser("approve")
    approve.add_argument("package")
    approve.add_argument("--reason")
    reject = sub.add_parser("reject")
    reject.add_argument("package")
    reject.add_argument("--reason", required=True, help="why; stored as the ApprovalDescription")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.environment)
    sm = boto3.client("sagemaker", region_name=config.project.region)
    group = config.registry.model_package_group
    if args.command == "list":
        print(format_table(list_packages(sm, group), live_package_arn(sm, config.endpoint.name)))
    elif args.command == "live":
        print(live_package_arn(sm, config.endpoint.name) or f"endpoint {config.endpoint.name} does not exist")
    else:
        arn = resolve_package(sm, group, args.package)
        set_status(sm, arn, "Approved" if args.command == "approve" else "Rejected", args.reason)
        print(f"{arn} -> {'Approved' if args.command == 'approve' else 'Rejected'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
