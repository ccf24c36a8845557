"""Endpoints on moto's SageMaker behave as on SageMaker: they take time, and refuse what SageMaker refuses.

moto creates an endpoint InService at once, silently replaces an existing endpoint, model or
endpoint config of the same name, has no UpdateEndpoint, and deletes an endpoint in any state.
SageMaker instead (API reference: CreateEndpoint, UpdateEndpoint, DescribeEndpoint, DeleteEndpoint):

- CreateEndpoint sets ``Creating``; the endpoint becomes ``InService``, or ``Failed`` with a
  ``FailureReason`` when the model cannot start (here: its model data is not in S3).
- UpdateEndpoint sets ``Updating``; DescribeEndpoint keeps showing the old config (and the old
  model keeps serving) until the new one is ``InService``. A failed update leaves the endpoint
  ``InService`` on the old config with a ``FailureReason``. Every update is health-checked: when
  the local endpoint server runs, its model must load (the container's /ping) before the phase ends.
- UpdateEndpoint and DeleteEndpoint on an endpoint in progress are refused with
  ``ValidationException: Cannot update in-progress endpoint "<arn>".``; a ``Failed`` endpoint can
  only be deleted.
- Creating a model, endpoint config or endpoint whose name exists is refused with
  ``Cannot create already existing …``.

Phases are settled lazily: an endpoint records when its phase ends and any call that reads or
changes it settles it first, so there is no timer thread and ``LastModifiedTime`` is the moment
the phase ended. DeleteEndpoint takes effect at once (no ``Deleting`` phase). The canary test in
tests/local_runtime/moto_ext/test_endpoint_lifecycle.py fails loudly if a moto upgrade moves
what is wrapped here.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from local_runtime.moto_ext import write_ahead
from local_runtime.moto_ext.endpoint_shapes import capture_summary

DEFAULT_TRANSITION_SECONDS = 2.0
IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
_WRAPPED = "__scones_endpoint_lifecycle__"


@dataclass
class _Phase:
    status: str            # Creating | Updating
    config_name: str
    ends_at: datetime


_settings = {"transition_seconds": DEFAULT_TRANSITION_SECONDS}
_health_checks: list[Callable[[str, str], str | None]] = []     # (endpoint, config) -> FailureReason or None
_phases: dict[int, tuple[Any, _Phase]] = {}     # id(endpoint) -> (endpoint, phase); the reference pins the id
_lock = threading.RLock()


def add_health_check(check: Callable[[str, str], str | None]) -> None:
    """The container's /ping for a config about to serve (the local endpoint server loads its model); the newest
    one added answers. Without any, only the model data's presence in S3 is checked."""
    _health_checks.append(check)


def remove_health_check(check: Callable[[str, str], str | None]) -> None:
    if check in _health_checks:
        _health_checks.remove(check)


_change_listeners: list[Callable[[str], None]] = []      # told an endpoint's name when it is deleted or switched


def add_change_listener(listener: Callable[[str], None]) -> None:
    """Called (without blocking: it runs inside a control-plane call) with an endpoint's name when the endpoint is
    deleted or starts serving another config, so that a runtime stops serving what is gone at once."""
    _change_listeners.append(listener)


def remove_change_listener(listener: Callable[[str], None]) -> None:
    if listener in _change_listeners:
        _change_listeners.remove(listener)


def _changed(endpoint_name: str) -> None:
    for listener in list(_change_listeners):
        listener(endpoint_name)


def configure(transition_seconds: float) -> None:
    """How long Creating and Updating last on the local control plane (config ``endpoint.local_transition_seconds``)."""
    if transition_seconds < 0:
        raise ValueError(f"transition_seconds must be >= 0, got {transition_seconds}")
    _settings["transition_seconds"] = float(transition_seconds)


def _validation_error(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message=message)


def _now() -> datetime:
    from moto.core.utils import utcnow

    return utcnow()


def _begin(endpoint, status: str, config_name: str) -> None:
    endpoint.endpoint_status = status
    endpoint.last_modified_time = _now()
    ends_at = endpoint.last_modified_time + timedelta(seconds=_settings["transition_seconds"])
    _phases[id(endpoint)] = (endpoint, _Phase(status, config_name, ends_at))


