"""The template's pipeline notifications on the local stack: the topic and its two rules exist as the template declares
them, and a failed execution and a challenger stopped at the gate reach the topic's subscribers."""
import json
import time
from types import SimpleNamespace

import pytest

from local_runtime.aws import local_aws
from local_runtime.event_targets import publish
from local_runtime.execution_records import ExecutionRecord, StepRecord
from local_runtime.pipeline.events import execution_event, step_event
from local_runtime.provision import provision
from local_runtime.settings import load_local_config


@pytest.fixture(scope="module")
def local_stack():
    """The local AWS APIs with what the template creates on them (no endpoint server: nothing here serves)."""
    config = load_local_config(environ={})
    with local_aws(config.project.region) as aws:
        provision(aws, config)
        yield SimpleNamespace(aws=aws, config=config, client=aws.client)


def _pipeline_record(stack, execution_id: str) -> ExecutionRecord:
    config = stack.config
    arn = f"arn:aws:sagemaker:{config.project.region}:123456789012:pipeline/{config.pipeline.name}/execution/{execution_id}"
    return ExecutionRecord(execution_id, config.pipeline.name, {}, "Failed", execution_arn=arn, ended_at=time.time())


def test_failed_executions_and_stopped_challengers_reach_the_notifications_topic(local_stack):
    sns, sqs, bus = local_stack.client("sns"), local_stack.client("sqs"), local_stack.client("events")
    project = local_stack.config.project.name
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"]
                 if t["TopicArn"].endswith(f":{project}-pipeline-notifications"))
    rules = {r["Name"]: r for r in bus.list_rules(NamePrefix=project)["Rules"]}
    for name in (f"{project}-PipelineFailedRule", f"{project}-ChallengerStoppedRule"):
        assert rules[name]["State"] == "ENABLED"
        assert bus.list_targets_by_rule(Rule=name)["Targets"][0]["Arn"] == topic
    url = sqs.create_queue(QueueName="team-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})

    record = _pipeline_record(local_stack, "gate01")
    stopped = StepRecord("ChallengerWorseThanChampion", "Fail", "Failed", failure="Champion gate: accuracy 0.4750 vs 0.9400",
                         started_at=time.time(), ended_at=time.time())
    region = local_stack.config.project.region
    published = {
        "failed": publish(local_stack.aws, execution_event(record, "Failed", "Executing", region)),
        "stopped": publish(local_stack.aws, step_event(record, stopped, "Failed", "Executing", region)),
        "succeeded": publish(local_stack.aws, execution_event(_pipeline_record(local_stack, "ok01"), "Succeeded",
                                                              "Executing", region)),
        "other step": publish(local_stack.aws, step_event(record, StepRecord("TrainModel", "Training", "Failed",
                                                                             failure="x"), "Failed", None, region)),
    }
    assert [d.rule for d in published["failed"]] == [f"{project}-PipelineFailedRule"]
    assert [d.rule for d in published["stopped"]] == [f"{project}-ChallengerStoppedRule"]
    assert published["succeeded"] == [] and published["other step"] == []
    assert all(d.ok for d in published["failed"] + published["stopped"])
    bodies = []
    for _ in range(10):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        bodies += [json.loads(m["Body"]) for m in messages]
        if len(bodies) >= 2:
            break
    assert sorted(b["detail-type"] for b in bodies) == ["SageMaker Model Building Pipeline Execution Status Change",
                                                        "SageMaker Model Building Pipeline Execution Step Status Change"]
    gate = next(b for b in bodies if "stepName" in b["detail"])
    assert gate["detail"]["failureReason"] == "Champion gate: accuracy 0.4750 vs 0.9400"
