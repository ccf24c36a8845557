"""The SAM template's parameters from the project configuration, so the stack matches ``configs/``.

    sam deploy --guided --parameter-overrides "$(python -m inference_workflow.template_parameters --environment prod)"

In particular ``schedule.enabled`` becomes ``RetrainScheduleEnabled``: the retraining rule is
created DISABLED where the environment turns the schedule off; ``notifications.email`` becomes
``NotificationEmail``, the subscription of the pipeline notifications topic. The local stack resolves the
template's alarms, drift monitor and rules with these same values (local_runtime/template_resources.py).
"""
from __future__ import annotations

import argparse
import sys

from scones_common.config import ConfigError, SconesConfig, load_config
from scones_common.logs import setup_logging


def template_parameters(config: SconesConfig) -> dict[str, str]:
    deployment, monitor = config.deployment, config.monitor
    email = config.notifications.email     # left out when empty: the template's default creates no subscription
    return {
        "ProjectName": config.project.name,
        "DataBucket": config.storage.bucket,
        "DataPrefix": config.storage.prefix,
        "EndpointName": config.endpoint.name,
        "EndpointInstanceType": config.endpoint.instance_type,
        "ConfidenceThreshold": str(config.inference.confidence_threshold),
        "ModelPackageGroupName": config.registry.model_package_group,
        "ReviewTimeoutSeconds": str(config.review.timeout_seconds),
        "ReviewQueueName": config.review.queue_name,
        "ReviewDeadLetterQueueName": config.review.dead_letter_queue_name,
        "ReviewMaxReceiveCount": str(config.review.max_receive_count),
        "PipelineName": config.pipeline.name,
        "RetrainSchedule": config.schedule.expression,
        "RetrainScheduleEnabled": "true" if config.schedule.enabled else "false",
        "CanaryPercent": str(deployment.canary_percent),
        "CanaryWaitSeconds": str(deployment.wait_seconds),
        "TerminationWaitSeconds": str(deployment.termination_wait_seconds),
        "AlarmEvaluationPeriods": str(deployment.alarm_evaluation_periods),
        "AlarmPeriodSeconds": str(deployment.alarm_period_seconds),
        "ErrorRateThreshold": str(deployment.error_rate_threshold),
        "ModelLatencyThresholdMicroseconds": str(int(deployment.latency_threshold_ms * 1000)),
        "LowConfidenceShareThreshold": str(deployment.low_confidence_share_threshold),
        "MonitorSchedule": monitor.schedule,
        "MonitorWindowMinutes": str(monitor.window_minutes),
        "PsiThreshold": str(monitor.psi_threshold),
        "MonitorMinRecords": str(monitor.min_records),
        "RetrainOnDrift": "true" if monitor.retrain_on_drift else "false",
        "DriftReportPrefix": monitor.report_prefix,
        **({"NotificationEmail": email} if email else {}),
    }


def parameter_overrides(parameters: dict[str, str]) -> str:
    """``Key=Value`` pairs as ``sam deploy --parameter-overrides`` reads them (values with spaces quoted)."""
    return " ".join(f'{key}="{value}"' if " " in value else f"{key}={value}" for key, value in parameters.items())


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--environment", choices=("local", "dev", "prod"))
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.environment)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(parameter_overrides(template_parameters(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
