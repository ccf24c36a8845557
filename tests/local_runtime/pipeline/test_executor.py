"""The executor on small real definitions: processing scripts in subprocesses, local S3, caching, failures."""
import json
import textwrap
import threading
import time
from pathlib import Path

import pytest

from local_runtime.pipeline.container_mounts import namespace_prefix
from local_runtime.pipeline.executor import ParameterError, PipelineExecutor, bind_parameters
from local_runtime.pipeline.runners.job_process import StopSignal
from tests.builders import png_bytes, wait_until
from tests.local_runtime.pipeline.conftest import BUCKET

ROLE = "arn:aws:iam::123456789012:role/sm"
PROCESSING_RESOURCES = {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}}


def _script(aws, name: str, body: str) -> str:
    aws.client("s3").put_object(Bucket=BUCKET, Key=f"code/{name}", Body=textwrap.dedent(body).encode())
    return f"s3://{BUCKET}/code/{name}"


def _processing(name, script_uri, outputs=("out",), inputs=(), arguments=(), cache=False, property_files=()):
    step = {"Name": name, "Type": "Processing", "Arguments": {
        "RoleArn": ROLE, "ProcessingResources": PROCESSING_RESOURCES,
        "AppSpecification": {"ImageUri": "img", "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script_uri.rsplit('/', 1)[1]}"],
                             **({"ContainerArguments": list(arguments)} if arguments else {})},
        "ProcessingInputs": [{"InputName": "code", "S3Input": {"S3Uri": script_uri, "LocalPath": "/opt/ml/processing/input/code",
                                                               "S3DataType": "S3Prefix"}}, *inputs],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": o, "S3Output": {
            "S3Uri": f"s3://{BUCKET}/{name}/{o}", "LocalPath": f"/opt/ml/processing/{o}", "S3UploadMode": "EndOfJob"}}
            for o in outputs]}}}
    if cache:
        step["CacheConfig"] = {"Enabled": True, "ExpireAfter": "P1D"}
    if property_files:
        step["PropertyFiles"] = list(property_files)
    return step


def _definition(aws, threshold_default=0.5):
    score = _script(aws, "score.py", """
        import json, sys, time, pathlib
        out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
        (out / "report.json").write_text(json.dumps({"metrics": {"accuracy": {"value": 0.8}}, "t": time.time()}))
    """)
    return {"Version": "2020-12-01",
            "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": threshold_default}],
            "Steps": [
                _processing("Score", score, outputs=("evaluation",), arguments=["--out", "/opt/ml/processing/evaluation"],
                            cache=True, property_files=[{"PropertyFileName": "Report", "OutputName": "evaluation",
                                                         "FilePath": "report.json"}]),
                {"Name": "Check", "Type": "Condition", "Arguments": {
                    "Conditions": [{"Type": "GreaterThanOrEqualTo",
                                    "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Score.PropertyFiles.Report"},
                                                                  "Path": "metrics.accuracy.value"}},
                                    "RightValue": {"Get": "Parameters.Threshold"}}],
                    "IfSteps": [],
                    "ElseSteps": [{"Name": "TooLow", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
                        "On": " ", "Values": ["accuracy", {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Score.PropertyFiles.Report"},
                                                                          "Path": "metrics.accuracy.value"}},
                                              "below", {"Get": "Parameters.Threshold"}]}}}}]}}]}


def test_condition_passes_and_outputs_reach_s3(aws, tmp_path):
    record = PipelineExecutor(_definition(aws), aws, tmp_path).start("p")
    assert record.status == "Succeeded", record.failure
    assert [s.status for s in record.steps] == ["Succeeded", "Succeeded", "Skipped"]
    body = aws.client("s3").get_object(Bucket=BUCKET, Key="Score/evaluation/report.json")["Body"].read()
    assert json.loads(body)["metrics"]["accuracy"]["value"] == 0.8
    assert (tmp_path / "executions" / f"{record.execution_id}.json").exists()


def test_failing_condition_runs_fail_step_with_message(aws, tmp_path):
    record = PipelineExecutor(_definition(aws), aws, tmp_path).start("p", {"Threshold": 0.9})
    assert record.status == "Failed"
    assert record.step("TooLow").failure == "accuracy 0.8 below 0.9"


def test_cached_step_is_skipped_on_rerun(aws, tmp_path):
    executor = PipelineExecutor(_definition(aws), aws, tmp_path)
    first = executor.start("p")
    second = executor.start("p")
    assert first.step("Score").status == "Succeeded" and second.step("Score").status == "Cached"
    assert second.status == "Succeeded"


