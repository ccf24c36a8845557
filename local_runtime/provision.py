"""Creates on the local AWS APIs what the SAM template creates on AWS: the same code, the same ASL.

Bucket, IAM role, the three inference Lambdas, the human review Lambda with the review queue and its
dead-letter queue, the deploy Lambda and the pipeline's
find-registered-model and find-champion Lambdas (zipped from their folders, exactly what SAM packages
from each CodeUri), the deploy Lambda's asynchronous-invocation config with its on-failure SQS queue,
the state machine (with the template's DefinitionSubstitutions), the EventBridge rule for approvals, the
start-retraining Lambda with the schedule and drift rules that target it (as the template declares them),
and the pipeline notifications topic with its two rules.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from local_runtime.moto_ext.lambda_invoker import allow_package
from scones_common.config import SconesConfig
from scones_common.names import capture_uri, deploy_function_name, find_registered_function_name

if TYPE_CHECKING:
    from local_runtime.template_resources import Resolver

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = REPO_ROOT / "inference_workflow"
ASL_PATH = WORKFLOW_DIR / "state_machine.asl.json"
RUNTIME = "python3.12"
DEPLOY_FOLDER = "deploy_model"
FIND_REGISTERED_FOLDER = "find_registered_model"
FIND_CHAMPION_FOLDER = "find_champion"
NOTIFICATION_RULES = ("PipelineFailedRule", "ChallengerStoppedRule")
DRIFT_MONITOR_FOLDER = "drift_monitor"
HUMAN_REVIEW_FOLDER = "human_review"
START_RETRAINING_FOLDER = "start_retraining"
REVIEW_QUEUES = ("ReviewDeadLetterQueue", "ReviewQueue")     # the dead-letter queue first: the other names it
INFERENCE_FUNCTIONS = {   # ASL substitution -> (folder, function suffix)
    "SerializeImageDataFunctionArn": ("serialize_image_data", "serialize-image-data"),
    "ClassifyImageFunctionArn": ("classify_image", "classify-image"),
    "FilterInferencesFunctionArn": ("filter_inferences", "filter-inferences"),
}
ASSUME_ROLE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
    "Service": ["lambda.amazonaws.com", "states.amazonaws.com", "sagemaker.amazonaws.com", "events.amazonaws.com"]}}]}


@dataclass(frozen=True)
class Provisioned:
    role_arn: str
    functions: dict[str, str]        # substitution name -> function ARN
    deploy_function_arn: str
    state_machine_arn: str
    deploy_failures_queue_url: str
    monitor_function_arn: str = ""
    alarm_names: tuple[str, ...] = ()
    review_function_arn: str = ""
    review_queue_url: str = ""
    review_dead_letter_queue_url: str = ""
    retraining_function_arn: str = ""


def zip_folder(folder: Path, include: tuple[str, ...] = ("*.py",)) -> bytes:
    """Deterministic zip of a Lambda folder (sorted entries, fixed timestamps): same code, same hash."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for pattern in include:
            for path in sorted(folder.glob(pattern)):
                info = zipfile.ZipInfo(path.name, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def render_definition(substitutions: dict[str, str], asl_path: Path = ASL_PATH) -> str:
    """Applies ${Name} substitutions exactly as CloudFormation's DefinitionSubstitutions does."""
    text = asl_path.read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise ValueError(f"unsubstituted placeholder left in {asl_path}")
    return text


def ensure_role(iam, name: str) -> str:
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(ASSUME_ROLE))["Role"]["Arn"]


def upsert_function(lam, name: str, role_arn: str, code: bytes, handler: str, environment: dict[str, str],
                    timeout: int = 30) -> str:
    """Creates or updates the function; its package becomes one the local invoker will run."""
    allow_package(name, handler, code)
    try:
        lam.get_function(FunctionName=name)
    except ClientError:
        return lam.create_function(FunctionName=name, Runtime=RUNTIME, Role=role_arn, Handler=handler,
                                   Code={"ZipFile": code}, Timeout=timeout, MemorySize=256,
                                   Environment={"Variables": environment})["FunctionArn"]
    lam.update_function_code(FunctionName=name, ZipFile=code)
    return lam.update_function_configuration(FunctionName=name, Handler=handler, Environment={"Variables": environment},
                                             Timeout=timeout)["FunctionArn"]


