"""The SageMaker Python SDK's defaults for a local stack, so that SDK code runs against ``serve`` unchanged.

Without a default bucket the SDK asks STS for the account (``Session.default_bucket``), and it builds that
STS client with AWS's own regional address (``sts_regional_endpoint``), which ``AWS_ENDPOINT_URL_STS``
does not override: on a laptop that call leaves the machine, or hangs. The SDK's config file names the
bucket instead (``SageMaker.PythonSDK.Modules.Session.DefaultS3Bucket``) and turns its telemetry off;
``serve`` writes it into the run directory and points ``SAGEMAKER_USER_CONFIG_OVERRIDE`` at it in
``local-aws.env``.
"""
from __future__ import annotations

from pathlib import Path

import yaml

CONFIG_FILE = "sagemaker-sdk-config.yaml"
CONFIG_VARIABLE = "SAGEMAKER_USER_CONFIG_OVERRIDE"


def sdk_defaults(bucket: str) -> dict:
    return {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {
        "Session": {"DefaultS3Bucket": bucket}, "TelemetryOptOut": True}}}}


def write_sdk_config(run_dir: Path, bucket: str) -> dict[str, str]:
    """Writes the SDK's config file into ``run_dir``; returns the environment variable that points at it."""
    path = Path(run_dir) / CONFIG_FILE
    path.write_text(yaml.safe_dump(sdk_defaults(bucket), sort_keys=False))
    return {CONFIG_VARIABLE: str(path.resolve())}