def test_failing_script_names_step_error_and_logs(aws, tmp_path):
    broken = _script(aws, "broken.py", "raise SystemExit('cannot read the archive')\n")
    definition = {"Steps": [_processing("Prepare", broken), _processing("After", broken, inputs=[{
        "InputName": "x", "S3Input": {"S3Uri": {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"},
                                      "LocalPath": "/opt/ml/processing/input/x", "S3DataType": "S3Prefix"}}])]}
    record = PipelineExecutor(definition, aws, tmp_path).start("p")
    step = record.step("Prepare")
    assert record.status == "Failed" and step.status == "Failed"
    assert "cannot read the archive" in step.failure and step.log_path.endswith("job.log")
    assert "step Prepare failed" in record.failure
    assert record.step("After").status == "Skipped"


def test_missing_input_is_a_named_failure(aws, tmp_path):
    script = _script(aws, "noop.py", "pass\n")
    definition = {"Steps": [_processing("Read", script, inputs=[{"InputName": "data", "S3Input": {
        "S3Uri": f"s3://{BUCKET}/nothing-here/", "LocalPath": "/opt/ml/processing/input/data", "S3DataType": "S3Prefix"}}])]}
    record = PipelineExecutor(definition, aws, tmp_path).start("p")
    assert record.status == "Failed"
    assert f'No S3 objects found under S3 URL "s3://{BUCKET}/nothing-here/" given in input data source' in \
        record.step("Read").failure and f'the role "{ROLE}"' in record.step("Read").failure


def test_unsupported_step_type(aws, tmp_path):
    record = PipelineExecutor({"Steps": [{"Name": "Emr", "Type": "EMR", "Arguments": {}}]}, aws, tmp_path).start("p")
    assert record.status == "Failed" and "not supported by the local runtime" in record.step("Emr").failure


def test_parameters_are_bound_and_checked():
    definition = {"Parameters": [{"Name": "Epochs", "Type": "Integer", "DefaultValue": 3},
                                 {"Name": "Rate", "Type": "Float", "DefaultValue": 0.1}]}
    assert bind_parameters(definition, {"Epochs": "5"}) == {"Epochs": 5, "Rate": 0.1}
    with pytest.raises(ParameterError, match="not declared"):
        bind_parameters(definition, {"Epoch": 5})
    with pytest.raises(ParameterError, match="not a valid Integer"):
        bind_parameters(definition, {"Epochs": "many"})


def _training_step(aws, hyperparameters: dict, max_runtime: int = 600) -> dict:
    s3 = aws.client("s3")
    for channel in ("train", "validation"):
        s3.put_object(Bucket=BUCKET, Key=f"staged/{channel}/bicycle/a.png", Body=png_bytes())
        s3.put_object(Bucket=BUCKET, Key=f"staged/{channel}.lst", Body=b"0\t0\tbicycle/a.png\n")
    channels = [{"ChannelName": name, "ContentType": "application/x-image", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/staged/{path}"}}}
        for name, path in (("train", "train/"), ("validation", "validation/"), ("train_lst", "train.lst"),
                           ("validation_lst", "validation.lst"))]
    return {"Name": "Train", "Type": "Training", "Arguments": {
        "AlgorithmSpecification": {"TrainingImage": "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1",
                                   "TrainingInputMode": "File"},
        "HyperParameters": {"num_classes": "2", "num_training_samples": "1", "image_shape": "3,32,32", "resize": "32",
                            **hyperparameters},
        "InputDataConfig": channels, "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "RoleArn": ROLE, "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime}}}


def test_training_past_max_runtime_is_stopped_and_named(aws, tmp_path):
    definition = {"Steps": [_training_step(aws, {"epochs": "1000"}, max_runtime=1)]}
    record = PipelineExecutor(definition, aws, tmp_path).start("p")
    assert record.status == "Failed" and "exceeded MaxRuntimeInSeconds=1" in record.step("Train").failure


def test_undocumented_hyperparameter_fails_the_training_step_like_the_algorithm(aws, tmp_path):
    definition = {"Steps": [_training_step(aws, {"epochs": "1", "label_smoothing": "0.1"})]}
    record = PipelineExecutor(definition, aws, tmp_path).start("p")
    assert record.status == "Failed"
    assert record.step("Train").failure == ("ClientError: Additional hyperparameters are not allowed "
                                            "('label_smoothing' was unexpected) (caused by ValidationError)")


def test_local_trainer_knobs_reach_the_trainer_through_its_environment(aws, tmp_path):
    definition = {"Steps": [_training_step(aws, {"epochs": "1"})]}
    executor = PipelineExecutor(definition, aws, tmp_path, image_environment={
        "SCONES_LOCAL_TRAINER": json.dumps({"label_smoothing": 0.1, "width": 0})})
    record = executor.start("p")
    assert record.status == "Failed"
    failure = record.step("Train").failure
    assert failure.startswith("LocalSettingsError:") and "width" in failure
    hyperparameters = json.loads(next(tmp_path.rglob("hyperparameters.json")).read_text())
    assert "label_smoothing" not in hyperparameters and "width" not in hyperparameters


def test_invalid_request_field_fails_the_step_naming_the_field(aws, tmp_path):
    definition = {"Parameters": [{"Name": "DataSource", "Type": "String", "DefaultValue": "cifar-100"}],
                  "Steps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": {
                      "ModelPackageGroupName": "exec-tests", "ModelApprovalStatus": "PendingManualApproval",
                      "CustomerMetadataProperties": {"data_source": {"Get": "Parameters.DataSource"}},
                      "InferenceSpecification": {"Containers": [{"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/m.tar.gz"}],
                                                 "SupportedContentTypes": ["image/png"],
                                                 "SupportedResponseMIMETypes": ["application/json"]}}}]}
    record = PipelineExecutor(definition, aws, tmp_path).start("p", {"DataSource": "~/data/x.tar.gz"})
    assert record.status == "Failed"
    failure = record.step("Register").failure
    assert failure.startswith("ClientError: Failed to invoke sagemaker:CreateModelPackage. Error Details: 1 validation "
                              "error detected: Value '~/data/x.tar.gz' at 'customerMetadataProperties.data_source' "
                              "failed to satisfy constraint: Member must satisfy regular expression pattern: ")
    assert not aws.client("sagemaker").list_model_package_groups(NameContains="exec-tests")["ModelPackageGroupSummaryList"]


