"""What users create survives a restart: Lambda functions, state machines, IAM roles, CloudWatch Logs.

The saved state's documents (``local_runtime/state.py``'s kinds), read straight from moto's backends,
and their restore: each returns ``{name: document}``; the restore puts one document back. What the
stack provisions is created again by provisioning before the restore, and keeps its provisioned
definition (a saved document of the same name is left alone, as for the template's rules). Log
events are saved from the last :data:`LOG_DAYS` days (or the group's retention, when shorter), with
their own timestamps. The test in tests/local_runtime/test_user_state.py fails loudly
if a moto upgrade reshapes what is read here.
"""
from __future__ import annotations

import base64
import json
import logging
import time

from local_runtime.aws_env import ACCOUNT_ID

log = logging.getLogger("local_runtime.state")
LOG_DAYS = 14
_CODE: dict[str, str] = {}       # CodeSha256 -> base64 of the zip: encoded once per package


def _each(items, describe):
    """``describe(item)`` for each item; one that cannot be read is left out (logged), never failing the save."""
    out = {}
    for item in items:
        try:
            described = describe(item)
        except Exception as exc:     # a resource moto holds in a shape not foreseen: not saved, said so
            log.warning("not saved: %r (%s: %s)", getattr(item, "name", item), type(exc).__name__, exc)
            continue
        if described:
            out[described[0]] = described[1]
    return out


def _lenient(restore):
    """A user's resource that cannot be created again (its role is gone, …) is skipped with a warning: it must not
    keep serve from starting."""
    import functools

    @functools.wraps(restore)
    def restoring(ctx, document):
        from botocore.exceptions import ClientError

        try:
            restore(ctx, document)
        except ClientError as exc:
            log.warning("could not restore %s: %s", _label(document), exc)
    return restoring


def _label(document: dict) -> str:
    for key in ("RoleName", "FunctionName", "name", "logGroupName"):
        if key in document:
            return f"{key} {document[key]}"
    return "a saved resource"


def _iam():
    from moto.iam.models import iam_backends

    return iam_backends[ACCOUNT_ID]["global"]


def _lambda(region: str):
    from moto.awslambda.models import lambda_backends

    return lambda_backends[ACCOUNT_ID][region]


def _stepfunctions(region: str):
    from moto.stepfunctions.responses import get_backend

    return get_backend(ACCOUNT_ID, region)


def _logs(region: str):
    from moto.logs.models import logs_backends

    return logs_backends[ACCOUNT_ID][region]


# -- IAM roles --------------------------------------------------------------------------------------------

def roles(region: str) -> dict[str, dict]:
    def describe(role):
        if getattr(role, "_linked_service", None):
            return None
        document = {"RoleName": role.name, "Path": role.path,
                    "AssumeRolePolicyDocument": role.assume_role_policy_document,
                    "InlinePolicies": dict(role.policies),
                    "AttachedPolicyArns": [policy.arn for policy in role.managed_policies.values()]}
        if role.description:
            document["Description"] = role.description
        if role.max_session_duration:
            document["MaxSessionDuration"] = int(role.max_session_duration)
        if role.tags:
            document["Tags"] = [dict(tag) for tag in role.tags]
        return role.name, document
    return _each(list(_iam().roles.values()), describe)


@_lenient
def restore_role(ctx, document: dict) -> None:
    iam = ctx.client("iam")
    if any(role.name == document["RoleName"] for role in list(_iam().roles.values())):   # keyed by role id
        return                  # provisioned again already: the stack's definition stands
    request = {k: document[k] for k in ("RoleName", "Path", "AssumeRolePolicyDocument", "Description",
                                        "MaxSessionDuration", "Tags") if document.get(k)}
    if not isinstance(request["AssumeRolePolicyDocument"], str):
        request["AssumeRolePolicyDocument"] = json.dumps(request["AssumeRolePolicyDocument"])
    iam.create_role(**request)
    for name, policy in document.get("InlinePolicies", {}).items():
        iam.put_role_policy(RoleName=document["RoleName"], PolicyName=name,
                            PolicyDocument=policy if isinstance(policy, str) else json.dumps(policy))
    for arn in document.get("AttachedPolicyArns", []):
        try:
            iam.attach_role_policy(RoleName=document["RoleName"], PolicyArn=arn)
        except Exception as exc:      # a customer policy that is gone: the role comes back without it
            log.warning("role %s: could not attach %s again: %s", document["RoleName"], arn, exc)


