"""Delivers an AWS service event to the targets of the enabled EventBridge rules that match it.

moto's EventBridge stores rules and targets but does not deliver service events (here: CloudWatch
alarm state changes). Matching uses the EventBridge API itself (ListRules, TestEventPattern,
ListTargetsByRule); delivery does what EventBridge does for the target types this project uses:
a Lambda target is invoked with the event, a SageMaker pipeline target gets StartPipelineExecution
with the target's PipelineParameterList. :func:`deliver` is the one place a target is called.
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


def matching_rules(events, event: dict) -> list[dict]:
    """Enabled default-bus rules with an event pattern that matches ``event``."""
    document = json.dumps(event)
    rules = [rule for page in events.get_paginator("list_rules").paginate() for rule in page["Rules"]
             if rule.get("State") == "ENABLED" and rule.get("EventPattern")]
    return [rule for rule in rules
            if events.test_event_pattern(EventPattern=rule["EventPattern"], Event=document)["Result"]]


def deliver(clients, rule_name: str, target: dict, event: dict) -> Delivery:
    """Calls one target with the event as EventBridge would; a failing target is reported, never raised."""
    arn = target["Arn"]
    service = arn.split(":")[2]
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
            payload = target.get("Input") or json.dumps(event)
            response = clients.client("lambda").invoke(FunctionName=arn, Payload=payload.encode())
            return Delivery(rule_name, target["Id"], arn, response["Payload"].read().decode(),
                            not response.get("FunctionError"))
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
