"""DescribeEndpoint's output shapes that both endpoint patches write when a new config starts serving.

A timed update (``endpoint_lifecycle.py``) and a blue/green update (``blue_green.py``) both end by
putting the new config's data capture on the endpoint; ``endpoint_lifecycle`` also hands
DeploymentConfig updates to ``blue_green``. Kept here, below both, so that dependency stays one-way.
"""
from __future__ import annotations


def capture_summary(capture: dict | None) -> dict | None:
    """DescribeEndpoint's DataCaptureConfig is a DataCaptureConfigSummary, absent without capture (moto
    returns the endpoint config's request shape, or ``{}``)."""
    if not capture:
        return None
    summary = {"EnableCapture": bool(capture.get("EnableCapture")),
               "CaptureStatus": "Started" if capture.get("EnableCapture") else "Stopped",
               "CurrentSamplingPercentage": int(capture.get("InitialSamplingPercentage", 0)),
               "DestinationS3Uri": capture.get("DestinationS3Uri", "")}
    if capture.get("KmsKeyId"):
        summary["KmsKeyId"] = capture["KmsKeyId"]
    return summary
