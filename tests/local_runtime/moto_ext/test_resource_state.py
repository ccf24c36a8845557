"""The saved state's documents come straight from moto's backends in the request shapes the restore replays;
canaries for the backend attributes read."""
import json

import boto3
from moto import mock_aws

from local_runtime.moto_ext import bucket_state, model_package_updates, resource_state

REGION = "us-east-1"


@mock_aws
def test_sagemaker_documents_replay_as_create_requests():
    model_package_updates.install()      # as in every local stack: moto alone drops the metadata on an update
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_model_package_group(ModelPackageGroupName="g", ModelPackageGroupDescription="vehicles")
    spec = {"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"}],
            "SupportedContentTypes": ["image/png"], "SupportedResponseMIMETypes": ["application/json"]}
    arn = sm.create_model_package(ModelPackageGroupName="g", ModelApprovalStatus="PendingManualApproval",
                                  InferenceSpecification=spec, CustomerMetadataProperties={"a": "b"})["ModelPackageArn"]
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="by me: ok")
    sm.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"})
    variants = [{"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1,
                 "InstanceType": "ml.m5.large"}]
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=variants)
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
    assert resource_state.model_package_groups(REGION) == {
        "g": {"ModelPackageGroupName": "g", "ModelPackageGroupDescription": "vehicles"}}
    package = resource_state.model_packages(REGION)[arn]
    assert package == {"ModelPackageGroupName": "g", "InferenceSpecification": spec, "ModelPackageArn": arn,
                       "CustomerMetadataProperties": {"a": "b"}, "ModelApprovalStatus": "Approved",
                       "ModelPackageVersion": 1, "ApprovalDescription": "by me: ok"}
    assert resource_state.models(REGION)["m"]["PrimaryContainer"]["ModelDataUrl"] == "s3://b/m.tar.gz"
    assert resource_state.endpoint_configs(REGION)["c"] == {"EndpointConfigName": "c", "ProductionVariants": variants}
    assert resource_state.endpoints(REGION) == {"e": {"EndpointName": "e", "EndpointConfigName": "c"}}
    resource_state.set_approval_description(REGION, arn, "restored")
    assert sm.describe_model_package(ModelPackageName=arn)["ApprovalDescription"] == "restored"


@mock_aws
def test_pipelines_keep_their_tags_and_rules_their_targets():
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_pipeline(PipelineName="p", RoleArn="arn:aws:iam::123456789012:role/r",
                       PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
                       Tags=[{"Key": "project", "Value": "x"}])
    assert resource_state.pipelines(REGION)["p"]["Tags"] == [{"Key": "project", "Value": "x"}]
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="r", EventPattern=json.dumps({"source": ["aws.sagemaker"]}), State="DISABLED")
    events.put_targets(Rule="r", Targets=[{"Id": "1", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:f"}])
    rule = resource_state.event_rules(REGION)["default/r"]
    assert rule == {"Name": "r", "EventBusName": "default", "State": "DISABLED",
                    "EventPattern": json.dumps({"source": ["aws.sagemaker"]}),
                    "Targets": [{"Id": "1", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:f"}]}


@mock_aws
def test_objects_are_read_with_a_fingerprint_that_changes_on_every_put():
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="bucket-b")
    s3.put_object(Bucket="bucket-b", Key="k", Body=b"1")
    first = bucket_state.fingerprint(bucket_state.current_object("bucket-b", "k"))
    s3.put_object(Bucket="bucket-b", Key="k", Body=b"1")
    assert bucket_state.fingerprint(bucket_state.current_object("bucket-b", "k")) != first
    assert set(bucket_state.current_objects("bucket-b")) == {"k"} and bucket_state.buckets()["bucket-b"]["Region"] == REGION
    assert bucket_state.current_object("bucket-b", "missing") is None and bucket_state.current_objects("nope") == {}