def test_job_cannot_remove_or_replace_its_mounted_output_dir(aws, tmp_path):
    if namespace_prefix() is None:
        pytest.skip("mount namespaces are unavailable on this machine")
    remover = _script(aws, "remover.py", """
        import os, shutil, sys
        out = sys.argv[1]
        open(os.path.join(out, "inside.txt"), "w").write("writing inside a mount point is fine")
        try:
            shutil.rmtree(out)
        except OSError as exc:
            print("rmtree:", exc)
        os.makedirs(out + ".new", exist_ok=True)
        os.rename(out + ".new", out)
    """)
    definition = {"Steps": [_processing("Replace", remover, arguments=["/opt/ml/processing/out"])]}
    record = PipelineExecutor(definition, aws, tmp_path).start("p")
    step = record.step("Replace")
    assert record.status == "Failed" and "[Errno 16] Device or resource busy" in step.failure
    assert "rmtree: [Errno 16] Device or resource busy" in Path(step.log_path).read_text()


def test_per_execution_outputs_do_not_defeat_caching(aws, tmp_path):
    script = _script(aws, "stage.py", """
        import sys, pathlib
        (pathlib.Path(sys.argv[1]) / "data.txt").write_text("staged")
    """)
    step = _processing("Stage", script, arguments=["/opt/ml/processing/out"], cache=True)
    step["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] = {"Std:Join": {
        "On": "/", "Values": [f"s3://{BUCKET}/staged", {"Get": "Execution.PipelineExecutionId"}]}}
    executor = PipelineExecutor({"Steps": [step]}, aws, tmp_path)
    first = executor.start("p")
    uri = first.properties["Stage"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    second = executor.start("p")
    assert first.step("Stage").status == "Succeeded" and second.step("Stage").status == "Cached"
    assert uri.endswith(first.execution_id)
    assert second.properties["Stage"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == uri


def test_stop_ends_the_running_job_and_the_step_is_stopped_not_failed(aws, tmp_path):
    """StopPipelineExecution stops the running step's job, as SageMaker does, instead of waiting for it."""
    waits = _script(aws, "waits.py", """
        import pathlib, sys, time
        pathlib.Path(sys.argv[1]).write_text("started")
        time.sleep(120)
    """)
    started = tmp_path / "started"
    definition = {"Steps": [_processing("Long", waits, arguments=[str(started)]), _processing("Next", waits)]}
    executor, stop, finished = PipelineExecutor(definition, aws, tmp_path / "run"), StopSignal(), {}
    runner = threading.Thread(target=lambda: finished.update(record=executor.run(executor.prepare("p"), stop)))
    runner.start()
    wait_until(started.exists, 60, "the job to start", interval=0.05)
    began = time.monotonic()
    stop.set()
    runner.join(30)
    record = finished["record"]
    assert time.monotonic() - began < 10
    assert record.status == "Stopped" and record.failure is None
    assert [(s.name, s.status) for s in record.steps] == [("Long", "Stopped"), ("Next", "Skipped")]
