"""UpdateEndpoint with a DeploymentConfig: a blue/green update that the local deployment driver settles.

SageMaker's deployment guardrails (API reference: UpdateEndpoint, DeploymentConfig,
DescribeEndpoint): the endpoint is ``Updating`` while the new fleet is provisioned, health-checked,
given the canary share and baked; DescribeEndpoint shows the old config plus a
``PendingDeploymentSummary`` naming the new one, and ``LastDeploymentConfig``. The update ends
``InService`` on the new config, or, when the new fleet fails its health check or an alarm of
``AutoRollbackConfiguration`` goes to ALARM, ``InService`` on the old config with a
``FailureReason``. moto knows none of this. Here UpdateEndpoint with a DeploymentConfig records
the pending deployment; the driver (local_runtime/serving/deployments.py), which owns the
models and the traffic, calls :func:`finish`. tests/local_runtime/moto_ext/test_blue_green.py holds
the refusals and fails loudly if a moto upgrade moves what is used here.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from local_runtime.moto_ext import write_ahead
from local_runtime.moto_ext.endpoint_shapes import capture_summary

_lock = threading.RLock()


@dataclass
class PendingDeployment:
    old_config: str
    new_config: str
    deployment_config: dict
    start_time: Any
    variants: list = field(default_factory=list)


_pending: dict[tuple[str, str, str], PendingDeployment] = {}     # (account, region, endpoint) -> deployment
_last_config: dict[tuple[str, str, str], dict] = {}


def _key(backend, endpoint_name: str) -> tuple[str, str, str]:
    return backend.account_id, backend.region_name, endpoint_name


def _validation_error(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message=message)


def check_deployment_config(deployment_config: dict, instance_count: int) -> None:
    """SageMaker's refusals for a blue/green canary beyond what botocore's shapes check."""
    blue_green = deployment_config.get("BlueGreenUpdatePolicy")
    if not blue_green:
        raise _validation_error("DeploymentConfig needs a BlueGreenUpdatePolicy (rolling updates are not "
                                "emulated locally).")
    policy = blue_green["TrafficRoutingConfiguration"]
    if policy["Type"] == "CANARY":
        size = policy.get("CanarySize")
        if not size:
            raise _validation_error("CanarySize is required for CANARY traffic routing.")
        share = size["Value"] / 100 if size["Type"] == "CAPACITY_PERCENT" else size["Value"] / instance_count
        if share > 0.5 or size["Value"] <= 0:
            raise _validation_error(f"CanarySize {size['Value']} ({size['Type']}) must be more than 0 and at most "
                                    "50% of the new fleet's capacity.")
    elif policy["Type"] != "ALL_AT_ONCE":
        raise _validation_error(f"TrafficRoutingConfiguration Type {policy['Type']} is not emulated locally "
                                "(CANARY and ALL_AT_ONCE are).")


def check_guardrails(backend, endpoint, new_variants: list[dict], deployment_config: dict) -> None:
    """What a guarded update needs beyond its own shape: the same variant names (deployment guardrails keep
    the variants; the alarms watch them by name) and alarms that exist (a misspelt alarm would leave the
    canary unguarded; the caller needs cloudwatch:DescribeAlarms for this check)."""
    from moto.cloudwatch.models import cloudwatch_backends

    old = sorted(v["VariantName"] for v in endpoint.production_variants)
    new = sorted(v["VariantName"] for v in new_variants)
    if old != new:
        raise _validation_error(f"A blue/green update must keep the endpoint's variant names {old}; the new endpoint "
                                f"configuration has {new}. Update without a DeploymentConfig to change variants.")
    alarms = [a["AlarmName"] for a in deployment_config.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
    known = cloudwatch_backends[backend.account_id][backend.region_name].alarms
    missing = [name for name in alarms if name not in known]
    if missing:
        raise _validation_error(f"AutoRollbackConfiguration names CloudWatch alarms that do not exist: {missing}.")


def begin(backend, endpoint, new_config_name: str, deployment_config: dict) -> None:
    from moto.core.utils import utcnow

    config = backend.describe_endpoint_config(new_config_name)
    count = sum(int(v.get("InitialInstanceCount", 1)) for v in config["ProductionVariants"])
    check_deployment_config(deployment_config, count)
    check_guardrails(backend, endpoint, config["ProductionVariants"], deployment_config)
    with _lock:
        key = _key(backend, endpoint.endpoint_name)
        _pending[key] = PendingDeployment(endpoint.endpoint_config_name, new_config_name, deployment_config, utcnow(),
                                          config["ProductionVariants"])
        _last_config[key] = deployment_config
        endpoint.endpoint_status = "Updating"
        endpoint.failure_reason = None
        endpoint.last_modified_time = utcnow()


def forget(backend, endpoint_name: str) -> None:
    """DeleteEndpoint: a re-created endpoint of the same name starts without deployment history."""
    with _lock:
        _pending.pop(_key(backend, endpoint_name), None)
        _last_config.pop(_key(backend, endpoint_name), None)


def pending_deployments(account: str, region: str) -> dict[str, PendingDeployment]:
    """Endpoint name -> its blue/green update in progress."""
    with _lock:
        return {name: deployment for (a, r, name), deployment in _pending.items() if (a, r) == (account, region)}


def pending(account: str, region: str, endpoint_name: str) -> PendingDeployment | None:
    with _lock:
        return _pending.get((account, region, endpoint_name))


def finish(account: str, region: str, endpoint_name: str, succeeded: bool, failure_reason: str | None = None) -> None:
    """Ends the deployment: the new config serves, or the old one stays with ``failure_reason``."""
    from moto.core.utils import utcnow
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[account][region]
    with _lock:
        deployment = _pending.pop((account, region, endpoint_name), None)
        endpoint = backend.endpoints.get(endpoint_name)
        if deployment is None or endpoint is None:
            return
        config = backend.endpoint_configs.get(deployment.new_config) if succeeded else None
        if succeeded and config is None:     # deleted during the bake: the old config keeps serving
            succeeded, failure_reason = False, (f'Could not find endpoint configuration "{deployment.new_config}" '
                                                "when shifting traffic; the update was rolled back.")
        if succeeded:
            endpoint.endpoint_config_name = deployment.new_config
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
            endpoint.data_capture_config = capture_summary(config.data_capture_config)
        endpoint.endpoint_status = "InService"
        endpoint.failure_reason = None if succeeded else failure_reason
        endpoint.last_modified_time = utcnow()
    write_ahead.commit("sagemaker.endpoints")     # the switch is saved before anyone is told


def describe_additions(backend, endpoint_name: str) -> dict:
    """What DescribeEndpoint adds for a blue/green update: PendingDeploymentSummary while it runs, and
    LastDeploymentConfig."""
    key = _key(backend, endpoint_name)
    with _lock:
        additions = {}
        if key in _last_config:
            additions["LastDeploymentConfig"] = _last_config[key]
        deployment = _pending.get(key)
        if deployment:
            additions["PendingDeploymentSummary"] = {
                "EndpointConfigName": deployment.new_config, "StartTime": deployment.start_time,
                "ProductionVariants": [{"VariantName": v["VariantName"],
                                        "CurrentInstanceCount": 0,
                                        "DesiredInstanceCount": int(v.get("InitialInstanceCount", 1)),
                                        "InstanceType": v.get("InstanceType"),
                                        "VariantStatus": [{"Status": "Baking"}]} for v in deployment.variants]}
        return additions


def _describe_endpoint_action(self) -> Any:
    from moto.core.responses import ActionResult

    name = self._get_param("EndpointName")
    response = dict(self.sagemaker_backend.describe_endpoint(name))
    response.update(describe_additions(self.sagemaker_backend, name))
    return ActionResult(response)


def install() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    if SageMakerResponse.describe_endpoint is not _describe_endpoint_action:
        SageMakerResponse.describe_endpoint = _describe_endpoint_action
