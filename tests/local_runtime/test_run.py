"""The main job end to end on the tiny synthetic CIFAR archive (the session's shared run): the real definition,
every step runner, the endpoint, the workflow, captures, the report; then a second run on the restored state."""
import json

import pytest

from local_runtime.run import run_local
from local_runtime.settings import load_local_config
from local_runtime.state import load_documents, mirrored_objects
from tests.tiny_run import TINY_EPOCHS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runs(main_job, tmp_path_factory):
    """The session's main job, then on a copy of its directory a cached rerun and a retrain awaiting approval."""
    run_dir = main_job.copy_to(tmp_path_factory.mktemp("reruns") / "run")
    second = run_local(load_local_config(environ={}, overrides=main_job.overrides), run_dir, executions=2)
    retrained = load_local_config(environ={}, overrides={
        **main_job.overrides, "registry.approval_status": "PendingManualApproval",
        "training.hyperparameters.epochs": TINY_EPOCHS + 1})
    third = run_local(retrained, run_dir, executions=0)
    return run_dir, main_job.summary, second, third


def test_first_run_executes_every_step(runs):
    _, first, _, _ = runs
    assert first.succeeded, first.execution.failure
    statuses = {s.name: s.status for s in first.execution.steps}
    assert statuses == {"PrepareData": "Succeeded", "TrainModel": "Succeeded", "CreateModel": "Succeeded",
                        "BatchTransformTest": "Succeeded", "EvaluateModel": "Succeeded", "CheckAccuracy": "Succeeded",
                        "FindRegisteredModel": "Succeeded", "CheckNewModel": "Succeeded",
                        "FindChampion": "Succeeded", "ScoreChampion": "Succeeded", "CompareWithChampion": "Succeeded",
                        "ChampionGate": "Succeeded", "ChallengerWorseThanChampion": "Skipped",   # no champion yet
                        "RegisterModel": "Succeeded", "DeployModel": "Succeeded", "AccuracyBelowThreshold": "Skipped"}
    assert first.evaluation["metrics"]["count"] == 20 and first.accuracy >= 0.6
    assert first.model_package_arn.endswith("/1")
    assert (first.endpoint.status, first.endpoint.package_version) == ("InService", 1)
    assert first.already_registered is None


def test_workflow_ran_on_test_images_and_was_captured(runs):
    run_dir, first, _, _ = runs
    assert len(first.workflow) == 6 and first.endpoint_answers
    staged = f"/staged/{first.execution.execution_id}/test/"      # PrepareData's per-execution output
    assert all(staged in r.s3_key for r in first.workflow)
    assert all(r.status == "SUCCEEDED" or r.waiting_for_review for r in first.workflow)     # none waits on a person
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
    saved = [key for keys in mirrored_objects(run_dir / "state").values() for key in keys]
    assert [key for key in saved if key.endswith(".jsonl")], "captures not persisted"
    assert [key for key in saved if key.endswith(f"staged/{first.execution.execution_id}/test.lst")]


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
    packages = load_documents(run_dir / "state", "sagemaker.model-packages")
    assert [p["ModelApprovalStatus"] for p in packages] == ["Approved", "PendingManualApproval"]
