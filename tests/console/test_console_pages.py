"""Every console page against the real local stack, through Flask's test client (fast: one shared stack).

The stack (tests/conftest.py ``local_stack``) serves v1 of a tiny real model; the module adds v2 with an
evaluation, left PendingManualApproval, a two-step pipeline (a condition and a Fail step, so executions
run in milliseconds), a training job with a log, endpoint traffic (captures and metrics) and a drift report.
"""
import json
import re
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from console.app import create_app
from console.auth import loopback_hosts
from console.pages.endpoint import canary_of
from local_runtime.stack import deploy_artifact
from tests.builders import solid_png, wait_until, write_tiny_model_artifact

BASE = "http://127.0.0.1:5000"
TOKEN = "page-token"
PIPELINE = "console-check"
DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [{"Name": "Epochs", "Type": "Integer", "DefaultValue": 3},
                   {"Name": "Note", "Type": "String", "DefaultValue": "default note"}],
    "Steps": [{"Name": "CheckEpochs", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": {"Get": "Parameters.Epochs"}, "RightValue": 1}],
        "IfSteps": [],
        "ElseSteps": [{"Name": "TooFewEpochs", "Type": "Fail", "Arguments": {"ErrorMessage": "Epochs must be >= 1"}}]}}],
}


def _evaluation_dir(path):
    from processing.evaluate import score

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 60)
    confidence = rng.uniform(0.55, 1.0, 60)
    right = rng.uniform(size=60) < 0.9
    predicted = np.where(right, truth, 1 - truth)
    probabilities = np.where(predicted[:, None] == np.arange(2), confidence[:, None], 1 - confidence[:, None])
    path.mkdir(parents=True)
    (path / "evaluation.json").write_text(json.dumps(score(truth, probabilities, 0.93)))
    return path


@pytest.fixture(scope="module")
def console(local_stack, tmp_path_factory):
    work = tmp_path_factory.mktemp("console")
    stack = local_stack
    sm, config = stack.client("sagemaker"), stack.config
    pending = deploy_artifact(stack, write_tiny_model_artifact(work / "v2" / "model.tar.gz", inverted=True),
                              "tiny/console-v2", "PendingManualApproval", _evaluation_dir(work / "evaluation"))
    sm.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(DEFINITION),
                       RoleArn=config.pipeline.role_arn)
    from local_runtime.moto_ext import sagemaker_jobs

    region = stack.aws.region
    sagemaker_jobs.job_started(region, "Training", "console-train", f"arn:aws:sagemaker:{region}:123456789012:"
                               "training-job/console-train", {
                                   "AlgorithmSpecification": {"TrainingImage": "image-classification:1",
                                                              "TrainingInputMode": "File"},
                                   "RoleArn": config.pipeline.role_arn,
                                   "OutputDataConfig": {"S3OutputPath": "s3://b/models"},
                                   "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                      "VolumeSizeInGB": 30},
                                   "StoppingCondition": {"MaxRuntimeInSeconds": 60},
                                   "HyperParameters": {"epochs": "7", "learning_rate": "0.01"}})
    sagemaker_jobs.job_finished(region, "Training", "console-train", {
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/models/console-train/output/model.tar.gz"},
        "FinalMetricDataList": [{"MetricName": "validation:accuracy", "Value": 0.875}], "TrainingTimeInSeconds": 2.0})
    logs = stack.client("logs")
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName="console-train/algo-1-1")
    logs.put_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName="console-train/algo-1-1",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "epoch 7/7 validation:accuracy=0.875"}])
    runtime = stack.client("sagemaker-runtime")
    for value in (255, 0, 128, 250):
        runtime.invoke_endpoint(EndpointName=config.endpoint.name, ContentType="image/png", Body=solid_png(value))
    now = datetime.now(UTC)
    stack.client("s3").put_object(
        Bucket=config.storage.bucket,
        Key=f"{config.storage.prefix}/{config.monitor.report_prefix}/{config.endpoint.name}/{now:%Y/%m/%d/%H%M%S}.json",
        Body=json.dumps({"window": {"start": now.isoformat(), "end": now.isoformat()}, "records": 40,
                         "enough_data": True, "drift_score": 0.31, "low_confidence_share": {"baseline": 0.1,
                                                                                            "current": 0.25},
                         "features": [{"feature": "brightness", "psi": 0.31}, {"feature": "red", "psi": 0.05}],
                         "violations": [{"feature": "brightness", "psi": 0.31}]}).encode())
    app = create_app(stack.client, TOKEN, loopback_hosts(5000), config, "local stack")
    client = app.test_client()
    assert client.get(f"/?token={TOKEN}", base_url=BASE).status_code == 303
    with client.session_transaction(base_url=BASE) as session:
        csrf = session["csrf"]
    yield stack, client, csrf, pending