def upsert_state_machine(sfn, name: str, definition: str, role_arn: str) -> str:
    for machine in sfn.list_state_machines()["stateMachines"]:
        if machine["name"] == name:
            sfn.update_state_machine(stateMachineArn=machine["stateMachineArn"], definition=definition, roleArn=role_arn)
            return machine["stateMachineArn"]
    return sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn)["stateMachineArn"]


def provision_failure_handling(clients, resolver: Resolver, function_logical_id: str, function_arn: str) -> str:
    """The function's EventInvokeConfig as the template declares it: its retries, its event age and its on-failure
    queue, created with the queue's declared retention. Returns the queue's URL."""
    resources = resolver.template["Resources"]
    declared = resources[function_logical_id]["Properties"]["EventInvokeConfig"]
    invoke = resolver.resolve(declared)
    queue_id = declared["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    queue = resolver.resolve(resources[queue_id]["Properties"])
    sqs = clients.client("sqs")
    url = sqs.create_queue(QueueName=queue["QueueName"],
                           Attributes={"MessageRetentionPeriod": str(queue["MessageRetentionPeriod"])})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    clients.client("lambda").put_function_event_invoke_config(
        FunctionName=function_arn, MaximumRetryAttempts=int(invoke["MaximumRetryAttempts"]),
        MaximumEventAgeInSeconds=int(invoke["MaximumEventAgeInSeconds"]),
        DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    return url


def schedule_rule_name(config: SconesConfig) -> str:
    return f"{config.project.name}-retrain-schedule"


def provision(clients, config: SconesConfig) -> Provisioned:
    from local_runtime.template_resources import resolver_for

    resolver = resolver_for(config)       # one template, resolved with this configuration's parameters, for every part
    s3, iam, lam, sfn, events = (clients.client(s) for s in ("s3", "iam", "lambda", "stepfunctions", "events"))
    try:
        s3.create_bucket(Bucket=config.storage.bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    role_arn = ensure_role(iam, config.pipeline.role_arn.rsplit("/", 1)[-1])
    prefix = config.project.name
    environments = {
        "ClassifyImageFunctionArn": {"ENDPOINT_NAME": config.endpoint.name},
        "FilterInferencesFunctionArn": {"THRESHOLD": str(config.inference.confidence_threshold)},
    }
    functions = {}
    for substitution, (folder, suffix) in INFERENCE_FUNCTIONS.items():
        functions[substitution] = upsert_function(lam, f"{prefix}-{suffix}", role_arn, zip_folder(WORKFLOW_DIR / folder),
                                                  "lambda_function.lambda_handler", environments.get(substitution, {}))
    deploy_arn = upsert_function(
        lam, deploy_function_name(config), role_arn, zip_folder(WORKFLOW_DIR / DEPLOY_FOLDER),
        "lambda_function.lambda_handler",
        {"ENDPOINT_NAME": config.endpoint.name, "EXECUTION_ROLE_ARN": role_arn, "CAPTURE_S3_URI": capture_uri(config),
         "ENDPOINT_INSTANCE_TYPE": config.endpoint.instance_type,
         "INITIAL_INSTANCE_COUNT": str(config.endpoint.initial_instance_count),
         "CAPTURE_SAMPLING_PERCENTAGE": str(config.endpoint.capture_sampling_percentage),
         "ENDPOINT_POLL_SECONDS": str(max(0.05, config.endpoint.local_transition_seconds / 10)),
         **guarded_update_environment(resolver)}, timeout=300)
    failures_url = provision_failure_handling(clients, resolver, "DeployModelFunction", deploy_arn)
    upsert_function(lam, find_registered_function_name(config), role_arn,
                    zip_folder(WORKFLOW_DIR / FIND_REGISTERED_FOLDER), "lambda_function.lambda_handler", {}, timeout=60)
    review = provision_review(clients, resolver, role_arn)
    machine_arn = upsert_state_machine(sfn, config.inference.state_machine_name, render_definition(
        {**functions, "HumanReviewFunctionArn": review.function_arn, "ReviewQueueUrl": review.queue_url}), role_arn)
    events.put_rule(Name=f"{prefix}-model-approved", State="ENABLED", EventPattern=json.dumps({
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [config.registry.model_package_group],
                   "ModelApprovalStatus": ["Approved", "Rejected"]}}))
    events.put_targets(Rule=f"{prefix}-model-approved", Targets=[{"Id": "deploy", "Arn": deploy_arn}])
    retraining_arn = provision_retraining(clients, config, resolver, role_arn)
    provision_champion_lookup(clients, resolver, role_arn)
    monitor_arn, alarm_names = provision_monitoring(clients, config, resolver, role_arn)
    provision_notifications(clients, config, resolver)
    return Provisioned(role_arn, functions, deploy_arn, machine_arn, failures_url, monitor_arn, alarm_names,
                       review.function_arn, review.queue_url, review.dead_letter_queue_url, retraining_arn)


def provision_retraining(clients, config: SconesConfig, resolver: Resolver, role_arn: str) -> str:
    """The template's StartRetrainingFunction and its RetrainScheduleRule (named ``schedule_rule_name``; its
    state from schedule.enabled through the template's condition); returns the function's ARN. The drift rule,
    which targets the same function, comes with the alarms (:func:`provision_monitoring`)."""
    from local_runtime.template_resources import event_rules

    function = resolver.resolve(resolver.template["Resources"]["StartRetrainingFunction"]["Properties"])
    arn = upsert_function(clients.client("lambda"), function["FunctionName"], role_arn,
                          zip_folder(WORKFLOW_DIR / START_RETRAINING_FOLDER), function["Handler"],
                          {k: str(v) for k, v in function["Environment"]["Variables"].items()},
                          timeout=int(function["Timeout"]))
    provision_failure_handling(clients, resolver, "StartRetrainingFunction", arn)
    events = clients.client("events")
    rule = event_rules(resolver, ("RetrainScheduleRule",))["RetrainScheduleRule"]
    events.put_rule(Name=schedule_rule_name(config), ScheduleExpression=rule["ScheduleExpression"], State=rule["State"],
                    Description=rule["Description"])
    events.put_targets(Rule=schedule_rule_name(config), Targets=rule["Targets"])
    return arn


@dataclass(frozen=True)
class ReviewResources:
    function_arn: str
    queue_url: str
    dead_letter_queue_url: str


def provision_review(clients, resolver: Resolver, role_arn: str) -> ReviewResources:
    """The template's review queue (with its redrive policy to the dead-letter queue) and HumanReviewFunction,
    named and configured as the template declares them with this configuration's parameters."""
    resources = resolver.template["Resources"]
    sqs = clients.client("sqs")
    urls = {}
    for logical_id in REVIEW_QUEUES:
        properties = resolver.resolve(resources[logical_id]["Properties"])
        attributes = {key: str(properties[key]) for key in ("MessageRetentionPeriod", "VisibilityTimeout")
                      if key in properties}
        if "RedrivePolicy" in properties:
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": properties["RedrivePolicy"]["deadLetterTargetArn"],
                                                      "maxReceiveCount": int(properties["RedrivePolicy"]["maxReceiveCount"])})
        urls[logical_id] = sqs.create_queue(QueueName=properties["QueueName"], Attributes=attributes)["QueueUrl"]
    function = resolver.resolve(resources["HumanReviewFunction"]["Properties"])
    arn = upsert_function(clients.client("lambda"), function["FunctionName"], role_arn,
                          zip_folder(WORKFLOW_DIR / HUMAN_REVIEW_FOLDER), function["Handler"],
                          {k: str(v) for k, v in function["Environment"]["Variables"].items()})
    return ReviewResources(arn, urls["ReviewQueue"], urls["ReviewDeadLetterQueue"])