def model_data_failure(backend, config_name: str) -> str | None:
    """SageMaker's FailureReason when a variant's model data is not in S3, else None."""
    from moto.s3.models import s3_backends

    config = backend.endpoint_configs.get(config_name)
    if config is None:
        return f'Could not find endpoint configuration "{config_name}".'
    for index, variant in enumerate(config.production_variants, start=1):
        model = backend._models.get(variant["ModelName"])
        if model is None:
            return f'Could not find model "{variant["ModelName"]}".'
        container = model.primary_container or (model.containers or [{}])[0]
        url = container.get("ModelDataUrl")
        if not url and container.get("ModelPackageName"):
            package = backend.model_packages.get(container["ModelPackageName"])
            spec = getattr(package, "inference_specification", None) or {}
            url = (spec.get("Containers") or [{}])[0].get("ModelDataUrl")
        if not url or not url.startswith("s3://"):
            continue
        bucket_name, _, key = url[len("s3://"):].partition("/")
        try:
            bucket = s3_backends[backend.account_id]["global"].get_bucket(bucket_name)
            present = key in bucket.keys
        except Exception:   # moto's MissingBucket: the object is not there either
            present = False
        if not present:
            return (f'Failed to download model data for container "container_{index}" from URL: "{url}". '
                    "Please ensure that there is an object located at the URL and that the role passed to "
                    "CreateModel has permissions to download the object.")
    return None


def settle(backend, endpoint) -> None:
    """Ends the endpoint's Creating/Updating phase if its time is up."""
    with _lock:
        entry = _phases.get(id(endpoint))
        if entry is None or _now() < entry[1].ends_at:
            return
        phase = _phases.pop(id(endpoint))[1]
        failure = model_data_failure(backend, phase.config_name)
        if not failure and _health_checks:
            failure = _health_checks[-1](endpoint.endpoint_name, phase.config_name)
        if phase.status == "Updating" and not failure:
            config = backend.endpoint_configs[phase.config_name]
            endpoint.endpoint_config_name = phase.config_name
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
            endpoint.data_capture_config = capture_summary(config.data_capture_config)
        endpoint.endpoint_status = "Failed" if failure and phase.status == "Creating" else "InService"
        endpoint.failure_reason = failure
        endpoint.last_modified_time = phase.ends_at
        _changed(endpoint.endpoint_name)
        write_ahead.touch("sagemaker.endpoints")     # saved before the request that settled it is answered


def _settle_all(backend) -> None:
    for endpoint in list(backend.endpoints.values()):
        settle(backend, endpoint)


def _existing(backend, endpoint_name: str):
    from moto.sagemaker.models import FakeEndpoint

    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(endpoint_name, backend.account_id, backend.region_name)
        raise _validation_error(f'Could not find endpoint "{arn}".')
    settle(backend, endpoint)
    return endpoint


def update_endpoint(backend, endpoint_name: str, endpoint_config_name: str,
                    deployment_config: dict | None = None) -> str:
    """Starts the Updating phase towards another existing config, or refuses like SageMaker.

    With a ``DeploymentConfig`` the update is a blue/green deployment that the local deployment
    driver settles (moto_ext/blue_green.py), not a timed phase.
    """
    from local_runtime.moto_ext import blue_green

    with _lock:
        endpoint = _existing(backend, endpoint_name)
        if endpoint.endpoint_status in IN_PROGRESS:
            raise _validation_error(f'Cannot update in-progress endpoint "{endpoint.arn}".')
        if endpoint.endpoint_status == "Failed":
            raise _validation_error(f'Cannot update failed endpoint "{endpoint.arn}".')
        backend.describe_endpoint_config(endpoint_config_name)     # "Could not find endpoint configuration"
        if deployment_config:
            blue_green.begin(backend, endpoint, endpoint_config_name, deployment_config)
            return endpoint.arn
        endpoint.failure_reason = None
        _begin(endpoint, "Updating", endpoint_config_name)
        return endpoint.arn


