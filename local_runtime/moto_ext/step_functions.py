"""Step Functions answers as AWS gives them, where moto's interpreter backend differs.

- StartExecution without a ``name``: AWS generates a UUID; moto names the execution ``None`` (its
  ARN ends in ``:None``, the second unnamed start fails ExecutionAlreadyExists, and ``name`` is
  missing from Describe/ListExecutions).
- StartExecution with an ``input`` that is not JSON: AWS answers ``InvalidExecutionInput``
  (``Invalid State Machine Execution Input: '…'``); moto answers with an empty error code.
- GetExecutionHistory: ``reverseOrder``, ``maxResults`` and ``nextToken`` page the events as on
  AWS (default page size 100); moto returns every event, oldest first, whatever was asked.

The canary test in tests/local_runtime/moto_ext/test_step_functions.py fails loudly if a moto
upgrade moves what is replaced here.
"""
from __future__ import annotations

import base64
import json
import uuid
from typing import Any

_ORIGINAL = "__scones_original__"
HISTORY_PAGE = 100      # GetExecutionHistory's default maxResults


MAX_INPUT_BYTES = 262144      # StartExecution's input: the service model's max, counted in UTF-8 bytes (256 KiB)


def _check_input_size(execution_input: str) -> None:
    """AWS refuses an input past 256 KiB at the API (its model constraint, a ValidationException; the value is
    sensitive, so it is not echoed); moto ran it."""
    from moto.stepfunctions.exceptions import ValidationException

    if isinstance(execution_input, str) and len(execution_input.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        raise ValidationException("1 validation error detected: Value at 'input' failed to satisfy constraint: "
                                  f"Member must have length less than or equal to {MAX_INPUT_BYTES}")


def _start_execution(self) -> Any:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.exceptions import InvalidExecutionInput

    name = self._get_param("name") or str(uuid.uuid4())
    execution_input = self._get_param("input", if_none="{}")
    _check_input_size(execution_input)
    try:
        json.loads(execution_input)
    except (TypeError, ValueError) as exc:
        raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{exc}'") from None
    execution = self.stepfunction_backend.start_execution(self._get_param("stateMachineArn"), name, execution_input)
    return ActionResult({"executionArn": execution.execution_arn, "startDate": execution.start_date})


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    from moto.stepfunctions.exceptions import InvalidToken

    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise InvalidToken("the nextToken is not one this execution's history gave") from None


def _get_execution_history(self) -> Any:
    from moto.core.responses import ActionResult

    history = self.stepfunction_backend.get_execution_history(self._get_param("executionArn"))
    events = list(history["events"] if isinstance(history, dict) else history.events)
    if self._get_param("reverseOrder"):
        events.reverse()
    start = _offset(self._get_param("nextToken"))
    size = int(self._get_param("maxResults") or HISTORY_PAGE)
    page = events[start:start + size]
    response: dict[str, Any] = {"events": page}
    if start + size < len(events):
        response["nextToken"] = _token(start + size)
    return ActionResult(response)


def install() -> None:
    from moto.stepfunctions.responses import StepFunctionResponse

    for action, replacement in (("start_execution", _start_execution),
                                ("get_execution_history", _get_execution_history)):
        current = getattr(StepFunctionResponse, action)
        if current is not replacement:
            replacement.__dict__[_ORIGINAL] = current
            setattr(StepFunctionResponse, action, replacement)
