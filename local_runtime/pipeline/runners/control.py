"""Condition, Fail and Lambda steps."""
from __future__ import annotations

import json
import operator

from local_runtime.errors import LocalRuntimeError
from local_runtime.pipeline.expressions import Context, resolve
from local_runtime.pipeline.runners.base import StepContext, StepFailedError

_COMPARISONS = {"Equals": operator.eq, "GreaterThan": operator.gt, "GreaterThanOrEqualTo": operator.ge,
                "LessThan": operator.lt, "LessThanOrEqualTo": operator.le}


class PipelineFailStepError(LocalRuntimeError, RuntimeError):
    """A FailStep ran: the execution fails with the step's message."""

    def __init__(self, step: str, message: str):
        self.step, self.message = step, message
        super().__init__(f"{step}: {message}")


def _number_or_text(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def evaluate_condition(condition: dict, ctx: Context) -> bool:
    kind = condition["Type"]
    if kind in _COMPARISONS:
        left, right = _number_or_text(resolve(condition["LeftValue"], ctx)), _number_or_text(resolve(condition["RightValue"], ctx))
        return _COMPARISONS[kind](left, right)
    if kind == "In":
        value = resolve(condition["QueryValue"], ctx)
        return value in [resolve(v, ctx) for v in condition["Values"]]
    if kind == "Not":
        return not evaluate_condition(condition["Condition"], ctx)
    if kind == "Or":
        return any(evaluate_condition(c, ctx) for c in condition["Conditions"])
    raise StepFailedError("Condition", f"condition type {kind!r} is not supported locally")


def condition(spec: dict, ctx: Context) -> dict:
    outcome = all(evaluate_condition(c, ctx) for c in spec["Arguments"]["Conditions"])
    return {"Outcome": str(outcome).lower()}


def fail(args: dict, step_name: str) -> None:
    raise PipelineFailStepError(step_name, str(args.get("ErrorMessage", "")))


def invoke_lambda(args: dict, ctx: StepContext) -> tuple[dict, dict]:
    response = ctx.clients.client("lambda").invoke(FunctionName=ctx.spec["FunctionArn"], Payload=json.dumps(args).encode())
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise StepFailedError(ctx.step_name, f"{payload.get('errorType')}: {payload.get('errorMessage')}")
    outputs = []
    for output in ctx.spec.get("OutputParameters", []):
        name = output["OutputName"]
        if not isinstance(payload, dict) or name not in payload:
            raise StepFailedError(ctx.step_name, f"Lambda output {name!r} missing from {payload}")
        outputs.append({"Name": name, "Value": payload[name]})
    return {"OutputParameters": outputs, "Payload": payload}, {}
