"""The Model Registry: versions, a version's evaluation and approval history, approve / reject, compare.

Decisions go through the registry's own functions (``pipelines/registry/packages.py`` ``set_status``,
``audit.py``), so a decision made here reads exactly like one made with ``scones-registry``: the
caller's identity from STS, the time and the reason, in ApprovalDescription and the package's
``decision-<n>`` metadata. The comparison is ``pipelines/registry/compare.py``'s, shared with the CLI.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from botocore.exceptions import ClientError
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from console import plots
from console.context import context
from inference_workflow.capture_report import ReportInputError, read_evaluation
from inference_workflow.deploy_model.lambda_function import IN_PROGRESS, describe_endpoint, live_package_arn
from pipelines.errors import PipelinesError
from pipelines.registry.audit import decisions, deployment_records
from pipelines.registry.compare import compare, evaluation_uri, version_facts
from pipelines.registry.packages import rejection_outcome, set_status, version_view

blueprint = Blueprint("registry", __name__)
DECISIONS = {"approve": "Approved", "reject": "Rejected"}
_EVALUATIONS: OrderedDict[str, dict | None] = OrderedDict()     # evaluation.json by URI: written once, never changed
_EVALUATIONS_LOCK = threading.Lock()
EVALUATIONS_CACHED = 128


@dataclass(frozen=True)
class VersionRow:
    version: int | None
    arn: str
    status: str
    accuracy: float | None
    coverage: float | None
    precision: float | None
    threshold: float | None
    data_source: str
    git_commit: str
    created: object
    live: bool


def evaluation_of(s3, package: dict) -> tuple[dict | None, str]:
    """The package's evaluation.json (cached by URI), or None and why not."""
    uri = evaluation_uri(package)
    if not uri:
        return None, "this package has no ModelStatistics (evaluation.json)"
    with _EVALUATIONS_LOCK:
        if uri in _EVALUATIONS:
            return _EVALUATIONS[uri], ""
    try:
        evaluation = read_evaluation(s3, uri)
    except ReportInputError as exc:
        return None, str(exc)
    except ClientError as exc:
        return None, f"{uri}: {exc.response.get('Error', {}).get('Code')}: {exc.response.get('Error', {}).get('Message')}"
    with _EVALUATIONS_LOCK:
        _EVALUATIONS[uri] = evaluation
        while len(_EVALUATIONS) > EVALUATIONS_CACHED:
            _EVALUATIONS.popitem(last=False)
    return evaluation, ""


def summaries(sm, group: str) -> list[dict]:
    """ListModelPackages of the group, newest first (no Describe: cheap enough for every page)."""
    found = []
    for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group, SortBy="CreationTime",
                                                                 SortOrder="Descending"):
        found += page["ModelPackageSummaryList"]
    return found


def package_arn(sm, group: str, version: int) -> str:
    for summary in summaries(sm, group):
        if summary.get("ModelPackageVersion") == version:
            return summary["ModelPackageArn"]
    abort(404, f"no version {version} in model package group {group}")


def version_row(package: dict, evaluation: dict | None, live_arn: str | None) -> VersionRow:
    facts = version_facts(package, evaluation)
    return VersionRow(package.get("ModelPackageVersion"), package["ModelPackageArn"], package["ModelApprovalStatus"],
                      facts.get("accuracy"), facts.get("coverage at threshold"), facts.get("precision at threshold"),
                      facts.get("confidence threshold"), facts.get("data source") or "", facts.get("git commit") or "",
                      package.get("CreationTime"), package["ModelPackageArn"] == live_arn)


def version_rows(sm, s3, group: str, live_arn: str | None) -> list[VersionRow]:
    rows = []
    for summary in summaries(sm, group):
        package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        rows.append(version_row(package, evaluation_of(s3, package)[0], live_arn))
    return rows


@blueprint.get("/registry")
def index():
    ctx = context()
    sm, s3 = ctx.client("sagemaker"), ctx.client("s3")
    live = live_package_arn(sm, ctx.config.endpoint.name)
    rows = version_rows(sm, s3, ctx.config.registry.model_package_group, live)
    return render_template("registry.html", rows=rows, group=ctx.config.registry.model_package_group)


