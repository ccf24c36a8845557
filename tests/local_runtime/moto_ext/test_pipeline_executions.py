"""With ``serve`` up, ``run-pipeline --wait`` really runs the pipeline: steps, jobs, logs and the registry
show it through the APIs, in botocore's shapes; failures name the step; executions survive a restart."""
import inspect

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from pipelines.scones import cli
from tests.builders import FINE_NAMES, make_cifar_archive
from tests.local_stack import Serving

pytestmark = pytest.mark.e2e      # starts serve, a subprocess stack or a whole pipeline

EVERY_STEP = {"PrepareData", "TrainModel", "CreateModel", "BatchTransformTest", "EvaluateModel", "CheckAccuracy",
              "FindRegisteredModel", "CheckNewModel", "FindChampion", "ScoreChampion", "CompareWithChampion",
              "ChampionGate", "RegisterModel", "DeployModel"}
MODEL = botocore.session.get_session().get_service_model("sagemaker")


def assert_shape(response: dict, operation: str) -> None:
    """The parsed response fits botocore's output shape, enums included."""
    shape = MODEL.operation_model(operation).output_shape
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    report = ParamValidator().validate(body, shape)
    assert not report.has_errors(), report.generate_report()
    _check_enums(body, shape)


def _check_enums(value, shape) -> None:
    if shape.type_name == "structure":
        for key, item in value.items():
            _check_enums(item, shape.members[key])
    elif shape.type_name == "list":
        for item in value:
            _check_enums(item, shape.member)
    elif shape.type_name == "string" and shape.enum:
        assert value in shape.enum, f"{value!r} not in {shape.name} {shape.enum}"


def test_moto_still_fakes_executions_and_lacks_the_step_actions():
    from moto.sagemaker import models, responses

    source = inspect.getsource(responses.SageMakerResponse)
    for action in ("list_pipeline_execution_steps", "stop_pipeline_execution", "retry_pipeline_execution"):
        assert f"def {action}(" not in source, f"moto implements {action} now: revisit moto_ext/pipeline_executions.py"
    assert 'self.pipeline_execution_status = "Succeeded"' in inspect.getsource(models.FakePipelineExecution.__init__)
    for attribute in ("pipelines", "start_pipeline_execution", "describe_pipeline_execution"):
        assert hasattr(models.SageMakerModelBackend, attribute) or attribute == "pipelines", attribute
    assert "self.pipeline_executions" in inspect.getsource(models.FakePipeline.__init__)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("api-path")
    good = make_cifar_archive(root / "cifar-100-python.tar.gz", per_class_train=30, per_class_test=10)
    names = list(FINE_NAMES)
    names[48] = "scooter"
    broken = make_cifar_archive(root / "no-motorcycles.tar.gz", fine_names=names)
    run_dir = root / "run"
    with Serving(run_dir) as serving:
        sm = serving.stack.client("sagemaker")
        group = serving.config.registry.model_package_group
        codes = {"ok": cli.run_pipeline(["--environment", "local", "--data-source", str(good), "--epochs", "2",
                                         "--accuracy-threshold", "0.5", "--wait", "--poll-seconds", "0.2"])}
        packages_after_ok = sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
        codes["broken"] = cli.run_pipeline(["--environment", "local", "--data-source", str(broken), "--epochs", "2",
                                            "--wait", "--poll-seconds", "0.2"])
        executions = sm.list_pipeline_executions(PipelineName=serving.config.pipeline.name)
        yield serving, codes, executions, packages_after_ok, run_dir


def _arns(executions):
    newest_first = executions["PipelineExecutionSummaries"]
    return newest_first[1]["PipelineExecutionArn"], newest_first[0]["PipelineExecutionArn"]


