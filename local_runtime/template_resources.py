"""Resources read from the SAM template itself, so the local stack creates exactly what it declares.

The CloudWatch alarms (deployment guardrails and drift), the retraining schedule and drift rules (with the
start-retraining Lambda they target) and the pipeline notification rules (with their SNS topic) are taken from
``inference_workflow/template.yaml`` and resolved with the template parameters the configuration
gives: ``Ref`` (parameters, pseudo parameters, alarms, SNS topics), ``Fn::Sub``, ``Fn::GetAtt …Arn``
of an alarm or a function, ``Fn::Join`` and the condition functions ``Fn::If``, ``Fn::Equals``, ``Fn::Not``.
Anything else in those resources is a :class:`TemplateResolveError`.
"""
from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from local_runtime.errors import LocalRuntimeError
from scones_common.config import SconesConfig

TEMPLATE = Path(__file__).resolve().parents[1] / "inference_workflow" / "template.yaml"
ALARM_KEYS = ("AlarmName", "AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic", "Period",
              "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "Unit",
              "ExtendedStatistic")
NUMERIC = {"Period": int, "EvaluationPeriods": int, "DatapointsToAlarm": int, "Threshold": float}


class TemplateResolveError(LocalRuntimeError, ValueError):
    """The template uses an intrinsic function or reference the local stack cannot resolve."""


class _CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):     # libyaml's parser when PyYAML has it
    pass


def _intrinsic(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict:
    """The template as data; parsed once per content (a stack start reads it for several kinds of resource)."""
    return copy.deepcopy(_parsed(path.read_text()))


@functools.lru_cache(maxsize=4)
def _parsed(text: str) -> dict:
    return yaml.load(text, Loader=_CfnLoader)


@dataclass
class Resolver:
    template: dict
    parameters: dict[str, str]
    region: str
    account: str

    def alarm_name(self, logical_id: str) -> str:
        return self.resolve(self.template["Resources"][logical_id]["Properties"]["AlarmName"])

    def ref(self, name: str) -> str:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": self.account, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.template["Resources"].get(name)
        if resource and resource["Type"] == "AWS::CloudWatch::Alarm":
            return self.alarm_name(name)
        if resource and resource["Type"] == "AWS::SNS::Topic":     # Ref of a topic is its ARN
            topic = self.resolve(resource["Properties"]["TopicName"])
            return f"arn:aws:sns:{self.region}:{self.account}:{topic}"
        default = self.template.get("Parameters", {}).get(name, {}).get("Default")
        if default is not None:
            return str(default)
        raise TemplateResolveError(f"the local stack cannot resolve Ref {name}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), arg)
            if key == "Fn::Join":
                return arg[0].join(str(self.resolve(v)) for v in arg[1])
            if key == "Fn::GetAtt":
                return self._get_att(*arg)
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
            if key == "Fn::Not":
                return not self.resolve(arg[0])
        return {k: self.resolve(v) for k, v in value.items()}

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions", {})
        if name not in conditions:
            raise TemplateResolveError(f"the template has no condition {name}")
        return bool(self.resolve(conditions[name]))

    def _sub(self, name: str) -> str:
        return self._get_att(*name.split(".", 1)) if "." in name else self.ref(name)

    def _get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.template["Resources"].get(logical_id, {})
        if resource.get("Type") == "AWS::CloudWatch::Alarm" and attribute == "Arn":
            return f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{self.alarm_name(logical_id)}"
        if resource.get("Type") == "AWS::Serverless::Function" and attribute == "Arn":
            name = self.resolve(resource["Properties"]["FunctionName"])
            return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        if resource.get("Type") == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:aws:iam::{self.account}:role/{logical_id}"
        if resource.get("Type") == "AWS::SQS::Queue" and attribute in ("Arn", "QueueName"):
            name = self.resolve(resource["Properties"]["QueueName"])
            return name if attribute == "QueueName" else f"arn:aws:sqs:{self.region}:{self.account}:{name}"
        raise TemplateResolveError(f"the local stack cannot resolve GetAtt {logical_id}.{attribute}")


def alarms(resolver: Resolver) -> dict[str, dict]:
    """Logical id → PutMetricAlarm arguments for every AWS::CloudWatch::Alarm in the template."""
    found = {}
    for logical_id, resource in resolver.template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        properties = resolver.resolve(resource["Properties"])
        request = {key: properties[key] for key in ALARM_KEYS if key in properties}
        for key, kind in NUMERIC.items():
            if key in request:
                request[key] = kind(request[key])
        found[logical_id] = request
    return found


def event_rules(resolver: Resolver, logical_ids: tuple[str, ...]) -> dict[str, dict]:
    """Logical id → {'EventPattern' or 'ScheduleExpression', 'State', 'Description', 'Targets'} of the named
    AWS::Events::Rule resources."""
    return {logical_id: resolver.resolve(resolver.template["Resources"][logical_id]["Properties"])
            for logical_id in logical_ids}


def resolver_for(config: SconesConfig) -> Resolver:
    """The template with the parameters ``sam deploy`` would get for this configuration."""
    from inference_workflow.template_parameters import template_parameters
    from local_runtime.aws import ACCOUNT_ID

    return Resolver(load_template(), template_parameters(config), config.project.region, ACCOUNT_ID)