@blueprint.get("/registry/versions/<int:version>")
def version(version: int):
    ctx = context()
    sm, s3 = ctx.client("sagemaker"), ctx.client("s3")
    arn = package_arn(sm, ctx.config.registry.model_package_group, version)
    package = sm.describe_model_package(ModelPackageName=arn)
    evaluation, why_not = evaluation_of(s3, package)
    metadata = package.get("CustomerMetadataProperties", {}) or {}
    live = live_package_arn(sm, ctx.config.endpoint.name)
    figures = {}
    if evaluation:
        metrics = evaluation["metrics"]
        threshold = metrics["confidence_threshold"]["value"]
        confusion = metrics.get("confusion_matrix")
        if confusion:
            figures["confusion"] = plots.confusion_matrix(confusion["labels"], confusion["matrix"])
        figures["coverage"] = plots.coverage_precision({f"v{version}": metrics["coverage_curve"]}, threshold)
        figures["calibration"] = plots.reliability(metrics["calibration"], threshold)
    others = [s.get("ModelPackageVersion") for s in summaries(sm, ctx.config.registry.model_package_group)
              if s.get("ModelPackageVersion") != version]
    return render_template("version.html", package=package, version=version, row=version_row(package, evaluation, live),
                           evaluation=evaluation, why_not=why_not, figures=figures,
                           decisions=decisions(metadata), deployments=deployment_records(metadata), others=others)


@blueprint.post("/registry/versions/<int:version>/<action>")
def decide(version: int, action: str):
    if action not in DECISIONS:
        abort(404, f"no action {action!r}: approve or reject")
    ctx = context()
    sm = ctx.client("sagemaker")
    group, endpoint_name = ctx.config.registry.model_package_group, ctx.config.endpoint.name
    arn = package_arn(sm, group, version)
    reason = request.form.get("reason", "")
    if not reason.strip():
        flash(f"Not {DECISIONS[action].lower()}: a reason is required (the registry keeps who decided and why).",
              "error")
        return redirect(url_for("registry.version", version=version), code=303)
    outcome = None
    if action == "reject":
        endpoint = describe_endpoint(sm, endpoint_name)
        if endpoint is not None and endpoint["EndpointStatus"] not in IN_PROGRESS:
            outcome = rejection_outcome(sm, group, endpoint_name, arn)
    try:
        set_status(sm, ctx.client("sts"), arn, DECISIONS[action], reason)
    except PipelinesError as exc:
        flash(f"Not {DECISIONS[action].lower()}: {exc}".replace("needs --reason", "needs a reason"), "error")
        return redirect(url_for("registry.version", version=version), code=303)
    if action == "approve":
        flash(f"v{version} approved. The EventBridge rule hands it to the deploy function, which moves endpoint "
              f"{endpoint_name} to the newest approved version (blue/green canary): watch it on the Endpoint page.",
              "ok")
    elif outcome is None:
        flash(f"v{version} rejected. The endpoint is busy or absent; the deploy function keeps it on the newest "
              "approved version once it settles.", "ok")
    elif outcome.stays_live:
        flash(f"v{version} rejected, but endpoint {endpoint_name} STILL SERVES it: no other version is approved to "
              f"replace it. Approve another version, or stop the endpoint (scones-registry reject {version} "
              "--reason … --delete-endpoint).", "error")
    elif outcome.was_live:
        flash(f"v{version} rejected. Endpoint {endpoint_name} serves it until the deploy function switches to "
              f"v{outcome.fallback_arn.rsplit('/', 1)[-1]}, the newest other approved version.", "ok")
    else:
        flash(f"v{version} rejected (it was not live).", "ok")
    return redirect(url_for("registry.version", version=version), code=303)


@blueprint.get("/registry/compare")
def compare_versions():
    """The rows ``scones-registry compare A B`` prints (the same ``version_view`` and ``version_facts``)."""
    ctx = context()
    sm, s3 = ctx.client("sagemaker"), ctx.client("s3")
    group = ctx.config.registry.model_package_group
    try:
        a, b = int(request.args.get("a", "")), int(request.args.get("b", ""))
    except ValueError:
        abort(400, "compare needs two version numbers: /registry/compare?a=<version>&b=<version>")
    for version in (a, b):
        package_arn(sm, group, version)          # a 404 page for a version that does not exist
    views = [version_view(sm, s3, group, str(v)) for v in (a, b)]
    rows = compare(*(version_facts(v.package, v.evaluation, v.hyperparameters) for v in views))
    curve = None
    evaluations = [v.evaluation for v in views]
    if all(e and "coverage_curve" in e.get("metrics", {}) for e in evaluations):
        threshold = evaluations[1]["metrics"]["confidence_threshold"]["value"]
        curve = plots.coverage_precision({f"v{a}": evaluations[0]["metrics"]["coverage_curve"],
                                          f"v{b}": evaluations[1]["metrics"]["coverage_curve"]}, threshold)
    notes = [f"v{version}: {note}" for version, view in zip((a, b), views) for note in view.notes]
    return render_template("compare.html", a=a, b=b, rows=rows, curve=curve, notes=notes,
                           changed=sum(r.differs for r in rows), only_differs=request.args.get("only") == "differs")
