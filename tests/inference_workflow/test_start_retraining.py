"""The start-retraining Lambda: the human-label snapshot, the start request, and one execution per event.

The pure parts (the request, the token, the manifest copy) take no client; the handler runs against
moto with the local StartPipelineExecution patch (moto alone neither runs executions nor honours
ClientRequestToken), a recording handler standing in for the executor."""
import json
import re
from dataclasses import fields

import boto3
import botocore.session
import pytest
from moto import mock_aws

from inference_workflow.start_retraining import lambda_function as retraining
from scones_common.contracts import human_labels as contract
from tests.builders import RecordingExecutions

BUCKET = "data"
LABELS = f"s3://{BUCKET}/scones/human-labels"
SETS = f"s3://{BUCKET}/scones/human-label-sets"
PIPELINE = "scones-vehicle-classifier"
SCHEDULED = {"version": "0", "id": "5d3c1b2a-0000-4000-8000-000000000001", "detail-type": "Scheduled Event",
             "source": "aws.events", "account": "123456789012", "time": "2026-11-30T03:00:00Z", "region": "us-east-1",
             "resources": ["arn:aws:events:us-east-1:123456789012:rule/scones-vehicle-classifier-retrain-schedule"],
             "detail": {}}
DRIFTED = {"version": "0", "id": "9a8b7c6d-0000-4000-8000-000000000002", "detail-type": "CloudWatch Alarm State Change",
           "source": "aws.cloudwatch", "account": "123456789012", "time": "2026-11-30T10:15:00Z", "region": "us-east-1",
           "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:scones-vehicle-classifier-drift"],
           "detail": {"alarmName": "scones-vehicle-classifier-drift", "state": {"value": "ALARM"}}}


def _start_shape():
    return botocore.session.get_session().get_service_model("sagemaker").operation_model(
        "StartPipelineExecution").input_shape.members


# -- pure ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("event, trigger", [(SCHEDULED, "schedule"), (DRIFTED, "alarm"), ({"id": "x"}, "event")])
def test_the_request_passes_both_parameters_and_a_valid_name_and_token(event, trigger):
    labels = f"{SETS}/sha256-{'0' * 64}/"
    request = retraining.start_request(event, PIPELINE, labels)
    assert request["PipelineName"] == PIPELINE
    assert request["PipelineParameters"] == [{"Name": "ModelApprovalStatus", "Value": "PendingManualApproval"},
                                             {"Name": "HumanLabelsUri", "Value": labels}]
    shape = _start_shape()
    name = request["PipelineExecutionDisplayName"]
    assert re.fullmatch(shape["PipelineExecutionDisplayName"].metadata["pattern"], name) and len(name) <= 82
    assert name.startswith(f"retrain-{trigger}")
    token = request["ClientRequestToken"]
    assert shape["ClientRequestToken"].metadata["min"] <= len(token) <= shape["ClientRequestToken"].metadata["max"]
    assert event["id"] in request["PipelineExecutionDescription"] and labels in request["PipelineExecutionDescription"]


def test_the_token_is_the_same_for_a_redelivered_event_and_differs_between_events():
    assert retraining.client_request_token(dict(SCHEDULED), PIPELINE) == retraining.client_request_token(SCHEDULED,
                                                                                                         PIPELINE)
    assert retraining.client_request_token(SCHEDULED, PIPELINE) != retraining.client_request_token(DRIFTED, PIPELINE)
    assert retraining.client_request_token(SCHEDULED, PIPELINE) != retraining.client_request_token(SCHEDULED, "other")
    for no_id in ({}, {"id": ""}, None, [], "x"):
        assert retraining.client_request_token(no_id, PIPELINE) is None
        assert "ClientRequestToken" not in retraining.start_request(no_id, PIPELINE, f"{SETS}/x/")


def test_the_lambda_copy_of_the_manifest_equals_the_contract():
    """The Lambda ships alone, so it keeps its own copy of the manifest's writing side; PrepareData reads the contract."""
    assert [f.name for f in fields(retraining.LabelEntry)] == [f.name for f in fields(contract.LabelEntry)]
    for name in ("MANIFEST_FILE", "IMAGES_FOLDER", "MANIFEST_VERSION", "SET_PREFIX"):
        assert getattr(retraining, name) == getattr(contract, name), name
    values = [("b", "s3://x/b.png", "ff", "motorcycle", "images/b.png", "bo", "2026-01-02"),
              ("a", "s3://x/a.jpg", "ee", "bicycle", "", "ana", "2026-01-01")]
    ours, theirs = [retraining.LabelEntry(*v) for v in values], [contract.LabelEntry(*v) for v in values]
    assert retraining.manifest_bytes(ours) == contract.manifest_bytes(theirs)
    assert retraining.set_name(ours) == contract.set_name(theirs) and retraining.set_name([]) == contract.set_name([])
    assert contract.parse_manifest(retraining.manifest_bytes(ours), "copy") == sorted(theirs, key=lambda e: e.review_id)


def test_a_missing_setting_is_named(monkeypatch):
    for name, value in (("PIPELINE_NAME", PIPELINE), ("LABELS_S3_URI", LABELS), ("LABEL_SETS_S3_URI", SETS)):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LABEL_SETS_S3_URI")
    with pytest.raises(retraining.RetrainingConfigError, match="LABEL_SETS_S3_URI is not set"):
        retraining.lambda_handler(SCHEDULED, None)
    monkeypatch.setenv("LABEL_SETS_S3_URI", "data/sets")
    with pytest.raises(retraining.RetrainingConfigError, match="LABEL_SETS_S3_URI"):
        retraining.lambda_handler(SCHEDULED, None)


# -- against moto ----------------------------------------------------------------------------------------------------

