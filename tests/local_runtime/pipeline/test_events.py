"""Pipeline and step status events: AWS's documented shapes, delivered to a user's own rules and their targets."""
import json
import time

import pytest

from local_runtime.execution_records import ExecutionRecord, StepRecord
from local_runtime.pipeline import events
from local_runtime.pipeline.jobs import JobStates
from local_runtime.pipeline.service import ExecutionService
from tests.contracts import load_document

ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc123"


def _record(status="Executing") -> ExecutionRecord:
    return ExecutionRecord("abc123", "p", {}, status, started=1615824193.0, execution_arn=ARN, ended_at=1615824610.0)


def test_execution_events_have_the_documented_shape():
    recorded = load_document("pipeline_execution_status_change")
    described = {"PipelineArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p",
                 "PipelineExecutionDisplayName": "run-1", "PipelineExecutionDescription": "weekly"}
    ended = events.execution_event(_record("Succeeded"), "Succeeded", "Executing", "us-east-1", described)
    assert set(ended) == set(recorded) and set(ended["detail"]) == set(recorded["detail"])
    assert ended["detail-type"] == recorded["detail-type"] and ended["source"] == "aws.sagemaker"
    assert ended["resources"] == [described["PipelineArn"], ARN]
    assert (ended["detail"]["executionStartTime"], ended["detail"]["executionEndTime"]) == ("2021-03-15T16:03:13Z",
                                                                                            "2021-03-15T16:10:10Z")
    started = events.execution_event(_record(), "Executing", None, "us-east-1")
    assert set(started["detail"]) == set(recorded["detail"]) - {"previousPipelineExecutionStatus", "executionEndTime",
                                                                "pipelineExecutionDescription"}
    assert started["detail"]["pipelineArn"] == "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p"


def test_step_events_have_the_documented_shape():
    recorded = load_document("pipeline_step_status_change")
    step = StepRecord("EvaluateModel", "Processing", "Succeeded", started_at=1615824194.0, ended_at=1615824609.0,
                      metadata={"ProcessingJob": {"Arn": "arn:aws:sagemaker:us-east-1:123456789012:processing-job/x"}})
    event = events.step_event(_record(), step, "Succeeded", "Executing", "us-east-1")
    assert set(event) == set(recorded) and set(event["detail"]) == set(recorded["detail"])
    assert event["detail"]["metadata"] == {"processingJob": {"arn": step.metadata["ProcessingJob"]["Arn"]}}
    assert event["detail"]["stepEndTime"] == "2021-03-15T16:10:09Z"
    failed = StepRecord("ChallengerWorseThanChampion", "Fail", "Failed", failure="Champion gate: worse", started_at=1.0,
                        ended_at=2.0, metadata={"Fail": {"ErrorMessage": "Champion gate: worse"}})
    detail = events.step_event(_record(), failed, "Failed", "Executing", "us-east-1")["detail"]
    assert detail["failureReason"] == "Champion gate: worse" and detail["metadata"] == {
        "fail": {"errorMessage": "Champion gate: worse"}}
    cached = StepRecord("TrainModel", "Training", "Cached", started_at=1.0, ended_at=2.0, cache_source_arn="arn:old")
    detail = events.step_event(_record(), cached, "Succeeded", "Executing", "us-east-1")["detail"]
    assert detail["cacheHitResult"] == {"sourcePipelineExecutionArn": "arn:old"} and "failureReason" not in detail


def test_each_change_is_sent_once_and_a_step_starts_before_it_executes():
    sent = []
    publisher = events.PipelineEvents(_NoClients(), publish=lambda clients, event: sent.append(event))
    record = _record()
    step = StepRecord("Check", "Condition", "Executing", started_at=1.0)
    publisher.execution(record)
    publisher.step(record, step)
    step.progress = "still going"
    publisher.step(record, step)              # a progress report: no change
    step.status, step.ended_at = "Succeeded", 2.0
    publisher.step(record, step)
    publisher.step(record, StepRecord("Skipped", "Fail", "Skipped"))
    record.status = "Succeeded"
    publisher.execution(record)
    publisher.execution(record)
    assert publisher.wait_idle()
    publisher.close()
    assert [(e["detail"].get("stepName", "-"), e["detail"].get("currentStepStatus") or
             e["detail"]["currentPipelineExecutionStatus"]) for e in sent] == [
        ("-", "Executing"), ("Check", "Starting"), ("Check", "Executing"), ("Check", "Succeeded"), ("-", "Succeeded")]
    assert [e["detail"].get("previousStepStatus") for e in sent[1:4]] == [None, "Starting", "Executing"]