def guarded_update_environment(resolver: Resolver) -> dict[str, str]:
    """The deploy Lambda's canary and rollback-alarm variables, resolved from the template as SAM would."""
    variables = resolver.template["Resources"]["DeployModelFunction"]["Properties"]["Environment"]["Variables"]
    keys = ("CANARY_PERCENT", "CANARY_WAIT_SECONDS", "TERMINATION_WAIT_SECONDS", "ROLLBACK_ALARMS")
    return {key: str(resolver.resolve(variables[key])) for key in keys}


def provision_monitoring(clients, config: SconesConfig, resolver: Resolver, role_arn: str) -> tuple[str, tuple[str, ...]]:
    """The template's alarms, drift monitor Lambda (with its schedule) and drift rule; returns (monitor ARN, alarm names)."""
    from local_runtime.template_resources import alarms, event_rules

    template = resolver.template
    cloudwatch, lam, events = (clients.client(s) for s in ("cloudwatch", "lambda", "events"))
    names = []
    for request in alarms(resolver).values():
        cloudwatch.put_metric_alarm(**request)
        names.append(request["AlarmName"])
    monitor = resolver.resolve(template["Resources"]["DriftMonitorFunction"]["Properties"])
    environment = {k: str(v) for k, v in monitor["Environment"]["Variables"].items()}
    monitor_arn = upsert_function(lam, monitor["FunctionName"], role_arn, zip_folder(WORKFLOW_DIR / DRIFT_MONITOR_FOLDER),
                                  monitor["Handler"], environment, timeout=int(monitor["Timeout"]))
    schedule_rule = f"{config.project.name}-drift-monitor-schedule"
    events.put_rule(Name=schedule_rule, ScheduleExpression=config.monitor.schedule, State="ENABLED")
    events.put_targets(Rule=schedule_rule, Targets=[{"Id": "drift-monitor", "Arn": monitor_arn}])
    for logical_id, rule in event_rules(resolver, ("DriftRetrainRule",)).items():
        name = f"{config.project.name}-{logical_id}"
        events.put_rule(Name=name, EventPattern=json.dumps(rule["EventPattern"]), State=rule["State"],
                        Description=rule["Description"])
        events.put_targets(Rule=name, Targets=rule["Targets"])
    return monitor_arn, tuple(names)