def _get(client, path):
    response = client.get(path, base_url=BASE)
    assert response.status_code == 200, response.data.decode()[:2000]
    return response.data.decode()


def _page_with(client, path, check):
    page = _get(client, path)
    return page if check(page) else None


def _post(client, path, csrf, **form):
    return client.post(path, data={"csrf_token": csrf, **form}, base_url=BASE)


def test_start_an_execution_and_watch_it_in_the_list_and_its_graph(console):
    stack, client, csrf, _ = console
    page = _get(client, f"/pipelines?pipeline={PIPELINE}")
    assert 'name="param-Epochs" value="3"' in page and f'value="{csrf}"' in page
    bad = _post(client, f"/pipelines/{PIPELINE}/start", csrf, **{"param-Epochs": "many"})
    assert bad.status_code == 400 and "Epochs must be a whole number" in bad.data.decode()
    started = _post(client, f"/pipelines/{PIPELINE}/start", csrf, **{"param-Epochs": "0", "param-Note": "default note"})
    assert started.status_code == 303
    location = started.headers["Location"]
    sm = stack.client("sagemaker")
    arn = wait_until(lambda: next((e["PipelineExecutionArn"] for e in sm.list_pipeline_executions(
        PipelineName=PIPELINE)["PipelineExecutionSummaries"] if e["PipelineExecutionStatus"] == "Failed"), None),
        what="the execution to fail")
    assert location.endswith(arn.rsplit("/", 1)[1])
    assert sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"] == \
        [{"Name": "Epochs", "Value": "0"}]                     # only what the form changed is sent

    listed = _get(client, f"/pipelines?pipeline={PIPELINE}")
    assert "console-" in listed and "Failed" in listed and "started from the operator console by arn:aws:" in listed

    page = _get(client, location)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="pipeline-graph"' in page
    assert 'data-step="TooFewEpochs"' in page and "step step-failed" in page and "step step-succeeded" in page
    assert "Epochs must be &gt;= 1" in page and "condition false" in page
    assert "<td>Epochs</td><td><code>0</code></td>" in page
    assert 'http-equiv="refresh"' not in page                 # finished: no more refreshing


def test_job_page_shows_parameters_metrics_and_the_log(console):
    _, client, _, _ = console
    page = _get(client, "/jobs/training/console-train")
    assert "<td>epochs</td><td><code>7</code></td>" in page and "validation:accuracy" in page and "0.8750" in page
    assert "epoch 7/7 validation:accuracy=0.875" in page and "Completed" in page


def test_registry_lists_versions_with_their_evaluation(console):
    _, client, _, _ = console
    page = _get(client, "/registry")
    rows = re.findall(r"<tr>\s*<td><a href=\"/registry/versions/(\d+)\">", page)
    assert rows == ["2", "1"]
    assert "PendingManualApproval" in page and ">live<" in page and "at 0.93" in page
    version = _get(client, "/registry/versions/2")
    assert version.count('<svg class="plot"') == 3 and "Confusion matrix" in version and "Calibration" in version
    assert "Reason to approve" in version and "No decision recorded" in version


def test_a_decision_without_a_reason_is_refused_and_one_with_a_reason_is_audited(console):
    stack, client, csrf, pending = console
    sm = stack.client("sagemaker")
    refused = _post(client, "/registry/versions/2/reject", csrf, reason="   ")
    assert refused.status_code == 303
    assert "a reason is required" in _get(client, "/registry/versions/2")
    assert sm.describe_model_package(ModelPackageName=pending)["ModelApprovalStatus"] == "PendingManualApproval"

    rejected = _post(client, "/registry/versions/2/reject", csrf, reason="fails on night photos")
    assert rejected.status_code == 303
    page = _get(client, "/registry/versions/2")
    assert "v2 rejected (it was not live)" in page and "fails on night photos" in page
    package = sm.describe_model_package(ModelPackageName=pending)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"].startswith("Rejected by arn:aws:") and \
        package["ApprovalDescription"].endswith(": fails on night photos")    # what scones-registry writes
    assert package["CustomerMetadataProperties"]["decision-1-reason"] == "fails on night photos"


def test_compare_shows_what_changed(console):
    _, client, _, _ = console
    page = _get(client, "/registry/compare?a=1&b=2")
    assert re.search(r'<tr class="differs">\s*<td>version</td>', page)
    assert re.search(r'<tr class="">\s*<td>image</td>', page)
    assert "fields differ" in page
    only = _get(client, "/registry/compare?a=1&b=2&only=differs")
    assert "<td>version</td>" in only and "<td>image</td>" not in only
    assert client.get("/registry/compare?a=1&b=x", base_url=BASE).status_code == 400
    assert client.get("/registry/versions/99", base_url=BASE).status_code == 404