class _NoClients:
    region = "us-east-1"

    def client(self, service):
        raise RuntimeError("no AWS in this test")


def _gate_definition() -> str:
    """Two steps and no job: a condition on a parameter, and the Fail step a worse challenger meets."""
    return json.dumps({"Version": "2020-12-01", "Parameters": [{"Name": "Verdict", "Type": "String",
                                                                "DefaultValue": "fail"}],
                       "Steps": [{"Name": "ChampionGate", "Type": "Condition", "Arguments": {
                           "Conditions": [{"Type": "Equals", "LeftValue": {"Get": "Parameters.Verdict"},
                                           "RightValue": "pass"}],
                           "IfSteps": [],
                           "ElseSteps": [{"Name": "ChallengerWorseThanChampion", "Type": "Fail",
                                          "Arguments": {"ErrorMessage": "Champion gate: accuracy 0.0 vs 1.0"}}]}}]})


def _receive_all(sqs, url: str, expected: int, timeout: float = 20.0) -> list[dict]:
    bodies, deadline = [], time.monotonic() + timeout
    while len(bodies) < expected and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


@pytest.fixture
def user_rules(aws):
    """A user's own rules: execution events to an SQS queue, failed steps to an SNS topic with an SQS subscriber."""
    sqs, sns, bus = aws.client("sqs"), aws.client("sns"), aws.client("events")
    queues = {}
    for name in ("executions", "failed-steps"):
        url = sqs.create_queue(QueueName=f"my-{name}")["QueueUrl"]
        queues[name] = (url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    topic = sns.create_topic(Name="my-failed-steps")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queues["failed-steps"][1],
                  Attributes={"RawMessageDelivery": "true"})
    bus.put_rule(Name="my-executions", State="ENABLED", EventPattern=json.dumps({
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"]}))
    bus.put_targets(Rule="my-executions", Targets=[{"Id": "q", "Arn": queues["executions"][1]}])
    bus.put_rule(Name="my-failed-steps", State="ENABLED", EventPattern=json.dumps({
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Building Pipeline Execution Step Status Change"],
        "detail": {"currentStepStatus": ["Failed"]}}))
    bus.put_targets(Rule="my-failed-steps", Targets=[{"Id": "t", "Arn": topic}])
    yield {name: url for name, (url, _) in queues.items()}
    for rule in ("my-executions", "my-failed-steps"):
        bus.remove_targets(Rule=rule, Ids=["q" if rule == "my-executions" else "t"])
        bus.delete_rule(Name=rule)


def test_a_users_rules_receive_the_execution_and_step_events_through_sqs_and_sns(aws, tmp_path, user_rules):
    service = ExecutionService(aws, tmp_path, job_states=JobStates(lambda *a: "", lambda *a: None, lambda *a: None,
                                                                            lambda *a: None))
    try:
        service.submit(ARN, "p", _gate_definition(), {})
        assert service.wait_idle(30)
        assert service.events.wait_idle(30)
    finally:
        service.close()
    assert service.record(ARN).status == "Failed"
    sqs = aws.client("sqs")
    executions = _receive_all(sqs, user_rules["executions"], 2)
    assert [(e["detail"]["currentPipelineExecutionStatus"], e["detail"].get("previousPipelineExecutionStatus"))
            for e in executions] == [("Executing", None), ("Failed", "Executing")]
    assert all(e["detail"]["pipelineExecutionArn"] == ARN for e in executions)
    failed_steps = _receive_all(sqs, user_rules["failed-steps"], 1)
    assert [e["detail"]["stepName"] for e in failed_steps] == ["ChallengerWorseThanChampion"]
    assert failed_steps[0]["detail"]["failureReason"] == "Champion gate: accuracy 0.0 vs 1.0"
