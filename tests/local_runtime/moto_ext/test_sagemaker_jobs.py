"""Jobs in the local SageMaker carry the executor's real state: canary for moto, and the state as the API shows it."""
import inspect

from local_runtime.moto_ext import sagemaker_jobs

ARGUMENTS = {
    "AlgorithmSpecification": {"TrainingImage": "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1",
                               "TrainingInputMode": "File"},
    "RoleArn": "arn:aws:iam::123456789012:role/r", "OutputDataConfig": {"S3OutputPath": "s3://b/models"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 60}, "HyperParameters": {"epochs": "2"},
    "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": "s3://b/train/"}}}]}


def test_moto_still_completes_jobs_at_creation_with_the_attributes_we_set():
    from moto.sagemaker import models

    training = inspect.getsource(models.FakeTrainingJob.__init__)
    assert 'self.training_job_status = "Completed"' in training, "moto models job progress now: revisit sagemaker_jobs"
    for attribute in ("secondary_status", "secondary_status_transitions", "final_metric_data_list", "model_artifacts",
                      "training_start_time", "training_end_time"):
        assert f"self.{attribute}" in training, attribute
    assert "self.processing_job_status" in inspect.getsource(models.FakeProcessingJob.__init__)
    assert "self.transform_job_status" in inspect.getsource(models.FakeTransformJob.__init__)
    backend = inspect.getsource(models.SageMakerModelBackend.__init__)
    for store in ("training_jobs", "processing_jobs", "transform_jobs"):
        assert f"self.{store}" in backend, store
    assert "for key, value in self.__dict__.items()" in inspect.getsource(models.BaseObject.gen_response_object)


def test_a_training_job_goes_in_progress_then_completed_through_the_api(local_stack):
    sm, region = local_stack.client("sagemaker"), local_stack.aws.region
    arn = f"arn:aws:sagemaker:{region}:123456789012:training-job/canary-train"
    sagemaker_jobs.job_started(region, "Training", "canary-train", arn, ARGUMENTS)
    running = sm.describe_training_job(TrainingJobName="canary-train")
    assert (running["TrainingJobStatus"], running["SecondaryStatus"], running["TrainingJobArn"]) == \
        ("InProgress", "Training", arn)
    assert "MetricDefinitions" not in running["AlgorithmSpecification"] and running.get("FinalMetricDataList", []) == []
    sagemaker_jobs.job_finished(region, "Training", "canary-train", {
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/models/canary-train/output/model.tar.gz"},
        "FinalMetricDataList": [{"MetricName": "validation:accuracy", "Value": 0.9}], "TrainingTimeInSeconds": 3.2})
    done = sm.describe_training_job(TrainingJobName="canary-train")
    assert (done["TrainingJobStatus"], done["SecondaryStatus"]) == ("Completed", "Completed")
    assert [m["MetricName"] for m in done["FinalMetricDataList"]] == ["validation:accuracy"]
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]] == ["Starting", "Training", "Uploading", "Completed"]
    assert done["TrainingJobStatus"] == next(j["TrainingJobStatus"] for j in sm.list_training_jobs()["TrainingJobSummaries"]
                                             if j["TrainingJobName"] == "canary-train")


def test_a_failed_processing_job_names_its_reason(local_stack):
    sm, region = local_stack.client("sagemaker"), local_stack.aws.region
    sagemaker_jobs.job_started(region, "Processing", "canary-proc", "arn:aws:sagemaker:us-east-1:123456789012:"
                               "processing-job/canary-proc", {"AppSpecification": {"ImageUri": "img"},
                                                              "RoleArn": ARGUMENTS["RoleArn"]})
    assert sm.describe_processing_job(ProcessingJobName="canary-proc")["ProcessingJobStatus"] == "InProgress"
    sagemaker_jobs.job_failed(region, "Processing", "canary-proc", "script exited with 1: boom")
    failed = sm.describe_processing_job(ProcessingJobName="canary-proc")
    assert failed["ProcessingJobStatus"] == "Failed" and failed["FailureReason"] == "script exited with 1: boom"