def test_endpoint_page_shows_the_serving_package_alarms_and_traffic(console):
    stack, client, _, _ = console
    page = wait_until(lambda: _page_with(client, "/endpoint", lambda p: not re.search(r"last 1h: 0 invocations", p)),
                 what="invocation metrics")
    assert "InService" in page and 'href="/registry/versions/1"' in page
    assert f"{stack.config.endpoint.name}-invocation-5xx-rate" in page and "No deployment in progress" in page
    assert page.count('<svg class="plot"') == 3


def test_captures_page_shows_images_confidence_and_drift(console):
    _, client, _, _ = console
    page = wait_until(lambda: _page_with(client, "/captures", lambda p: "data:image/png;base64," in p),
                 what="captures to be written")
    assert page.count('<figure class="capture') == 4 and 'class="capture low"' in page
    assert "Low-confidence share" in page and "brightness" in page and "0.310" in page
    assert "No review is waiting" in _get(client, "/review") or "review-" in _get(client, "/review")


def test_review_lists_an_image_waiting_for_a_person_and_answers_it(console):
    stack, client, csrf, _ = console
    bucket, sfn = stack.config.storage.bucket, stack.client("stepfunctions")
    stack.client("s3").put_object(Bucket=bucket, Key="console-review/grey.png", Body=solid_png(128))
    arn = sfn.start_execution(stateMachineArn=stack.resources.state_machine_arn, name="console-review",
                              input=json.dumps({"s3_bucket": bucket, "s3_key": "console-review/grey.png"}))["executionArn"]
    page = wait_until(lambda: _page_with(client, "/review", lambda p: "s3://scones-local/console-review/grey.png" in p),
                 what="the review request")
    review_id = re.search(r'id="review-([0-9a-f]{16})"', page).group(1)
    assert "data:image/png;base64," in page and "waiting" in page and 'value="motorcycle"' in page
    refused = _post(client, f"/review/{review_id}/answer", csrf, label="car")
    assert refused.status_code == 303
    assert "is not one of the classes" in _get(client, "/review")
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert client.post(f"/review/{review_id}/answer", data={"label": "bicycle"}, base_url=BASE).status_code == 403
    answered = _post(client, f"/review/{review_id}/answer", csrf, label="bicycle", note="a cargo bike")
    assert answered.status_code == 303
    page = _get(client, "/review")
    assert f"Review {review_id}: bicycle, sent to the waiting execution (execution SUCCEEDED)" in page
    assert f'id="review-{review_id}"' not in page
    record = json.loads(stack.client("s3").get_object(
        Bucket=bucket, Key=f"{stack.config.storage.prefix}/human-labels/{review_id}.json")["Body"].read())
    assert record["note"] == "a cargo bike" and record["reviewer"].startswith("arn:aws:")   # who, as STS says


def test_canary_reads_pending_deployment_and_config():
    started = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    endpoint = {"EndpointConfigName": "e-v1", "PendingDeploymentSummary": {"EndpointConfigName": "e-v2",
                                                                           "StartTime": started},
                "LastDeploymentConfig": {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                    "Type": "CANARY", "WaitIntervalInSeconds": 600, "CanarySize": {"Type": "CAPACITY_PERCENT",
                                                                                   "Value": 10}}},
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "e-5xx"}]}}}
    canary = canary_of(endpoint, now=datetime(2026, 12, 7, 10, 4, tzinfo=UTC))
    assert (canary.old_config, canary.new_config, canary.canary_percent, canary.seconds_left, canary.alarms) == \
        ("e-v1", "e-v2", 10.0, 360.0, ("e-5xx",))
    assert canary_of({"EndpointConfigName": "e-v1"}) is None


def test_a_fresh_account_where_nothing_exists_yet_reads_plainly(console):
    stack, _, _, _ = console
    config = stack.config
    fresh = config.model_copy(update={
        "endpoint": config.endpoint.model_copy(update={"name": "no-such-endpoint"}),
        "registry": config.registry.model_copy(update={"model_package_group": "no-such-group"}),
        "pipeline": config.pipeline.model_copy(update={"name": "no-such-pipeline"})})
    client = create_app(stack.client, TOKEN, loopback_hosts(5000), fresh).test_client()
    client.get(f"/?token={TOKEN}", base_url=BASE)
    assert "No model package in group no-such-group yet" in _get(client, "/registry")
    assert "Endpoint no-such-endpoint does not exist" in _get(client, "/endpoint")
    assert "Nothing captured yet" in _get(client, "/captures")
    assert f"Executions of {PIPELINE}" in _get(client, f"/pipelines?pipeline={PIPELINE}")
    missing = client.get("/pipelines?pipeline=no-such-pipeline", base_url=BASE)
    assert missing.status_code == 404 and "no pipeline named" in missing.data.decode()
