"""The recorded AWS documents are well formed, and the local stack produces documents of the same shape."""
import json
from datetime import datetime

import botocore.session
import pytest

from local_runtime.moto_ext import model_package_updates
from local_runtime.stack import wait_until_settled
from tests.builders import write_tiny_model_artifact
from tests.contracts import load_document, load_record, names

DESCRIBE_ENDPOINT = {"describe_endpoint_creating": "Creating", "describe_endpoint_updating": "Updating",
                     "describe_endpoint_in_service": "InService", "describe_endpoint_failed": "Failed",
                     "describe_endpoint_update_failed": "InService"}


def _sagemaker_shape(name: str):
    return botocore.session.get_session().get_service_model("sagemaker").shape_for(name)


def _conforms(value, shape, path: str = "") -> list[str]:
    """Where ``value`` (a document as sent over the wire) departs from a botocore output shape.

    Required members are checked at the top level only: nested output shapes mark members
    required that the service omits (DataCaptureConfigSummary.KmsKeyId without a key).
    """
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        problems = [f"{path}.{k}: not in {shape.name}" for k in value if k not in shape.members]
        problems += [f"{path}.{k}: required" for k in shape.required_members if k not in value and not path]
        for key, member in value.items():
            if key in shape.members:
                problems += _conforms(member, shape.members[key], f"{path}.{key}")
        return problems
    if kind == "list":
        return [p for i, item in enumerate(value) for p in _conforms(item, shape.member, f"{path}[{i}]")] \
            if isinstance(value, list) else [f"{path}: expected an array"]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string"]
        return [f"{path}: {value!r} not one of {shape.enum}"] if shape.enum and value not in shape.enum else []
    if kind in ("integer", "long", "float", "double", "timestamp"):
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [f"{path}: expected a number"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    return []


def test_every_record_names_its_source():
    assert len(names()) >= 11
    for name in names():
        record = load_record(name)
        assert record["source"].startswith("https://docs.aws.amazon.com/"), name
        assert record["notes"] and "document" in record, name


@pytest.mark.parametrize("name, status", sorted(DESCRIBE_ENDPOINT.items()))
def test_recorded_describe_endpoint_responses_match_the_service_model(name, status):
    document = load_document(name)
    assert _conforms(document, _sagemaker_shape("DescribeEndpointOutput")) == []
    assert document["EndpointStatus"] == status
    assert ("FailureReason" in document) == name.endswith("failed")


def test_recorded_state_change_event_and_lambda_documents_are_what_the_code_reads():
    event = load_document("model_package_state_change")
    assert event["detail-type"] == "SageMaker Model Package State Change" and event["source"] == "aws.sagemaker"
    assert _conforms(event["detail"]["InferenceSpecification"], _sagemaker_shape("InferenceSpecification")) == []
    assert event["detail"]["ModelApprovalStatus"] in _sagemaker_shape("ModelApprovalStatus").enum
    assert set(load_document("lambda_error_python")) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    record = load_document("lambda_invocation_record_on_failure")
    assert record["requestContext"]["condition"] == "RetriesExhausted"


@pytest.mark.parametrize("name", ["transform_output_json", "transform_output_jsonlines"])
def test_recorded_transform_outputs_hold_two_class_probabilities(name):
    lines = [json.loads(line) for line in load_document(name).splitlines() if line.strip()]
    assert len(lines) == 1
    probabilities = lines[0]["prediction"] if isinstance(lines[0], dict) else lines[0]
    assert len(probabilities) == 2 and sum(probabilities) == pytest.approx(1.0)


def _wire(response: dict) -> dict:
    """A parsed boto3 response back in wire form (timestamps as epoch seconds), without ResponseMetadata."""
    return {k: v.timestamp() if isinstance(v, datetime) else v for k, v in response.items() if k != "ResponseMetadata"}


def _same_shape(local: dict, recorded: dict) -> None:
    assert _conforms(local, _sagemaker_shape("DescribeEndpointOutput")) == []
    optional = {"ProductionVariants", "DataCaptureConfig"}      # present or not depending on the phase and config
    assert set(local) - optional == set(recorded) - optional
    assert local["EndpointStatus"] == recorded["EndpointStatus"]


def test_local_describe_endpoint_in_each_phase_has_the_recorded_shape(local_stack, tmp_path):
    sm, s3, config = local_stack.client("sagemaker"), local_stack.client("s3"), local_stack.config
    artifact = write_tiny_model_artifact(tmp_path / "model.tar.gz")
    for name, upload in (("contract-v1", True), ("contract-v2", True), ("contract-gone", False)):
        key = f"{config.storage.prefix}/contract/{name}/model.tar.gz"
        if upload:
            s3.upload_file(str(artifact), config.storage.bucket, key)
        sm.create_model(ModelName=name, ExecutionRoleArn=local_stack.resources.role_arn,
                        PrimaryContainer={"Image": "local", "ModelDataUrl": f"s3://{config.storage.bucket}/{key}"})
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])

    sm.create_endpoint(EndpointName="contract", EndpointConfigName="contract-v1")
    _same_shape(_wire(sm.describe_endpoint(EndpointName="contract")), load_document("describe_endpoint_creating"))
    _same_shape(_wire(wait_until_settled(sm, "contract", 10)), load_document("describe_endpoint_in_service"))
    sm.update_endpoint(EndpointName="contract", EndpointConfigName="contract-v2")
    updating = _wire(sm.describe_endpoint(EndpointName="contract"))
    _same_shape(updating, load_document("describe_endpoint_updating"))
    assert updating["EndpointConfigName"] == "contract-v1"          # the old config, as recorded
    wait_until_settled(sm, "contract", 10)
    sm.update_endpoint(EndpointName="contract", EndpointConfigName="contract-gone")
    update_failed = _wire(wait_until_settled(sm, "contract", 10))
    _same_shape(update_failed, load_document("describe_endpoint_update_failed"))
    assert update_failed["EndpointConfigName"] == "contract-v2"
    sm.delete_endpoint(EndpointName="contract")

    sm.create_endpoint(EndpointName="contract", EndpointConfigName="contract-gone")
    failed = _wire(wait_until_settled(sm, "contract", 10))
    _same_shape(failed, load_document("describe_endpoint_failed"))
    recorded = load_document("describe_endpoint_failed")["FailureReason"]
    assert failed["FailureReason"].split(" from URL")[0] == recorded.split(" from URL")[0]
    assert failed["FailureReason"].split('model.tar.gz". ')[1] == recorded.split('model.tar.gz". ')[1]
    sm.delete_endpoint(EndpointName="contract")


