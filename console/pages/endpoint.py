"""The endpoint and its releases: status, the serving package, a canary in progress, the rollback alarms,
invocation plots and the deployment history.

Reads: DescribeEndpoint (variants, PendingDeploymentSummary, LastDeploymentConfig), the endpoint
config → model → package chain (the deploy Lambda's own ``live_package_arn``), CloudWatch
DescribeAlarms and GetMetricData (``AWS/SageMaker`` Invocations, Invocation5XXErrors, ModelLatency),
and the deployment outcomes the deploy Lambda writes into the packages (``audit.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError
from flask import Blueprint, render_template, request

from console import plots
from console.context import context
from inference_workflow.deploy_model.lambda_function import IN_PROGRESS, VARIANT, describe_endpoint, live_package_arn
from pipelines.registry.audit import DeploymentRecord, deployment_outcome
from pipelines.registry.packages import history

blueprint = Blueprint("endpoint", __name__)
NAMESPACE = "AWS/SageMaker"
WINDOWS = {"1h": (timedelta(hours=1), 60), "6h": (timedelta(hours=6), 300), "24h": (timedelta(hours=24), 900)}
MAX_DEPLOYMENTS_SHOWN = 30


@dataclass(frozen=True)
class Canary:
    """A blue/green update in progress, as DescribeEndpoint tells it."""
    old_config: str
    new_config: str
    canary_percent: float | None
    wait_seconds: int | None
    started: datetime | None
    seconds_left: float | None
    alarms: tuple[str, ...]


def package_of_config(sm, config_name: str) -> str | None:
    """The model package behind an endpoint config (config → model → PrimaryContainer.ModelPackageName)."""
    try:
        config = sm.describe_endpoint_config(EndpointConfigName=config_name)
        model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    except ClientError:
        return None
    return model.get("PrimaryContainer", {}).get("ModelPackageName")


def canary_of(endpoint: dict, now: datetime | None = None) -> Canary | None:
    """The canary in progress, from PendingDeploymentSummary and LastDeploymentConfig (pure)."""
    pending = endpoint.get("PendingDeploymentSummary")
    if not pending:
        return None
    config = endpoint.get("LastDeploymentConfig") or {}
    routing = config.get("BlueGreenUpdatePolicy", {}).get("TrafficRoutingConfiguration", {})
    size = routing.get("CanarySize") or {}
    percent = float(size["Value"]) if size.get("Type") == "CAPACITY_PERCENT" else None
    wait = routing.get("WaitIntervalInSeconds")
    started = pending.get("StartTime")
    left = None
    if started is not None and wait is not None:
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        left = max(0.0, (started + timedelta(seconds=int(wait)) - (now or datetime.now(UTC))).total_seconds())
    alarms = tuple(a["AlarmName"] for a in config.get("AutoRollbackConfiguration", {}).get("Alarms", []))
    return Canary(endpoint["EndpointConfigName"], pending["EndpointConfigName"], percent, wait, started, left, alarms)


def alarms_of(cloudwatch, endpoint_name: str, named: tuple[str, ...]) -> list[dict]:
    """The endpoint's alarms (name prefix ``<endpoint>``) and any rollback alarm named in its deployment config."""
    found: dict[str, dict] = {}
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=endpoint_name,
                                                                      AlarmTypes=["MetricAlarm"]):
        for alarm in page.get("MetricAlarms", []):
            found[alarm["AlarmName"]] = alarm
    missing = [n for n in named if n not in found]
    if missing:
        for alarm in cloudwatch.describe_alarms(AlarmNames=missing[:100]).get("MetricAlarms", []):
            found[alarm["AlarmName"]] = alarm
    return [found[name] for name in sorted(found)]


def metric_series(cloudwatch, endpoint_name: str, variants: list[str], window: timedelta, period: int,
                  now: datetime | None = None) -> dict[str, dict[str, tuple[list, list]]]:
    """{metric: {variant: (times, values)}}: invocations and 5XX errors per period (Sum), model latency
    (Average, in milliseconds: SageMaker publishes microseconds)."""
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    queries, keys = [], {}
    for i, variant in enumerate(variants):
        for j, (metric, stat) in enumerate((("Invocations", "Sum"), ("Invocation5XXErrors", "Sum"),
                                            ("ModelLatency", "Average"))):
            query_id = f"m{i}_{j}"
            keys[query_id] = (metric, variant)
            queries.append({"Id": query_id, "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                           "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name},
                                          {"Name": "VariantName", "Value": variant}]},
                "Period": period, "Stat": stat}})
    series: dict[str, dict[str, tuple[list, list]]] = {"Invocations": {}, "Invocation5XXErrors": {}, "ModelLatency": {}}
    token = None
    while queries:
        response = cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=end - window, EndTime=end,
                                              ScanBy="TimestampAscending", **({"NextToken": token} if token else {}))
        for result in response.get("MetricDataResults", []):
            metric, variant = keys[result["Id"]]
            times, values = series[metric].setdefault(variant, ([], []))
            scale = 1 / 1000 if metric == "ModelLatency" else 1
            for when, value in sorted(zip(result.get("Timestamps", []), result.get("Values", []))):
                times.append(when)
                values.append(value * scale)
        token = response.get("NextToken")
        if not token:
            break
    return series


def deployment_history(sm, group: str) -> list[tuple[str, DeploymentRecord]]:
    """Every deployment outcome the deploy Lambda recorded in the group's packages, newest first."""
    entries = [(version, entry) for version, entry in history(sm, group) if isinstance(entry, DeploymentRecord)]
    return list(reversed(entries))[:MAX_DEPLOYMENTS_SHOWN]


@blueprint.get("/endpoint")
def index():
    ctx = context()
    sm, cloudwatch = ctx.client("sagemaker"), ctx.client("cloudwatch")
    name = ctx.config.endpoint.name
    window_name = request.args.get("window", "1h")
    window, period = WINDOWS.get(window_name, WINDOWS["1h"])
    endpoint = describe_endpoint(sm, name)
    live = live_package_arn(sm, name) if endpoint else None
    canary = canary_of(endpoint) if endpoint else None
    pending_package = package_of_config(sm, canary.new_config) if canary else None
    alarms = alarms_of(cloudwatch, name, canary.alarms if canary else ())
    variants = [v["VariantName"] for v in (endpoint or {}).get("ProductionVariants", [])] or [VARIANT]
    end = datetime.now(UTC)
    series = metric_series(cloudwatch, name, variants, window, period, end)
    latency_alarm = next((a for a in alarms if a.get("MetricName") == "ModelLatency"), None)
    start = end - window
    figures = {
        "invocations": plots.time_series(series["Invocations"], f"Invocations per {period} s", "invocations",
                                         start, end),
        "errors": plots.time_series(series["Invocation5XXErrors"], f"5XX errors per {period} s", "errors", start, end),
        "latency": plots.time_series(series["ModelLatency"], "Model latency (average)", "ms", start, end,
                                     latency_alarm["Threshold"] / 1000 if latency_alarm else None),
    }
    totals = {metric: sum(sum(values) for _, values in by_variant.values())
              for metric, by_variant in series.items() if metric != "ModelLatency"}
    return render_template("endpoint.html", name=name, endpoint=endpoint, live=live, canary=canary,
                           pending_package=pending_package, alarms=alarms, figures=figures, totals=totals,
                           window_name=window_name, windows=list(WINDOWS), outcome=deployment_outcome(endpoint),
                           deployments=deployment_history(sm, ctx.config.registry.model_package_group),
                           running=bool(endpoint and endpoint["EndpointStatus"] in IN_PROGRESS))
