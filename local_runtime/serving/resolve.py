"""Finds a model's artifact through the (local) SageMaker control plane."""
from __future__ import annotations


def container_artifact_uri(sm, container: dict) -> str:
    if container.get("ModelDataUrl"):
        return container["ModelDataUrl"]
    if container.get("ModelPackageName"):
        package = sm.describe_model_package(ModelPackageName=container["ModelPackageName"])
        return package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    raise LookupError(f"container {container} has neither ModelDataUrl nor ModelPackageName")


def model_artifact_uri(sm, model_name: str) -> str:
    model = sm.describe_model(ModelName=model_name)
    container = model.get("PrimaryContainer") or model["Containers"][0]
    return container_artifact_uri(sm, container)
