"""The main job end to end on a small synthetic CIFAR archive: the real definition, every step runner,
the endpoint, the workflow, captures, the report; then a second run on the restored state."""
import dataclasses
import json

import pytest

from local_runtime.run import run_local
from scones_common.config import load_config
from tests.builders import make_cifar_archive


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("main-job")
    archive = make_cifar_archive(root / "cifar-100-python.tar.gz", per_class_train=60, per_class_test=20)
    config = load_config(environment="local", environ={}, overrides={
        "data.source": str(archive), "data.cache_dir": str(root / "cache"),
        "training.hyperparameters.epochs": 6, "evaluation.accuracy_threshold": 0.6,
        "deployment.wait_seconds": 2})   # the canary has its own tests
    run_dir = root / "run"
    first = run_local(config, run_dir, executions=6, concurrency=2)
    second = run_local(config, run_dir, executions=2)
    gated = dataclasses.replace(config, registry=dataclasses.replace(config.registry,
                                                                     approval_status="PendingManualApproval"))
    retrained = dataclasses.replace(gated, training=dataclasses.replace(gated.training, hyperparameters=dataclasses.replace(
        gated.training.hyperparameters, epochs=7)))
    third = run_local(retrained, run_dir, executions=0)
    return run_dir, first, second, third


def test_first_run_executes_every_step(runs):
    _, first, _, _ = runs
    assert first.succeeded, first.execution.failure
    statuses = {s.name: s.status for s in first.execution.steps}
    assert statuses == {"PrepareData": "Succeeded", "TrainModel": "Succeeded", "CreateModel": "Succeeded",
                        "BatchTransformTest": "Succeeded", "EvaluateModel": "Succeeded", "CheckAccuracy": "Succeeded",
                        "FindRegisteredModel": "Succeeded", "CheckNewModel": "Succeeded",
                        "RegisterModel": "Succeeded", "DeployModel": "Succeeded", "AccuracyBelowThreshold": "Skipped"}
    assert first.evaluation["metrics"]["count"] == 40 and first.accuracy >= 0.6
    assert first.model_package_arn.endswith("/1")
    assert (first.endpoint.status, first.endpoint.package_version) == ("InService", 1)
    assert first.already_registered is None


def test_workflow_ran_on_test_images_and_was_captured(runs):
    run_dir, first, _, _ = runs
    assert len(first.workflow) == 6 and first.endpoint_answers
    staged = f"/staged/{first.execution.execution_id}/test/"      # PrepareData's per-execution output
    assert all(staged in r.s3_key for r in first.workflow)
    assert all(r.status == "SUCCEEDED" or r.error.startswith("ThresholdConfidenceError") for r in first.workflow)
    assert first.capture_records == 6
    for name in ("index.html", "confidence_over_time.png", "confidence_histogram.png", "captured_images.png"):
        assert (run_dir / "report" / name).exists(), name


def test_the_drift_monitor_judged_the_captured_traffic_against_the_evaluation_baseline(runs):
    _, first, second, _ = runs
    assert first.drift["records"] == 6 and first.drift["enough_data"] is False     # below monitor.min_records
    assert first.drift["report_uri"].endswith(".json") and first.drift["violations"] == []
    assert second.drift["records"] == 6 + 2


def test_everything_is_kept_on_disk(runs):
    run_dir, first, _, _ = runs
    assert json.loads((run_dir / "pipeline-definition.json").read_text())["Steps"][0]["Name"] == "PrepareData"
    assert (run_dir / "executions" / f"{first.execution.execution_id}.json").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["execution"]["status"] == "Succeeded" and summary["accuracy"] is not None
    assert list((run_dir / "state" / "s3").rglob("*.jsonl")), "captures not persisted"
    assert list((run_dir / "state" / "s3").rglob(f"staged/{first.execution.execution_id}/test.lst"))


def test_cached_run_restores_state_and_does_not_register_the_same_model_again(runs):
    _, first, second, _ = runs
    assert second.succeeded, second.execution.failure
    statuses = {s.name: s.status for s in second.execution.steps}
    assert statuses["PrepareData"] == "Cached" and statuses["TrainModel"] == "Cached"
    assert statuses["FindRegisteredModel"] == "Succeeded" and statuses["CheckNewModel"] == "Succeeded"
    assert statuses["RegisterModel"] == "Skipped" and statuses["DeployModel"] == "Skipped"
    assert second.model_package_arn is None and second.already_registered == first.model_package_arn
    assert second.endpoint.package_version == 1
    assert second.capture_records == 6 + 2      # the first run's captures came back with the state


def test_a_package_awaiting_approval_leaves_the_live_endpoint_alone(runs):
    run_dir, _, _, third = runs
    assert third.succeeded and third.model_package_arn.endswith("/2")     # retrained: a new artifact
    assert third.execution.steps[1].status == "Succeeded"
    assert third.endpoint.package_version == 1
    snapshot = json.loads((run_dir / "state" / "sagemaker.json").read_text())
    assert [p["ModelApprovalStatus"] for p in snapshot["packages"]] == ["Approved", "PendingManualApproval"]