def test_local_lambda_errors_have_the_recorded_shape(local_stack):
    lam = local_stack.client("lambda")
    response = lam.invoke(FunctionName=f"{local_stack.config.project.name}-filter-inferences",
                          Payload=json.dumps({"inferences": [0.5, 0.5]}).encode())
    payload = json.loads(response["Payload"].read())
    recorded = load_document("lambda_invoke_function_error")
    assert response["StatusCode"] == recorded["StatusCode"] and response["FunctionError"] == recorded["FunctionError"]
    assert set(payload) == set(load_document("lambda_error_python"))
    assert payload["errorType"] == "ThresholdConfidenceError"


def test_local_state_change_event_has_the_recorded_shape(local_stack):
    sm = local_stack.client("sagemaker")
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends["123456789012"][local_stack.config.project.region]
    package = backend.describe_model_package(local_stack.package_arn)
    local = model_package_updates.state_change_event(package, "123456789012", local_stack.config.project.region)
    recorded = load_document("model_package_state_change")
    assert set(local) == set(recorded)
    assert set(local["detail"]) <= set(recorded["detail"])
    assert set(recorded["detail"]) - set(local["detail"]) <= {"MetadataProperties", "ModelMetrics"}   # the package has none
    assert local["detail"]["ModelPackageArn"] == local_stack.package_arn == local["resources"][0]
    assert local["detail"]["ModelApprovalStatus"] == sm.describe_model_package(
        ModelPackageName=local_stack.package_arn)["ModelApprovalStatus"]
    for key in ("time",):
        datetime.strptime(local[key], "%Y-%m-%dT%H:%M:%SZ")
    for key in ("CreationTime", "LastModifiedTime"):
        datetime.strptime(local["detail"][key], "%Y-%m-%dT%H:%M:%SZ")
