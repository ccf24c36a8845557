"""Requests checked against botocore's SageMaker model, with the service's ValidationException wording."""
import pytest

from local_runtime.pipeline.step_requests import step_request
from local_runtime.request_validation import (
    ValidationException,
    compile_pattern,
    request_problems,
    validate_request,
)

PACKAGE = {"ModelPackageGroupName": "scones", "ModelApprovalStatus": "Approved",
           "CustomerMetadataProperties": {"data_source": "s3://b/raw/cifar-100-python.tar.gz", "accuracy": "0.91"},
           "InferenceSpecification": {"Containers": [{"Image": "811284229777.dkr.ecr.us-east-1.amazonaws.com/ic:1",
                                                      "ModelDataUrl": "s3://b/models/m/model.tar.gz"}],
                                      "SupportedContentTypes": ["image/png"], "SupportedResponseMIMETypes": ["application/json"]}}
CUSTOMER_PATTERN = r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,256}"


def test_a_valid_request_has_no_problems():
    assert request_problems("CreateModelPackage", PACKAGE) == []


def test_pattern_violation_names_the_field_like_the_service():
    bad = {**PACKAGE, "CustomerMetadataProperties": {"data_source": "~/data/x.tar.gz"}}
    with pytest.raises(ValidationException) as caught:
        validate_request("CreateModelPackage", bad)
    assert str(caught.value) == (
        "1 validation error detected: Value '~/data/x.tar.gz' at 'customerMetadataProperties.data_source' failed "
        f"to satisfy constraint: Member must satisfy regular expression pattern: {CUSTOMER_PATTERN}")
    assert caught.value.failure_reason.startswith(
        "ClientError: Failed to invoke sagemaker:CreateModelPackage. Error Details: 1 validation error detected")


@pytest.mark.parametrize("change, fragment", [
    ({"ModelApprovalStatus": "Approve"}, "at 'modelApprovalStatus' failed to satisfy constraint: Member must satisfy "
                                         "enum value set: [Approved, Rejected, PendingManualApproval]"),
    ({"ModelPackageDescription": "d" * 1025}, "Member must have length less than or equal to 1024"),
    ({"ModelPackageGroupName": "no spaces"}, "at 'modelPackageGroupName' failed to satisfy constraint: Member must "
                                             "satisfy regular expression pattern"),
    ({"CustomerMetadataProperties": {"k": "v" * 257}}, "at 'customerMetadataProperties.k' failed to satisfy "
                                                       "constraint: Member must have length less than or equal to 256"),
    ({"InferenceSpecification": {"SupportedContentTypes": ["image/png"]}},
     "Value null at 'inferenceSpecification.containers' failed to satisfy constraint: Member must not be null"),
    ({"Colour": "blue"}, "at 'colour' failed to satisfy constraint: Member must be one of the known members"),
])
def test_each_kind_of_constraint(change, fragment):
    problems = request_problems("CreateModelPackage", {**PACKAGE, **change})
    assert any(fragment in p for p in problems), problems


def test_lists_ranges_and_types_in_a_training_request():
    request = {"TrainingJobName": "job", "RoleArn": "arn:aws:iam::123456789012:role/sm",
               "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
               "OutputDataConfig": {"S3OutputPath": "s3://b/models"},
               "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
               "StoppingCondition": {"MaxRuntimeInSeconds": 0},
               "HyperParameters": {"epochs": 40},
               "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
                   "S3DataType": "S3Prefix", "S3Uri": "bucket/train/"}}}]}
    problems = request_problems("CreateTrainingJob", request)
    assert len(problems) == 3, problems
    assert any("at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: Member must have value greater than "
               "or equal to 1" in p for p in problems)
    assert any("Value '40' at 'hyperParameters.epochs' failed to satisfy constraint: Member must be a string" in p
               for p in problems)
    assert any("at 'inputDataConfig.1.member.dataSource.s3DataSource.s3Uri'" in p for p in problems)
    with pytest.raises(ValidationException, match="^3 validation errors detected: "):
        validate_request("CreateTrainingJob", request)


def test_java_patterns_become_python_ones():
    assert compile_pattern(CUSTOMER_PATTERN).fullmatch("Ünïcode data 2024/x=y+z@q")
    assert not compile_pattern(CUSTOMER_PATTERN).fullmatch("~")
    astral = compile_pattern(r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*")
    assert astral.fullmatch("tab\there 😀") and not astral.fullmatch("\x00")


def test_step_arguments_become_the_api_request():
    assert step_request("Training", {"A": 1}, "job") == ("CreateTrainingJob", {"A": 1, "TrainingJobName": "job"})
    assert step_request("RegisterModel", PACKAGE, "job") == ("CreateModelPackage", PACKAGE)
    assert step_request("Lambda", {}, "job") is None
