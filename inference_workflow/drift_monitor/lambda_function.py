"""Scheduled drift monitor: the last window of captured traffic against the live model's baseline.

Reads the endpoint's data capture (Model Monitor layout
``<CAPTURE_S3_URI>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``) for the last WINDOW_MINUTES,
builds the same profile the evaluation step wrote as ``baseline.json`` next to the live package's
``evaluation.json`` (its ModelStatistics in the registry), scores each feature (PSI, KS), writes
a report to ``<REPORT_S3_URI>/<endpoint>/yyyy/mm/dd/HHMMSS.json`` (``violations`` lists the
features whose PSI exceeds PSI_THRESHOLD) and publishes the scores as CloudWatch metrics
(namespace METRIC_NAMESPACE, dimension EndpointName; ``DriftScore`` is the largest PSI, the
metric the drift alarm watches). Standard library and boto3 only.

Environment: ENDPOINT_NAME, CAPTURE_S3_URI, REPORT_S3_URI, and optionally WINDOW_MINUTES (60),
PSI_THRESHOLD (0.2), MIN_RECORDS (30), METRIC_NAMESPACE (Scones/DriftMonitor).
"""
from __future__ import annotations

import base64
import json
import logging
import math
import os
import posixpath
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import boto3
from botocore.exceptions import ClientError
from drift import Profile, judge
from png import UnsupportedImageError, decode_rgb

log = logging.getLogger()
log.setLevel(logging.INFO)

BASELINE_FILE = "baseline.json"


class MonitorConfigError(ValueError):
    """The function's environment is incomplete or out of range."""


class BaselineNotFoundError(LookupError):
    """The live model has no baseline.json next to its evaluation report."""


class BaselineFormatError(ValueError):
    """baseline.json is there but is not a profile this monitor can read."""


MAX_WINDOW_MINUTES = 10080    # a week, as config monitor.window_minutes allows


@dataclass(frozen=True)
class MonitorSettings:
    endpoint_name: str
    capture_s3_uri: str
    report_s3_uri: str
    window_minutes: float = 60.0
    psi_threshold: float = 0.2
    min_records: int = 30
    namespace: str = "Scones/DriftMonitor"

    @classmethod
    def from_environment(cls, environ=os.environ) -> "MonitorSettings":
        missing = [k for k in ("ENDPOINT_NAME", "CAPTURE_S3_URI", "REPORT_S3_URI") if not environ.get(k)]
        if missing:
            raise MonitorConfigError(f"environment variables {missing} are not set on the drift monitor function")
        try:
            settings = cls(environ["ENDPOINT_NAME"], environ["CAPTURE_S3_URI"].rstrip("/"),
                           environ["REPORT_S3_URI"].rstrip("/"), float(environ.get("WINDOW_MINUTES", "60")),
                           float(environ.get("PSI_THRESHOLD", "0.2")), int(environ.get("MIN_RECORDS", "30")),
                           environ.get("METRIC_NAMESPACE", "Scones/DriftMonitor"))
        except ValueError as exc:
            raise MonitorConfigError(f"WINDOW_MINUTES/PSI_THRESHOLD/MIN_RECORDS must be numbers: {exc}") from None
        if not 0 < settings.window_minutes <= MAX_WINDOW_MINUTES:
            raise MonitorConfigError(f"WINDOW_MINUTES={environ.get('WINDOW_MINUTES')!r} must be a number of minutes "
                                     f"in (0, {MAX_WINDOW_MINUTES}] (a week)")
        if not 0 < settings.psi_threshold < math.inf:
            raise MonitorConfigError(f"PSI_THRESHOLD={environ.get('PSI_THRESHOLD')!r} must be a finite number > 0")
        if settings.min_records < 1:
            raise MonitorConfigError(f"MIN_RECORDS={environ.get('MIN_RECORDS')!r} must be a whole number >= 1")
        return settings


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise MonitorConfigError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def describe_endpoint(sm, endpoint_name: str) -> dict | None:
    try:
        return sm.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationException" and "Could not find" in exc.response["Error"]["Message"]:
            return None
        raise


