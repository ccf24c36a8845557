"""SageMaker SDK code runs against ``scones-local serve`` with nothing but ``local-aws.env``: the SDK's default
bucket comes from the SDK config file serve writes (no STS call to AWS's address), and a pipeline is created,
started and waited on through the SDK's own Pipeline object."""
import pytest

from local_runtime.serve import ENV_FILE, read_env_file
from tests.local_stack import Serving

pytestmark = pytest.mark.e2e


def test_the_sdks_pipeline_object_starts_and_waits_on_an_execution(tmp_path, monkeypatch):
    with Serving(tmp_path / "run") as serving:
        for key, value in read_env_file(tmp_path / "run" / ENV_FILE).items():
            monkeypatch.setenv(key, value)
        import boto3

        from pipelines.scones.sdk import ConditionEquals, ConditionStep, ParameterString, Pipeline, PipelineSession

        boto3.DEFAULT_SESSION = None
        session = PipelineSession(boto_session=boto3.Session())      # no default_bucket: the SDK's config names it
        assert session.default_bucket() == serving.config.storage.bucket
        flag = ParameterString(name="Flag", default_value="on")
        check = ConditionStep(name="CheckFlag", conditions=[ConditionEquals(left=flag, right="on")],
                              if_steps=[], else_steps=[])
        pipeline = Pipeline(name="SdkPipeline", parameters=[flag], steps=[check], sagemaker_session=session)
        pipeline.upsert(role_arn=serving.stack.resources.role_arn)
        execution = pipeline.start()
        execution.wait(delay=1, max_attempts=60)
        assert execution.describe()["PipelineExecutionStatus"] == "Succeeded"
        steps = execution.list_steps()
        assert [(s["StepName"], s["StepStatus"]) for s in steps] == [("CheckFlag", "Succeeded")]