@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                       "PIPELINE_NAME": PIPELINE, "LABELS_S3_URI": LABELS, "LABEL_SETS_S3_URI": SETS}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(retraining, "_clients", {})
    from local_runtime.moto_ext import pipeline_executions

    pipeline_executions.install()
    handler = RecordingExecutions()
    pipeline_executions.attach(handler)
    try:
        with mock_aws():
            s3, sm = boto3.client("s3"), boto3.client("sagemaker")
            s3.create_bucket(Bucket=BUCKET)
            sm.create_pipeline(PipelineName=PIPELINE, RoleArn="arn:aws:iam::123456789012:role/sm",
                               PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": [], "Parameters": [
                                   {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "Approved"},
                                   {"Name": "HumanLabelsUri", "Type": "String", "DefaultValue": f"{SETS}/empty/"}]}))
            yield s3, sm, handler
    finally:
        pipeline_executions.detach(handler)


def _label(s3, review_id: str, label: str, image_key: str | None):
    image = f"s3://{BUCKET}/{image_key or 'scones/incoming/gone.png'}"
    if image_key:
        s3.put_object(Bucket=BUCKET, Key=image_key, Body=b"\x89PNG " + review_id.encode())
    s3.put_object(Bucket=BUCKET, Key=f"scones/human-labels/{review_id}.json", Body=json.dumps({
        "review_id": review_id, "image": image, "image_sha256": "ab" * 32, "label": label, "reviewer": "ana",
        "answered_at": "2026-11-29T12:00:00+00:00"}).encode())


def _executions(sm) -> list[dict]:
    return sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]


def test_a_scheduled_event_snapshots_the_labels_and_starts_the_pipeline_with_them(aws):
    s3, sm, handler = aws
    _label(s3, "r1", "bicycle", "scones/incoming/1.png")
    _label(s3, "r2", "motorcycle", "scones/incoming/2.jpeg")
    _label(s3, "r3", "bicycle", None)           # its image is gone: listed without a copy
    s3.put_object(Bucket=BUCKET, Key="scones/human-labels/notes.json", Body=b"[1]")     # not a record: skipped

    result = retraining.lambda_handler(SCHEDULED, None)

    labels_uri = result["human_labels_uri"]
    assert re.fullmatch(rf"{SETS}/sha256-[0-9a-f]{{64}}/", labels_uri)
    assert result["labels"] == 3 and result["trigger"] == "schedule" and result["event_id"] == SCHEDULED["id"]
    [(arn, parameters)] = handler.submitted
    assert arn == result["pipeline_execution_arn"]
    assert parameters == {"ModelApprovalStatus": "PendingManualApproval", "HumanLabelsUri": labels_uri}
    key = labels_uri.split(f"s3://{BUCKET}/", 1)[1]
    body = s3.get_object(Bucket=BUCKET, Key=f"{key}manifest.json")["Body"].read()
    entries = contract.parse_manifest(body, "manifest")
    assert labels_uri.rstrip("/").endswith(contract.set_name(entries))     # the folder is named by its manifest
    assert [(e.review_id, e.label, e.file) for e in entries] == [
        ("r1", "bicycle", "images/r1.png"), ("r2", "motorcycle", "images/r2.jpeg"), ("r3", "bicycle", "")]
    assert s3.get_object(Bucket=BUCKET, Key=f"{key}images/r2.jpeg")["Body"].read() == b"\x89PNG r2"
    [summary] = _executions(sm)
    assert summary["PipelineExecutionDisplayName"] == "retrain-schedule-202611300300"


def test_a_redelivered_event_starts_one_execution(aws):
    s3, sm, handler = aws
    _label(s3, "r1", "bicycle", "scones/incoming/1.png")
    first = retraining.lambda_handler(SCHEDULED, None)
    again = retraining.lambda_handler(json.loads(json.dumps(SCHEDULED)), None)      # EventBridge's redelivery
    assert again["pipeline_execution_arn"] == first["pipeline_execution_arn"]
    assert len(_executions(sm)) == 1 and len(handler.submitted) == 1

    drifted = retraining.lambda_handler(DRIFTED, None)      # another event: another run, the same labels
    assert drifted["pipeline_execution_arn"] != first["pipeline_execution_arn"] and drifted["trigger"] == "alarm"
    assert drifted["human_labels_uri"] == first["human_labels_uri"]
    assert len(_executions(sm)) == 2


def test_new_labels_make_a_new_set_and_no_labels_the_empty_one(aws):
    s3, sm, handler = aws
    empty = retraining.lambda_handler({**SCHEDULED, "id": "e0"}, None)
    assert empty["labels"] == 0 and empty["human_labels_uri"] == retraining.empty_set_uri(SETS)
    _label(s3, "r1", "bicycle", "scones/incoming/1.png")
    one = retraining.lambda_handler({**SCHEDULED, "id": "e1"}, None)
    assert one["labels"] == 1 and one["human_labels_uri"] != empty["human_labels_uri"]
    assert [p["HumanLabelsUri"] for _, p in handler.submitted] == [empty["human_labels_uri"], one["human_labels_uri"]]


def test_the_pipeline_tools_snapshot_with_the_lambda(aws):
    """``start_pipeline`` (run-pipeline, CodeBuild, the local main job) and the Lambda write the same set."""
    from pipelines.scones.human_labels import empty_set_uri, publish_label_set
    from scones_common.config import load_config

    s3, _, _ = aws
    config = load_config(environment="dev", environ={}, overrides={"storage.bucket": BUCKET, "storage.prefix": "scones"})
    _label(s3, "r1", "bicycle", "scones/incoming/1.png")
    assert publish_label_set(s3, config) == retraining.publish_label_set(s3, LABELS, SETS)[0]
    assert empty_set_uri(config) == retraining.empty_set_uri(SETS)
