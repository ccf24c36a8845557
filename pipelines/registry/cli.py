"""``scones-registry``: what ML engineers do in the Model Registry.

    scones-registry list                 packages with status, accuracy, commit, live marker; the last deployment
    scones-registry approve ARN|VERSION --reason "…"   approve (the EventBridge rule then deploys it)
    scones-registry reject ARN|VERSION --reason "…" [--delete-endpoint]
    scones-registry live                 the package behind the endpoint
    scones-registry history              every decision (who, when, why), every deployment outcome, the endpoint now
    scones-registry compare A B          two versions side by side (figures, data, commit, hyperparameters, approvals)

Approvals and rejections record the caller's identity (STS GetCallerIdentity) and the reason in
the package (pipelines/registry/audit.py), so the registry itself is the audit trail.

Rejecting the package the endpoint serves when no other package is approved leaves the endpoint
serving it: the command says so and exits with 3, unless ``--delete-endpoint`` stops the endpoint.
"""
from __future__ import annotations

import argparse
import logging
import sys

import boto3

from inference_workflow.deploy_model.lambda_function import describe_endpoint
from pipelines.registry.audit import deployment_outcome
from pipelines.registry.compare import compare, format_comparison, version_facts
from pipelines.registry.packages import (
    PackageRow,
    delete_endpoint,
    history,
    list_packages,
    live_package_arn,
    rejection_outcome,
    resolve_package,
    set_status,
    version_of,
    version_view,
)
from scones_common.config import ENVIRONMENTS, load_config
from scones_common.errors import cli_entry

log = logging.getLogger("registry")
EXIT_STILL_LIVE = 3


def _shown_accuracy(value: str | None) -> str:
    """The metadata value as a number, or as written when someone stored something else there."""
    try:
        return f"{float(value):.4f}" if value else "-"
    except ValueError:
        return value[:8]


def shown_precision(gate_figures: str) -> str:
    """The precision at the threshold with its 95 % lower bound and the confident images behind it, from the
    figures the champion gate recorded (``precision=0.9878 lcb95=0.9612 n=164``); '-' for older packages."""
    figures = dict(part.split("=", 1) for part in gate_figures.split() if "=" in part)
    precision, bound, count = figures.get("precision"), figures.get("lcb95"), figures.get("n")
    if not precision or precision == "none":
        return "-"
    return f"{precision} (>={bound}, n={count})" if bound and bound != "none" else precision


def format_table(rows: list[PackageRow], live_arn: str | None) -> str:
    header = (f"{'ver':>4}  {'status':<22} {'accuracy':>8}  {'precision (95% lower bound, n)':<31} {'commit':<10} "
              f"{'created':<19}  live")
    lines = [header, "-" * len(header)]
    for r in rows:
        accuracy = _shown_accuracy(r.accuracy)
        lines.append(f"{r.version!s:>4}  {r.status:<22} {accuracy:>8}  {shown_precision(r.gate_figures):<31} "
                     f"{r.git_commit[:10]:<10} {r.created:<19}  {'*' if r.arn == live_arn else ''}")
    return "\n".join(lines)


def format_compare(sm, s3, group: str, a: str, b: str) -> str:
    """``compare A B``: the two versions' facts side by side, what differs marked, and what could not be read."""
    views = [version_view(sm, s3, group, ref) for ref in (a, b)]
    facts = [version_facts(v.package, v.evaluation, v.hyperparameters) for v in views]
    labels = [f"v{v.package.get('ModelPackageVersion')}" for v in views]
    lines = [format_comparison(compare(*facts), *labels)]
    lines += [f"note: {label}: {note}" for label, view in zip(labels, views) for note in view.notes]
    return "\n".join(lines)


def format_history(sm, group: str, endpoint_name: str) -> str:
    lines = [entry.line(version) for version, entry in history(sm, group)]
    lines.append(f"endpoint {endpoint_name}: {deployment_outcome(describe_endpoint(sm, endpoint_name))}")
    return "\n".join(lines)


def reject(sm, sts, group: str, endpoint_name: str, arn: str, reason: str, stop_endpoint: bool) -> int:
    outcome = rejection_outcome(sm, group, endpoint_name, arn)
    set_status(sm, sts, arn, "Rejected", reason)
    print(f"{arn} -> Rejected")
    if not outcome.was_live:
        return 0
    if outcome.fallback_arn:
        print(f"endpoint {endpoint_name} serves v{version_of(arn)} until the deploy function switches it to "
              f"v{version_of(outcome.fallback_arn)}, the newest other approved package")
        return 0
    if stop_endpoint:
        delete_endpoint(sm, endpoint_name)
        print(f"endpoint {endpoint_name} deleted: nothing serves v{version_of(arn)} any more")
        return 0
    print(f"endpoint {endpoint_name} STILL SERVES the rejected v{version_of(arn)}: no other package is approved to "
          f"replace it. Approve another version (scones-registry approve VERSION), or stop the endpoint with "
          f"'scones-registry reject {version_of(arn)} --reason ... --delete-endpoint' "
          f"(or 'aws sagemaker delete-endpoint --endpoint-name {endpoint_name}').", file=sys.stderr)
    return EXIT_STILL_LIVE


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
    approve.add_argument("--reason", required=True, help="why; recorded with who approved")
    sub.add_parser("history")
    comparison = sub.add_parser("compare", help="two versions side by side; * marks what differs")
    comparison.add_argument("a", help="version number or ARN")
    comparison.add_argument("b", help="version number or ARN")
    rejection = sub.add_parser("reject")
    rejection.add_argument("package")
    rejection.add_argument("--reason", required=True, help="why; recorded with who rejected")
    rejection.add_argument("--delete-endpoint", action="store_true",
                           help="if the endpoint serves this package and no other is approved, delete the endpoint")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.environment)
    sm = boto3.client("sagemaker", region_name=config.project.region)
    sts = boto3.client("sts", region_name=config.project.region)
    group, endpoint = config.registry.model_package_group, config.endpoint.name
    if args.command == "list":
        print(format_table(list_packages(sm, group), live_package_arn(sm, endpoint)))
        print(f"endpoint {endpoint}: {deployment_outcome(describe_endpoint(sm, endpoint))}")
    elif args.command == "history":
        print(format_history(sm, group, endpoint))
    elif args.command == "compare":
        print(format_compare(sm, boto3.client("s3", region_name=config.project.region), group, args.a, args.b))
    elif args.command == "live":
        print(live_package_arn(sm, endpoint) or f"endpoint {endpoint} does not exist")
    elif args.command == "approve":
        arn = resolve_package(sm, group, args.package)
        set_status(sm, sts, arn, "Approved", args.reason)
        print(f"{arn} -> Approved")
    else:
        arn = resolve_package(sm, group, args.package)
        return reject(sm, sts, group, endpoint, arn, args.reason, args.delete_endpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
