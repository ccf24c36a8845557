"""Who approved or rejected a model package, when and why; and how the last deployment ended.

Each decision is kept in the package itself, so the registry is the audit trail: the latest one as
the ``ApprovalDescription`` ("Approved by <caller ARN> at <time>: <reason>", any text, 1024
characters), and every one as customer metadata ``decision-<n>`` = "<status> by <ARN> at <time>"
and ``decision-<n>-reason`` (metadata values allow only letters, digits, spaces and ``_.:/=+-@``,
so other characters of the reason become spaces there; the description keeps them).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pipelines.errors import PipelinesError

_DISALLOWED = re.compile(r"[^\w\s.:/=+\-@]", re.UNICODE)
_DECISION = re.compile(r"^decision-(\d+)$")


class ReasonRequiredError(PipelinesError, ValueError):
    """An approval or rejection without a reason: the audit trail needs one."""


@dataclass(frozen=True)
class Decision:
    number: int
    status: str
    who: str
    when: str
    reason: str


def metadata_value(text: str, limit: int = 256) -> str:
    cleaned = " ".join(_DISALLOWED.sub(" ", text).split())
    return cleaned[:limit] or "-"


def decisions(metadata: dict[str, str]) -> list[Decision]:
    found = []
    for key, value in metadata.items():
        match = _DECISION.match(key)
        if match:
            status, _, rest = value.partition(" by ")
            who, _, when = rest.rpartition(" at ")
            found.append(Decision(int(match.group(1)), status, who, when, metadata.get(f"{key}-reason", "")))
    return sorted(found, key=lambda d: d.number)


def decision_update(status: str, caller_arn: str, reason: str, metadata: dict[str, str],
                    when: datetime | None = None) -> dict:
    """UpdateModelPackage arguments (less the ARN) recording one decision."""
    if not reason or not reason.strip():
        raise ReasonRequiredError(f"{status.lower().replace('approved', 'approving').replace('rejected', 'rejecting')} "
                                  "needs --reason: the registry keeps who decided and why")
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    number = max((d.number for d in decisions(metadata)), default=0) + 1
    return {"ModelApprovalStatus": status,
            "ApprovalDescription": f"{status} by {caller_arn} at {stamp}: {reason.strip()}"[:1024],
            "CustomerMetadataProperties": {
                f"decision-{number}": metadata_value(f"{status} by {caller_arn} at {stamp}"),
                f"decision-{number}-reason": metadata_value(reason)}}


def deployment_outcome(endpoint: dict | None) -> str:
    """The last deployment as DescribeEndpoint tells it: in progress, completed or rolled back (and why)."""
    if endpoint is None:
        return "no endpoint"
    status, config = endpoint["EndpointStatus"], endpoint["EndpointConfigName"]
    if status in ("Creating", "Updating"):
        pending = endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
        return f"{status.lower()}: {config} serving" + (f", {pending} being deployed" if pending else "")
    if endpoint.get("FailureReason"):
        return f"{status}: last deployment failed or rolled back, {config} serving: {endpoint['FailureReason']}"
    return f"{status}: last deployment completed, {config} serving"
