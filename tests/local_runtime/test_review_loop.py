"""The review loop on a copy of the session's main job: images the model is unsure of wait for a person, the
person's answers are recorded, and the next pipeline run's PrepareData trains on them (an image of the test
split is skipped). The pipeline is stopped once PrepareData has staged: training is the main job's concern."""
import json
import time

import pytest

from inference_workflow.executions import run_executions
from inference_workflow.review import ReviewStore, answer_review, list_reviews
from local_runtime import state
from local_runtime.settings import load_local_config
from local_runtime.stack import local_stack, wait_until_settled
from scones_common.s3uri import parse_s3_uri
from tests.builders import solid_png

pytestmark = pytest.mark.e2e


def _staged_test_key(s3, bucket: str, prefix: str) -> str:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/staged/")
    return next(o["Key"] for o in listed["Contents"] if "/test/" in o["Key"] and o["Key"].endswith(".png"))


def _prepare_data_status(sm, arn: str) -> str:
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    return next((s["StepStatus"] for s in steps if s["StepName"] == "PrepareData"), "NotStarted")


def test_reviewed_images_train_the_next_model_but_never_a_test_image(main_job, tmp_path):
    from pipelines.scones.launch import start_pipeline

    run_dir = main_job.copy_to(tmp_path / "run")
    config = load_local_config(environ={}, overrides=main_job.overrides)
    bucket, prefix = config.storage.bucket, config.storage.prefix
    with local_stack(config, run_dir) as stack:
        state.restore(stack.aws, bucket, run_dir / "state")
        wait_until_settled(stack.client("sagemaker"), config.endpoint.name, timeout=30)
        s3, sfn, lam, sm = (stack.client(s) for s in ("s3", "stepfunctions", "lambda", "sagemaker"))
        store = ReviewStore.of(config)
        before = {r.review_id for r in list_reviews(s3, sfn, store)}   # the main job's, if its model was unsure
        # every image to a person: the threshold at 1 (the function's own variable, as the template sets it)
        filter_arn = stack.resources.functions["FilterInferencesFunctionArn"]
        lam.update_function_configuration(FunctionName=filter_arn, Environment={"Variables": {"THRESHOLD": "1"}})
        s3.put_object(Bucket=bucket, Key=f"{prefix}/incoming/driver-7.png", Body=solid_png(90))
        events = [{"s3_bucket": bucket, "s3_key": _staged_test_key(s3, bucket, prefix)},
                  {"s3_bucket": bucket, "s3_key": f"{prefix}/incoming/driver-7.png"}]
        results = run_executions(sfn, stack.resources.state_machine_arn, events, concurrency=2, timeout=30)
        assert [r.waiting_for_review for r in results] == [True, True], results
        pending = [r for r in list_reviews(s3, sfn, store) if r.review_id not in before]
        assert len(pending) == 2
        for review in pending:
            outcome = answer_review(s3, sfn, lam, store, review.review_id, "motorcycle", "ana")
            assert outcome.execution_status == "SUCCEEDED", outcome

        started = start_pipeline(s3, sm, config)
        described = sm.describe_pipeline_execution(PipelineExecutionArn=started.execution_arn)
        deadline = time.monotonic() + 120
        while _prepare_data_status(sm, started.execution_arn) in ("NotStarted", "Executing", "Starting"):
            assert time.monotonic() < deadline, "PrepareData did not end"
            time.sleep(0.2)
        assert _prepare_data_status(sm, started.execution_arn) == "Succeeded"      # not Cached: the labels are new
        sm.stop_pipeline_execution(PipelineExecutionArn=started.execution_arn)
        record = stack.executions.record(started.execution_arn)
        parameters = {p["Name"]: p["Value"] for p in sm.list_pipeline_parameters_for_execution(
            PipelineExecutionArn=started.execution_arn)["PipelineParameters"]}
        labels_set = parameters["HumanLabelsUri"]
        assert "/human-label-sets/sha256-" in labels_set and described["PipelineExecutionStatus"] == "Executing"
        outputs = record.properties["PrepareData"]["ProcessingOutputConfig"]["Outputs"]
        staged = parse_s3_uri(next(o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == "staged"))
        report = json.loads(s3.get_object(Bucket=staged.bucket, Key=f"{staged.key.rstrip('/')}/staging_report.json")[
            "Body"].read())
        human = report["human_labels"]
        assert human["set"] and human["used"] >= 1 and human["skipped_by_reason"].get("in the test split", 0) >= 1
        assert f"s3://{bucket}/{prefix}/incoming/driver-7.png" in [u["image"] for u in human["used_reviews"]]
        assert all("/test/" not in u["image"] for u in human["used_reviews"])
        deadline = time.monotonic() + 60
        while stack.executions.record(started.execution_arn).status not in ("Stopped", "Failed", "Succeeded"):
            assert time.monotonic() < deadline, "the execution did not stop"
            time.sleep(0.2)