def test_wait_exits_0_after_every_step_ran_and_lists_them_in_botocore_shapes(served):
    serving, codes, executions, _, _ = served
    assert codes["ok"] == 0
    assert_shape(executions, "ListPipelineExecutions")
    ok, _ = _arns(executions)
    sm = serving.stack.client("sagemaker")
    described = sm.describe_pipeline_execution(PipelineExecutionArn=ok)
    assert described["PipelineExecutionStatus"] == "Succeeded"
    assert_shape(described, "DescribePipelineExecution")
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=ok)
    assert_shape(steps, "ListPipelineExecutionSteps")
    by_name = {s["StepName"]: s for s in steps["PipelineExecutionSteps"]}
    assert set(by_name) == EVERY_STEP and {s["StepStatus"] for s in by_name.values()} == {"Succeeded"}
    assert by_name["CheckAccuracy"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    assert by_name["RegisterModel"]["Metadata"]["RegisterModel"]["Arn"].endswith("/1")
    assert {p["Name"] for p in by_name["DeployModel"]["Metadata"]["Lambda"]["OutputParameters"]} >= {"status"}
    train = by_name["TrainModel"]
    assert (train["EndTime"] - train["StartTime"]).total_seconds() > 1      # it really trained


def test_the_training_job_is_completed_with_metrics_artifacts_and_logs(served):
    serving, _, executions, _, _ = served
    ok, _ = _arns(executions)
    sm, logs = serving.stack.client("sagemaker"), serving.stack.client("logs")
    steps = {s["StepName"]: s for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=ok)["PipelineExecutionSteps"]}
    name = steps["TrainModel"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[1]
    job = sm.describe_training_job(TrainingJobName=name)
    assert_shape(job, "DescribeTrainingJob")
    assert job["TrainingJobStatus"] == "Completed" and job["SecondaryStatus"] == "Completed"
    assert {m["MetricName"] for m in job["FinalMetricDataList"]} == {"train:accuracy", "validation:accuracy"}
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"{name}/output/model.tar.gz")
    assert name in [j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]]
    processing = steps["EvaluateModel"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1]
    assert sm.describe_processing_job(ProcessingJobName=processing)["ProcessingJobStatus"] == "Completed"
    transform = steps["BatchTransformTest"]["Metadata"]["TransformJob"]["Arn"].rsplit("/", 1)[1]
    assert sm.describe_transform_job(TransformJobName=transform)["TransformJobStatus"] == "Completed"
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name)["logStreams"]
    assert [s["logStreamName"].startswith(f"{name}/algo-1-") for s in streams] == [True]
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=streams[0]["logStreamName"],
                                 startFromHead=True)["events"]
    assert any("Epoch[1] Validation-accuracy=" in e["message"] for e in events)     # the last of 2 epochs
    assert logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs",
                                     logStreamNamePrefix=processing)["logStreams"]


def test_exactly_one_package_version_per_successful_execution(served):
    _, _, _, packages, _ = served
    assert [p["ModelPackageVersion"] for p in packages] == [1]


def test_a_failing_execution_exits_non_zero_naming_the_step(served, capsys):
    serving, codes, executions, _, _ = served
    assert codes["broken"] == 1
    _, broken = _arns(executions)
    sm = serving.stack.client("sagemaker")
    described = sm.describe_pipeline_execution(PipelineExecutionArn=broken)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == "Step failure: One or multiple steps failed."     # SageMaker's words
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=broken)["PipelineExecutionSteps"]
    assert [(s["StepName"], s["StepStatus"]) for s in steps] == [("PrepareData", "Failed")]
    assert "MissingClassesError" in steps[0]["FailureReason"]
    processing = steps[0]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1]
    job = sm.describe_processing_job(ProcessingJobName=processing)
    assert job["ProcessingJobStatus"] == "Failed" and "MissingClassesError" in job["FailureReason"]


def test_retry_and_stop_follow_the_execution_status(served):
    serving, _, executions, _, _ = served
    ok, broken = _arns(executions)
    sm = serving.stack.client("sagemaker")
    with pytest.raises(ClientError, match="ConflictException"):
        sm.retry_pipeline_execution(PipelineExecutionArn=ok)
    with pytest.raises(ClientError, match="ConflictException"):
        sm.stop_pipeline_execution(PipelineExecutionArn=ok)
    sm.retry_pipeline_execution(PipelineExecutionArn=broken)
    assert serving.stack.executions.wait_idle(120)
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=broken)["PipelineExecutionSteps"]
    assert [(s["StepName"], s["StepStatus"], s["AttemptCount"]) for s in steps] == [("PrepareData", "Failed", 2)]


def test_undeclared_start_parameters_are_refused_as_on_aws(served):
    serving, *_ = served
    with pytest.raises(ClientError, match="not declared"):
        serving.stack.client("sagemaker").start_pipeline_execution(
            PipelineName=serving.config.pipeline.name, PipelineParameters=[{"Name": "Nope", "Value": "1"}])
