"""The drift monitor on the real local stack: traffic through the endpoint, captures in S3, the
monitor Lambda from its zip, its report in S3 and its metrics in the local CloudWatch."""
import io
import json
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image

from local_runtime.alarms import wait_for_state
from local_runtime.serving.model import ImageClassifier
from local_runtime.settings import load_local_config
from local_runtime.stack import deploy_artifact, local_stack
from processing.baseline import write_baseline
from scones_common.names import human_label_sets_uri
from scones_common.s3uri import parse_s3_uri
from tests.builders import synthetic_images, write_tiny_model_artifact


def _pngs(images: np.ndarray) -> list[bytes]:
    out = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def _in_distribution(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([synthetic_images(n, 8, rng), synthetic_images(n, 48, rng)])


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """A stack whose live package carries evaluation.json + baseline.json, as RegisterModel registers them."""
    work = tmp_path_factory.mktemp("drift")
    artifact = write_tiny_model_artifact(work / "model.tar.gz")
    model = ImageClassifier.from_artifact(artifact, work / "unpacked")
    evaluation = work / "evaluation"
    images = work / "test"
    relatives = []
    for i, data in enumerate(_pngs(_in_distribution(0, 60))):
        (images / f"{i}.png").parent.mkdir(parents=True, exist_ok=True)
        (images / f"{i}.png").write_bytes(data)
        relatives.append(f"{i}.png")
    probabilities = [model.predict_one((images / r).read_bytes()) for r in relatives]
    evaluation.mkdir()
    (evaluation / "evaluation.json").write_text(json.dumps({"metrics": {"accuracy": {"value": 1.0}}}))
    write_baseline(evaluation, probabilities, images, relatives, ["bicycle", "motorcycle"], 0.93)
    config = load_local_config(environ={})
    with ExitStack() as exits:
        stack = exits.enter_context(local_stack(config, work, capture_flush_seconds=0.2))
        deploy_artifact(stack, artifact, "tiny/drift", evaluation_dir=evaluation)
        stack.client("sagemaker").create_pipeline(    # the retraining pipeline the drift rule targets
            PipelineName=config.pipeline.name, RoleArn=stack.resources.role_arn, PipelineDefinition=json.dumps({
                "Version": "2020-12-01", "Steps": [], "Parameters": [
                    {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "Approved"},
                    {"Name": "HumanLabelsUri", "Type": "String", "DefaultValue": "s3://none/"}]}))
        yield stack


def _send(stack, images: np.ndarray) -> None:
    runtime = stack.client("sagemaker-runtime")
    for data in _pngs(images):
        runtime.invoke_endpoint(EndpointName=stack.config.endpoint.name, ContentType="image/png", Body=data)
    stack.server.capture.flush()


def _run_monitor(stack) -> dict:
    response = stack.client("lambda").invoke(FunctionName=stack.resources.monitor_function_arn, Payload=b"{}")
    result = json.loads(response["Payload"].read())
    assert not response.get("FunctionError"), result
    location = parse_s3_uri(result["report_uri"])
    return json.loads(stack.client("s3").get_object(Bucket=location.bucket, Key=location.key)["Body"].read())


def test_in_distribution_traffic_then_inverted_images(monitored):
    sm, cloudwatch = monitored.client("sagemaker"), monitored.client("cloudwatch")
    drift_alarm = f"{monitored.config.endpoint.name}-drift"
    _send(monitored, _in_distribution(1, 25))
    calm = _run_monitor(monitored)
    assert calm["records"] == 50 and calm["enough_data"] and calm["violations"] == []
    wait_for_state(cloudwatch, drift_alarm, "OK", timeout=25)      # the period holding the calm score is judged
    assert sm.list_pipeline_executions(PipelineName=monitored.config.pipeline.name)["PipelineExecutionSummaries"] == []

    _send(monitored, 255 - _in_distribution(2, 40))
    shifted = _run_monitor(monitored)
    assert shifted["records"] == 130
    violated = {v["feature"] for v in shifted["violations"]}
    assert {"brightness", "red_histogram", "green_histogram", "blue_histogram"} <= violated
    assert shifted["drift_score"] > 0.2 and shifted["baseline"].endswith("/evaluation/tiny/drift/baseline.json")

    started = time.monotonic()
    wait_for_state(cloudwatch, drift_alarm, "ALARM", timeout=25)
    executions = []
    while not executions and time.monotonic() - started < 30:
        executions = sm.list_pipeline_executions(PipelineName=monitored.config.pipeline.name)[
            "PipelineExecutionSummaries"]
        time.sleep(0.2)
    assert len(executions) == 1
    parameters = sm.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=executions[0]["PipelineExecutionArn"])["PipelineParameters"]
    assert {"Name": "ModelApprovalStatus", "Value": "PendingManualApproval"} in parameters
    labels = next(p["Value"] for p in parameters if p["Name"] == "HumanLabelsUri")    # via the start-retraining Lambda
    assert labels.startswith(f"{human_label_sets_uri(monitored.config)}/sha256-") and labels.endswith("/")
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="Scones/DriftMonitor", MetricName="DriftScore",
        Dimensions=[{"Name": "EndpointName", "Value": monitored.config.endpoint.name}],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1), Period=60,
        Statistics=["Maximum"])["Datapoints"]
    assert max(p["Maximum"] for p in points) == pytest.approx(shifted["drift_score"])