def baseline_uri(sm, endpoint: dict) -> str:
    """endpoint → config → model → package → ModelStatistics (evaluation.json) → sibling baseline.json."""
    endpoint_name = endpoint["EndpointName"]
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    package_arn = model.get("PrimaryContainer", {}).get("ModelPackageName")
    if not package_arn:
        raise BaselineNotFoundError(f"the model behind {endpoint_name} is not from the model registry")
    package = sm.describe_model_package(ModelPackageName=package_arn)
    statistics = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    if not statistics:
        raise BaselineNotFoundError(f"package {package_arn} has no model statistics (evaluation.json) in the registry")
    return posixpath.join(posixpath.dirname(statistics), BASELINE_FILE)


def read_json(s3, uri: str) -> dict:
    bucket, key = split_s3(uri)
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "AccessDenied"):
            raise BaselineNotFoundError(f"{uri} cannot be read ({exc.response['Error']['Code']}); "
                                        "packages registered before the monitor existed have no baseline") from None
        raise


def read_baseline(s3, uri: str) -> Profile:
    try:
        return Profile.from_dict(read_json(s3, uri))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BaselineFormatError(f"{uri} is not a drift baseline written by EvaluateModel "
                                  f"({type(exc).__name__}: {exc}); re-run the pipeline's evaluation") from None


def hour_prefixes(start: datetime, end: datetime) -> list[str]:
    """The ``yyyy/mm/dd/hh/`` folders the window touches (capture files are filed by the hour they were written)."""
    hours, at = [], start.replace(minute=0, second=0, microsecond=0)
    while at <= end:
        hours.append(at.strftime("%Y/%m/%d/%H/"))
        at += timedelta(hours=1)
    return hours


def inference_time(record: dict) -> datetime:
    """``eventMetadata.inferenceTime``: SageMaker writes ``2022-02-14T17:25:49Z``, with or without fractions."""
    when = datetime.fromisoformat(record["eventMetadata"]["inferenceTime"].replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class RecordCounter:
    """How many capture lines could not be read at all (not JSON, no inferenceTime); they are skipped, counted."""

    def __init__(self):
        self.unreadable = 0


def captured_records(s3, settings: MonitorSettings, start: datetime, end: datetime,
                     counter: RecordCounter | None = None):
    """Yields the capture records whose inferenceTime is in [start, end); unreadable lines are counted, not fatal."""
    counter = counter or RecordCounter()
    bucket, root = split_s3(settings.capture_s3_uri)
    endpoint_prefix = f"{root}/{settings.endpoint_name}/".lstrip("/")
    variants = [p["Prefix"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=endpoint_prefix, Delimiter="/") for p in page.get("CommonPrefixes", [])]
    for variant in variants:
        for hour in hour_prefixes(start, end):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=variant + hour):
                for item in page.get("Contents", []):
                    body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                    for line in body.splitlines():
                        if not line.strip():
                            continue
                        try:
                            record = json.loads(line)
                            when = inference_time(record)
                        except (ValueError, KeyError, TypeError, AttributeError):
                            counter.unreadable += 1
                            continue
                        if start <= when < end:
                            yield record


def _payload(part: dict) -> bytes:
    data = part["data"]
    return base64.b64decode(data) if part.get("encoding") == "BASE64" else data.encode()


def window_profile(baseline: Profile, records) -> tuple[Profile, int]:
    """The window's profile with the baseline's bins and threshold; also how many records were skipped."""
    current, skipped = baseline.empty_like(), 0
    for record in records:
        try:
            probabilities = json.loads(_payload(record["captureData"]["endpointOutput"]))
            if not isinstance(probabilities, list) or len(probabilities) != len(baseline.class_names):
                raise ValueError("output is not the class probabilities")
            pixels = decode_rgb(_payload(record["captureData"]["endpointInput"]))
        except (ValueError, KeyError, TypeError, UnsupportedImageError):
            skipped += 1
            continue
        current.add_prediction([float(p) for p in probabilities])
        current.add_image(pixels)
    return current, skipped


