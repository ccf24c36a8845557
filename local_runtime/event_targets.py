"""Delivers an AWS service event to the targets of the enabled EventBridge rules that match it.

moto's EventBridge stores rules and targets but does not deliver service events (here: CloudWatch
alarm state changes and SageMaker pipeline status changes). Matching uses the EventBridge API
itself (ListRules, TestEventPattern, ListTargetsByRule); delivery does what EventBridge does for the
target types this project and its users use: a Lambda target is invoked with the event, a SageMaker
pipeline target gets StartPipelineExecution with the target's PipelineParameterList, an SQS target
gets the event as a message body (SendMessage; FIFO queues with the target's MessageGroupId) and
an SNS target as a message (Publish), which SNS hands on to the topic's subscriptions. A target's
``Input`` (constant JSON) or ``InputPath`` replaces the event as EventBridge does; an
``InputTransformer`` is refused by name. :func:`deliver` is the one place a target is called.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from botocore.exceptions import ClientError

log = logging.getLogger("local_runtime.events")


@dataclass(frozen=True)
class Delivery:
    rule: str
    target_id: str
    arn: str
    result: str        # the started execution's ARN, the Lambda's answer, or what went wrong
    ok: bool


def _may_match(pattern_text: str, event: dict) -> bool:
    """False when the pattern's plain ``source`` or ``detail-type`` values exclude the event: no need to ask
    TestEventPattern (a pipeline execution sends dozens of events; most rules are about something else)."""
    try:
        pattern = json.loads(pattern_text)
    except ValueError:
        return True
    for key in ("source", "detail-type"):
        values = pattern.get(key) if isinstance(pattern, dict) else None
        if isinstance(values, list) and values and all(isinstance(v, str) for v in values) \
                and event.get(key) not in values:
            return False
    return True


def matching_rules(events, event: dict) -> list[dict]:
    """Enabled default-bus rules with an event pattern that matches ``event``."""
    document = json.dumps(event)
    rules = [rule for page in events.get_paginator("list_rules").paginate() for rule in page["Rules"]
             if rule.get("State") == "ENABLED" and rule.get("EventPattern") and _may_match(rule["EventPattern"], event)]
    return [rule for rule in rules
            if events.test_event_pattern(EventPattern=rule["EventPattern"], Event=document)["Result"]]


def _input_path(event: dict, path: str):
    """A target's InputPath (``$`` or ``$.a.b``): the part of the event the target receives."""
    node = event
    for key in [k for k in path.lstrip("$").split(".") if k]:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def target_input(target: dict, event: dict) -> str:
    """What EventBridge sends a target: the event, or the target's Input / InputPath instead."""
    if target.get("InputTransformer"):
        raise ValueError("InputTransformer targets are not delivered locally")
    if target.get("Input"):
        return target["Input"]
    if target.get("InputPath"):
        return json.dumps(_input_path(event, target["InputPath"]))
    return json.dumps(event)


def deliver(clients, rule_name: str, target: dict, event: dict) -> Delivery:
    """Calls one target with the event as EventBridge would; a failing target is reported, never raised."""
    arn = target["Arn"]
    service = arn.split(":")[2]
    if target.get("InputTransformer"):
        return Delivery(rule_name, target["Id"], arn, "InputTransformer targets are not delivered locally", False)
    try:
        if service == "sagemaker" and ":pipeline/" in arn:
            parameters = target.get("SageMakerPipelineParameters", {}).get("PipelineParameterList", [])
            when = event.get("time", "").replace("-", "").replace(":", "").replace("T", "")[:12]
            started = clients.client("sagemaker").start_pipeline_execution(
                PipelineName=arn.rsplit("/", 1)[1], PipelineParameters=parameters,
                PipelineExecutionDisplayName=f"{rule_name}-{when}"[:82],
                PipelineExecutionDescription=f"started by EventBridge rule {rule_name} ({event.get('detail-type')})")
            return Delivery(rule_name, target["Id"], arn, started["PipelineExecutionArn"], True)
        if service == "lambda":
            payload = target_input(target, event)
            response = clients.client("lambda").invoke(FunctionName=arn, Payload=payload.encode())
            return Delivery(rule_name, target["Id"], arn, response["Payload"].read().decode(),
                            not response.get("FunctionError"))
        if service == "sqs":
            sqs = clients.client("sqs")
            account, queue = arn.split(":")[4], arn.split(":")[5]
            url = sqs.get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=account)["QueueUrl"]
            fifo = {"MessageGroupId": target.get("SqsParameters", {}).get("MessageGroupId", rule_name),
                    "MessageDeduplicationId": event.get("id", "")} if queue.endswith(".fifo") else {}
            sent = sqs.send_message(QueueUrl=url, MessageBody=target_input(target, event), **fifo)
            return Delivery(rule_name, target["Id"], arn, sent["MessageId"], True)
        if service == "sns":
            published = clients.client("sns").publish(TopicArn=arn, Message=target_input(target, event))
            return Delivery(rule_name, target["Id"], arn, published["MessageId"], True)
        return Delivery(rule_name, target["Id"], arn, f"{service} targets are not delivered locally", False)
    except ClientError as exc:     # like EventBridge, a failing target never stops the others
        return Delivery(rule_name, target["Id"], arn,
                        f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}", False)


def publish(clients, event: dict) -> list[Delivery]:
    """Delivers ``event`` to every target of every matching rule; returns what happened per target."""
    events = clients.client("events")
    deliveries = []
    for rule in matching_rules(events, event):
        for target in events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", []):
            delivery = deliver(clients, rule["Name"], target, event)
            log.log(logging.INFO if delivery.ok else logging.WARNING, "%s -> rule %s -> %s: %s",
                    event.get("detail-type"), rule["Name"], delivery.arn, delivery.result)
            deliveries.append(delivery)
    return deliveries