def test_capture_report_shows_drift_scores_over_time(monitored, tmp_path):
    from inference_workflow.capture_report import draw_report, read_capture, read_drift_reports

    s3, config = monitored.client("s3"), monitored.config
    root = f"{config.s3_root}"
    if not read_drift_reports(s3, f"{root}/{config.monitor.report_prefix}/{config.endpoint.name}/"):
        _send(monitored, _in_distribution(3, 20))
        _run_monitor(monitored)
    points = read_drift_reports(s3, f"{root}/{config.monitor.report_prefix}/{config.endpoint.name}/")
    records = read_capture(s3, f"{root}/{config.endpoint.capture_prefix}/{config.endpoint.name}/")
    index = draw_report(records, 0.93, tmp_path, drift=points, psi_threshold=config.monitor.psi_threshold)
    assert (tmp_path / "drift_over_time.png").stat().st_size > 1000
    assert f"{len(points)} monitor runs" in index.read_text() and all("brightness" in p.features for p in points)


def test_records_as_sagemaker_writes_them_count_and_unreadable_lines_are_skipped(monitored):
    """SageMaker's capture files carry inferenceTime without fractions; a broken line must not stop the monitor."""
    from scones_common.contracts.capture import capture_file_key, capture_record

    s3, config = monitored.client("s3"), monitored.config
    before = _run_monitor(monitored)
    image = _pngs(_in_distribution(4, 1)[:1])[0]
    now = datetime.now(UTC)
    record = capture_record(image, "image/png", json.dumps([0.99, 0.01]), "application/json", now)
    record["eventMetadata"]["inferenceTime"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [json.dumps(record), '{"captureData": {"endpointInput"', json.dumps({"captureData": {}}), "[1, 2]"]
    location = parse_s3_uri(f"{config.s3_root}/{config.endpoint.capture_prefix}")
    s3.put_object(Bucket=location.bucket, Key=capture_file_key(location.key, config.endpoint.name, "AllTraffic", now),
                  Body="\n".join(lines).encode())
    after = _run_monitor(monitored)
    assert after["records"] == before["records"] + 1
    assert after["skipped_records"] == before["skipped_records"] + 3


def test_a_malformed_baseline_is_a_named_error(monitored):
    s3, config = monitored.client("s3"), monitored.config
    key = f"{config.storage.prefix}/evaluation/tiny/drift/baseline.json"
    original = s3.get_object(Bucket=config.storage.bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=config.storage.bucket, Key=key, Body=b'{"class_names": ["bicycle"]}')
    try:
        response = monitored.client("lambda").invoke(FunctionName=monitored.resources.monitor_function_arn,
                                                     Payload=b"{}")
        result = json.loads(response["Payload"].read())
        assert response.get("FunctionError") and result["errorType"] == "BaselineFormatError"
        assert "re-run the pipeline's evaluation" in result["errorMessage"]
    finally:
        s3.put_object(Bucket=config.storage.bucket, Key=key, Body=original)
