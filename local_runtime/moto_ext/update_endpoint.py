"""UpdateEndpoint for moto's SageMaker, which does not implement it.

The deploy Lambda switches a live endpoint to a new endpoint config with UpdateEndpoint (a new
approved version, or a rollback). Locally the switch takes effect at once, the endpoint stays
InService, and the local runtime server serves the new config's model on its next refresh.
The canary test in tests/local_runtime/moto_ext/test_update_endpoint.py fails loudly if a moto upgrade
changes the attributes used here or implements the action itself.
"""
from __future__ import annotations

from typing import Any


def update_endpoint(backend, endpoint_name: str, endpoint_config_name: str) -> str:
    """Points the endpoint at another existing config; raises moto's ValidationError like AWS."""
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError

    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None:
        raise ValidationError(message=f"Could not find endpoint \"{endpoint_name}\".")
    config = backend.describe_endpoint_config(endpoint_config_name)
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.data_capture_config = config.get("DataCaptureConfig")
    endpoint.endpoint_status = "InService"
    endpoint.last_modified_time = utcnow()
    return endpoint.arn


def _update_endpoint_action(self) -> Any:
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError

    from local_runtime.moto_ext import blue_green

    name, config_name = self._get_param("EndpointName"), self._get_param("EndpointConfigName")
    deployment_config = self._get_param("DeploymentConfig")
    if deployment_config:
        endpoint = self.sagemaker_backend.endpoints.get(name)
        if endpoint is None:
            raise ValidationError(message=f"Could not find endpoint \"{name}\".")
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        blue_green.begin(self.sagemaker_backend, endpoint, config_name, deployment_config)
        return ActionResult({"EndpointArn": endpoint.arn})
    arn = update_endpoint(self.sagemaker_backend, name, config_name)
    return ActionResult({"EndpointArn": arn})


def install() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    if getattr(SageMakerResponse, "update_endpoint", None) is not _update_endpoint_action:
        SageMakerResponse.update_endpoint = _update_endpoint_action