def _refuse_existing(kind: str, names: str):
    """``kind`` is the resource type of the ARN: model, endpoint-config or endpoint."""
    def wrap(original):
        @functools.wraps(original)
        def create(self, *args, **kwargs):
            from moto.sagemaker.utils import arn_formatter

            name = kwargs.get(f"{kind.replace('-', '_')}_name", args[0] if args else None)
            if name in getattr(self, names):
                arn = arn_formatter(kind, name, self.account_id, self.region_name)
                label = kind.replace("-config", " configuration")
                raise _validation_error(f'Cannot create already existing {label} "{arn}".')
            return original(self, *args, **kwargs)
        setattr(create, _WRAPPED, original)
        return create
    return wrap


def _create_endpoint(original):
    @functools.wraps(original)
    def create(self, endpoint_name: str, endpoint_config_name: str, tags):
        with _lock:
            endpoint = original(self, endpoint_name=endpoint_name, endpoint_config_name=endpoint_config_name, tags=tags)
            endpoint.data_capture_config = capture_summary(self.endpoint_configs[endpoint_config_name].data_capture_config)
            _begin(endpoint, "Creating", endpoint_config_name)
            return endpoint
    setattr(create, _WRAPPED, original)
    return create


def _describe_endpoint(original):
    @functools.wraps(original)
    def describe(self, endpoint_name: str):
        if endpoint_name in self.endpoints:
            settle(self, self.endpoints[endpoint_name])
        return original(self, endpoint_name)
    setattr(describe, _WRAPPED, original)
    return describe


def _list_endpoints(original):
    @functools.wraps(original)
    def list_endpoints(self, *args, **kwargs):
        _settle_all(self)
        return original(self, *args, **kwargs)
    setattr(list_endpoints, _WRAPPED, original)
    return list_endpoints


def _delete_endpoint(original):
    from local_runtime.moto_ext import blue_green

    @functools.wraps(original)
    def delete(self, endpoint_name: str):
        with _lock:
            endpoint = _existing(self, endpoint_name)
            if endpoint.endpoint_status in IN_PROGRESS:
                raise _validation_error(f'Cannot update in-progress endpoint "{endpoint.arn}".')
            _phases.pop(id(endpoint), None)
            blue_green.forget(self, endpoint_name)
            deleted = original(self, endpoint_name)
            _changed(endpoint_name)
            return deleted
    setattr(delete, _WRAPPED, original)
    return delete


def _update_endpoint_action(self) -> Any:
    from moto.core.responses import ActionResult

    from local_runtime.request_validation import ValidationException, validate_request

    request = {key: self._get_param(key) for key in ("EndpointName", "EndpointConfigName", "DeploymentConfig",
                                                     "RetainAllVariantProperties", "RetainDeploymentConfig")}
    try:     # the service model's limits botocore leaves to the service (e.g. WaitIntervalInSeconds <= 3600)
        validate_request("UpdateEndpoint", {k: v for k, v in request.items() if v is not None})
    except ValidationException as exc:
        raise _validation_error(str(exc)) from None
    arn = update_endpoint(self.sagemaker_backend, self._get_param("EndpointName"),
                          self._get_param("EndpointConfigName"), self._get_param("DeploymentConfig"))
    return ActionResult({"EndpointArn": arn})


def install(transition_seconds: float | None = None) -> None:
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    configure(DEFAULT_TRANSITION_SECONDS if transition_seconds is None else transition_seconds)
    wrappers = {
        "create_model": _refuse_existing("model", "_models"),
        "create_endpoint_config": _refuse_existing("endpoint-config", "endpoint_configs"),
        "create_endpoint": lambda original: _refuse_existing("endpoint", "endpoints")(_create_endpoint(original)),
        "describe_endpoint": _describe_endpoint,
        "list_endpoints": _list_endpoints,
        "delete_endpoint": _delete_endpoint,
    }
    for name, wrap in wrappers.items():
        current = getattr(SageMakerModelBackend, name)
        if not hasattr(current, _WRAPPED):
            setattr(SageMakerModelBackend, name, wrap(current))
    if getattr(SageMakerResponse, "update_endpoint", None) is not _update_endpoint_action:
        SageMakerResponse.update_endpoint = _update_endpoint_action