def report_key(settings: MonitorSettings, end: datetime) -> tuple[str, str]:
    bucket, root = split_s3(settings.report_s3_uri)
    return bucket, f"{root}/{settings.endpoint_name}/{end:%Y/%m/%d/%H%M%S}.json".lstrip("/")


def metric_data(settings: MonitorSettings, verdict, current: Profile, end: datetime, skipped: int = 0) -> list[dict]:
    dims = [{"Name": "EndpointName", "Value": settings.endpoint_name}]
    data = [{"MetricName": "RecordCount", "Dimensions": dims, "Timestamp": end, "Value": current.count,
             "Unit": "Count"},
            {"MetricName": "SkippedRecords", "Dimensions": dims, "Timestamp": end, "Value": skipped,
             "Unit": "Count"}]
    if verdict.enough_data:
        data += [{"MetricName": "DriftScore", "Dimensions": dims, "Timestamp": end, "Value": verdict.drift_score,
                  "Unit": "None"},
                 {"MetricName": "LowConfidenceShare", "Dimensions": dims, "Timestamp": end,
                  "Value": current.low_confidence_share, "Unit": "None"}]
        data += [{"MetricName": "FeaturePSI", "Dimensions": dims + [{"Name": "Feature", "Value": s.feature}],
                  "Timestamp": end, "Value": s.psi, "Unit": "None"} for s in verdict.scores]
    return data


def run_monitor(sm, s3, cloudwatch, settings: MonitorSettings, end: datetime | None = None) -> dict:
    end = end or datetime.now(UTC)
    start = end - timedelta(minutes=settings.window_minutes)
    endpoint = describe_endpoint(sm, settings.endpoint_name)
    if endpoint is None:     # nothing deployed yet: nothing to watch, and nothing for Lambda to retry
        log.info("drift monitor %s: no such endpoint; nothing to monitor", settings.endpoint_name)
        return {"endpoint_name": settings.endpoint_name, "report_uri": None, "records": 0, "drift_score": 0.0,
                "violations": [], "enough_data": False, "status": "no endpoint"}
    source = baseline_uri(sm, endpoint)
    baseline = read_baseline(s3, source)
    counter = RecordCounter()
    current, skipped = window_profile(baseline, captured_records(s3, settings, start, end, counter))
    skipped += counter.unreadable
    verdict = judge(baseline, current, settings.psi_threshold, settings.min_records)
    report = {"endpoint_name": settings.endpoint_name, "baseline": source,
              "window": {"start": start.isoformat(), "end": end.isoformat()},
              "records": current.count, "skipped_records": skipped, "enough_data": verdict.enough_data,
              "psi_threshold": settings.psi_threshold, "drift_score": verdict.drift_score,
              "low_confidence_share": {"baseline": baseline.low_confidence_share,
                                       "current": current.low_confidence_share},
              "features": [asdict(s) for s in verdict.scores],
              "violations": [{"feature": s.feature, "psi": s.psi, "threshold": settings.psi_threshold,
                              "description": f"PSI {s.psi:.3f} of {s.feature} exceeds {settings.psi_threshold}"}
                             for s in verdict.violations]}
    bucket, key = report_key(settings, end)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(report, indent=1).encode(), ContentType="application/json")
    report["report_uri"] = f"s3://{bucket}/{key}"
    cloudwatch.put_metric_data(Namespace=settings.namespace,
                               MetricData=metric_data(settings, verdict, current, end, skipped))
    log.info("drift monitor %s: %d records, drift score %.3f, %d violations -> %s", settings.endpoint_name,
             current.count, verdict.drift_score, len(report["violations"]), report["report_uri"])
    return report


def lambda_handler(event, context):
    settings = MonitorSettings.from_environment()
    report = run_monitor(boto3.client("sagemaker"), boto3.client("s3"), boto3.client("cloudwatch"), settings)
    return {key: report[key] for key in ("report_uri", "records", "drift_score", "violations", "enough_data")}
