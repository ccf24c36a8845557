"""buildspec.yml runs locally against serve: the build phase writes the definition and upserts and starts
the pipeline, as CodeBuild does on AWS."""
import json
import shutil

import pytest

from local_runtime.buildspec import BuildspecError, load_buildspec, local_command, run_buildspec
from local_runtime.provision import REPO_ROOT
from local_runtime.serve import ENV_FILE, NotServingError
from tests.builders import make_cifar_archive
from tests.local_stack import Serving

pytestmark = pytest.mark.e2e      # starts serve, a subprocess stack or a whole pipeline


def test_the_build_phase_upserts_and_starts_the_pipeline(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(REPO_ROOT / "buildspec.yml", source / "buildspec.yml")
    archive = make_cifar_archive(tmp_path / "cifar-100-python.tar.gz")
    with Serving(tmp_path / "run") as serving:
        result = run_buildspec(source / "buildspec.yml", serving.run_dir / ENV_FILE, ("build",),
                               {"SCONES__DATA__SOURCE": str(archive), "SCONES__TRAINING__HYPERPARAMETERS__EPOCHS": "1"},
                               source_dir=source)
        sm = serving.stack.client("sagemaker")
        executions = sm.list_pipeline_executions(PipelineName=serving.config.pipeline.name)["PipelineExecutionSummaries"]
        for execution in executions:
            if execution["PipelineExecutionStatus"] == "Executing":
                sm.stop_pipeline_execution(PipelineExecutionArn=execution["PipelineExecutionArn"])
        assert serving.stack.executions.wait_idle(300)
        stored = json.loads(sm.describe_pipeline(PipelineName=serving.config.pipeline.name)["PipelineDefinition"])
        assert json.loads((source / "pipeline-definition.json").read_text()) == stored     # the artifact: what ran
        for execution in executions:       # a running step's job is stopped with it, as SageMaker stops it
            arn = execution["PipelineExecutionArn"]
            assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Stopped"
            for step in sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]:
                if step["StepStatus"] == "Stopped" and "TrainingJob" in step.get("Metadata", {}):
                    job = sm.describe_training_job(TrainingJobName=step["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[1])
                    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert result.succeeded, [(p.name, p.exit_code) for p in result.phases]
    assert [(p.name, p.skipped) for p in result.phases] == [("install", True), ("pre_build", True), ("build", False)]
    assert len(executions) == 1


def test_install_is_adapted_and_a_missing_stack_is_named(tmp_path):
    spec = load_buildspec(REPO_ROOT / "buildspec.yml")
    assert set(spec["phases"]) >= {"install", "build"}
    assert local_command(".venv/bin/run-pipeline --x", tmp_path) == f"{tmp_path}/run-pipeline --x"
    with pytest.raises(NotServingError, match="scones-local serve"):
        run_buildspec(REPO_ROOT / "buildspec.yml", tmp_path / ENV_FILE, ("build",))
    (tmp_path / "bad.yml").write_text("version: 0.1\n")
    with pytest.raises(BuildspecError, match="version 0.2"):
        load_buildspec(tmp_path / "bad.yml")