def provision_champion_lookup(clients, resolver: Resolver, role_arn: str) -> str:
    """The pipeline's FindChampion Lambda, named and configured as the template's FindChampionFunction."""
    function = resolver.template["Resources"]["FindChampionFunction"]["Properties"]
    return upsert_function(clients.client("lambda"), resolver.resolve(function["FunctionName"]), role_arn,
                           zip_folder(WORKFLOW_DIR / FIND_CHAMPION_FOLDER), function["Handler"],
                           {"EXECUTION_ROLE_ARN": role_arn}, timeout=int(function["Timeout"]))


def provision_notifications(clients, config: SconesConfig, resolver: Resolver) -> str:
    """The template's pipeline notifications topic (and its email subscription, when configured) and the two rules
    that publish failed executions and challengers stopped by the champion gate to it; returns the topic ARN."""
    from local_runtime.template_resources import event_rules

    resources = resolver.template["Resources"]
    sns, events = clients.client("sns"), clients.client("events")
    topic_arn = sns.create_topic(Name=resolver.resolve(resources["PipelineNotificationTopic"]["Properties"]["TopicName"]))[
        "TopicArn"]
    if resolver.condition(resources["PipelineNotificationSubscription"]["Condition"]):
        subscription = resolver.resolve(resources["PipelineNotificationSubscription"]["Properties"])
        sns.subscribe(TopicArn=topic_arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    for logical_id, rule in event_rules(resolver, NOTIFICATION_RULES).items():
        name = f"{config.project.name}-{logical_id}"
        events.put_rule(Name=name, EventPattern=json.dumps(rule["EventPattern"]), State=rule["State"],
                        Description=rule["Description"])
        events.put_targets(Rule=name, Targets=rule["Targets"])
    return topic_arn