# -- Lambda functions -------------------------------------------------------------------------------------

def _code(function) -> str:
    sha = function.code_sha_256
    if sha not in _CODE:
        _CODE[sha] = base64.b64encode(function.code_bytes).decode()
    return _CODE[sha]


def functions(region: str) -> dict[str, dict]:
    def describe(function):
        if getattr(function, "package_type", "Zip") == "Image" or not function.code_bytes:
            return None
        document = {"FunctionName": function.function_name, "Runtime": function.run_time, "Role": function.role,
                    "Handler": function.handler, "Timeout": int(function.timeout),
                    "MemorySize": int(function.memory_size), "CodeSha256": function.code_sha_256,
                    "Code": {"ZipFile": _code(function)}}
        if function.environment_vars:
            document["Environment"] = {"Variables": dict(function.environment_vars)}
        if function.description:
            document["Description"] = function.description
        return function.function_name, document
    return _each(list(_lambda(region).list_functions()), describe)


@_lenient
def restore_function(ctx, document: dict) -> None:
    lam = ctx.client("lambda")
    names = {f.function_name for f in _lambda(ctx.region).list_functions()}
    if document["FunctionName"] in names:
        return                  # provisioned again already
    request = {k: v for k, v in document.items() if k not in ("CodeSha256", "Code")}
    lam.create_function(**request, Code={"ZipFile": base64.b64decode(document["Code"]["ZipFile"])})


# -- Step Functions state machines ------------------------------------------------------------------------

def state_machines(region: str) -> dict[str, dict]:
    def describe(machine):
        document = {"name": machine.name, "definition": machine.definition, "roleArn": machine.roleArn,
                    "type": machine.type or "STANDARD"}
        if machine.loggingConfiguration and machine.loggingConfiguration != {"level": "OFF"}:
            document["loggingConfiguration"] = machine.loggingConfiguration
        return machine.name, document
    return _each(list(_stepfunctions(region).state_machines), describe)


@_lenient
def restore_state_machine(ctx, document: dict) -> None:
    if any(m.name == document["name"] for m in _stepfunctions(ctx.region).state_machines):
        return                  # provisioned again already
    ctx.client("stepfunctions").create_state_machine(**document)


# -- CloudWatch Logs --------------------------------------------------------------------------------------

def log_streams(region: str) -> dict[str, dict]:
    """``<group>/<stream>`` -> the stream's events of the last :data:`LOG_DAYS` days (or the group's retention)."""
    now_ms = int(time.time() * 1000)
    out = {}
    for group_name, group in list(_logs(region).groups.items()):
        days = min(LOG_DAYS, int(group.retention_in_days or LOG_DAYS))
        since = now_ms - days * 86_400_000
        for stream_name, stream in list(group.streams.items()):
            events = [{"timestamp": int(e.timestamp), "message": e.message} for e in list(stream.events)
                      if int(e.timestamp) >= since]
            document = {"logGroupName": group_name, "logStreamName": stream_name, "events": events}
            if group.retention_in_days:
                document["retentionInDays"] = int(group.retention_in_days)
            out[f"{group_name}/{stream_name}"] = document
        if not group.streams:
            out[f"{group_name}/"] = {"logGroupName": group_name, "logStreamName": None, "events": []}
    return out


def restore_log_stream(ctx, document: dict) -> None:
    """Straight into moto's backend, each event with its own timestamp (PutLogEvents refuses old events)."""
    backend = _logs(ctx.region)
    group = document["logGroupName"]
    backend.ensure_log_group(group)
    if document.get("retentionInDays"):
        backend.groups[group].retention_in_days = document["retentionInDays"]
    if not document.get("logStreamName"):
        return
    backend.ensure_log_stream(group, document["logStreamName"])
    stream = backend.groups[group].streams[document["logStreamName"]]
    known = {(e.timestamp, e.message) for e in stream.events}
    events = sorted((e for e in document.get("events", []) if (e["timestamp"], e["message"]) not in known),
                    key=lambda e: e["timestamp"])
    if events:
        stream.put_log_events(events)
        stream._update()         # first/last event timestamps from the events themselves
