"""Who approved or rejected a model package, when and why; and how the last deployment ended.

Each decision is kept in the package itself, so the registry is the audit trail: the latest one as
the ``ApprovalDescription`` ("Approved by <caller ARN> at <time>: <reason>", any text, 1024
characters), and every one as customer metadata ``decision-<n>`` = "<status> by <ARN> at <time>"
and ``decision-<n>-reason`` (metadata values allow only letters, digits, spaces and ``_.:/=+-@``,
so other characters of the reason become spaces there; the description keeps them).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from pipelines.errors import PipelinesError

_DISALLOWED = re.compile(r"[^\w\s.:/=+\-@]", re.UNICODE)
_DECISION = re.compile(r"^decision-(\d+)$")
_DEPLOYMENT = re.compile(r"^deployment-(\d+)$")     # written by the deploy Lambda (record_outcome)
MAX_DESCRIPTION = 1024          # ApprovalDescription's max length in the service model
MAX_METADATA_ENTRIES = 50       # CustomerMetadataProperties' max entries


class ReasonRequiredError(PipelinesError, ValueError):
    """An approval or rejection without a reason: the audit trail needs one."""


class ReasonTooLongError(PipelinesError, ValueError):
    """The reason does not fit ApprovalDescription (1024 characters with who and when)."""


class AuditTrailFullError(PipelinesError, ValueError):
    """The package's customer metadata has no room for another decision (50 entries at most)."""


@dataclass(frozen=True)
class Decision:
    number: int
    status: str
    who: str
    when: str
    reason: str

    def line(self, version: str) -> str:
        return f"{self.when:<20}  v{version:<4} {self.status:<9} by {self.who}: {self.reason}"


@dataclass(frozen=True)
class DeploymentRecord:
    """How one update to this package ended, as the deploy Lambda recorded it (``deployment-<n>``)."""
    number: int
    outcome: str        # completed | failed or rolled back
    endpoint: str
    when: str
    reason: str

    def line(self, version: str) -> str:
        return (f"{self.when:<20}  v{version:<4} deployment {self.outcome} on {self.endpoint}"
                + (f": {self.reason}" if self.reason else ""))


def metadata_value(text: str, limit: int = 256) -> str:
    cleaned = " ".join(_DISALLOWED.sub(" ", text).split())
    return cleaned[:limit] or "-"


def _entries(metadata: dict[str, str], key_pattern: re.Pattern, separator: str, make) -> list:
    """``<kind>-<n>`` = "<what><separator><who> at <when>" entries, with ``<kind>-<n>-reason``, in order."""
    found = []
    for key, value in metadata.items():
        match = key_pattern.match(key)
        if match:
            what, _, rest = value.partition(separator)
            who, _, when = rest.rpartition(" at ")
            found.append(make(int(match.group(1)), what, who, when, metadata.get(f"{key}-reason", "")))
    return sorted(found, key=lambda entry: entry.number)


def decisions(metadata: dict[str, str]) -> list[Decision]:
    return _entries(metadata, _DECISION, " by ", Decision)


def clean_reason(reason: str | None) -> str:
    """One line of visible text: ApprovalDescription's pattern ``.*`` takes no line breaks, and invisible
    characters (zero-width spaces, other format characters) do not make a reason."""
    text = "".join(c for c in (reason or "") if unicodedata.category(c) not in ("Cf", "Cc") or c.isspace())
    return " ".join(text.split())


def deployment_records(metadata: dict[str, str]) -> list[DeploymentRecord]:
    return _entries(metadata, _DEPLOYMENT, " on ", DeploymentRecord)


def decision_update(status: str, caller_arn: str, reason: str, metadata: dict[str, str],
                    when: datetime | None = None) -> dict:
    """UpdateModelPackage arguments (less the ARN) recording one decision."""
    reason = clean_reason(reason)
    if not any(c.isalnum() for c in reason):
        raise ReasonRequiredError(f"{status.lower().replace('approved', 'approving').replace('rejected', 'rejecting')} "
                                  "needs --reason: the registry keeps who decided and why")
    if len(metadata) + 2 > MAX_METADATA_ENTRIES:
        raise AuditTrailFullError(f"the package already holds {len(metadata)} metadata entries and a decision adds 2 "
                                  f"(SageMaker allows {MAX_METADATA_ENTRIES}); register a new version instead")
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    description = f"{status} by {caller_arn} at {stamp}: {reason}"
    if len(description) > MAX_DESCRIPTION:
        raise ReasonTooLongError(f"the reason is {len(reason)} characters; with who and when it must fit "
                                 f"ApprovalDescription's {MAX_DESCRIPTION}: at most "
                                 f"{MAX_DESCRIPTION - len(description) + len(reason)} characters")
    number = max((d.number for d in decisions(metadata)), default=0) + 1
    return {"ModelApprovalStatus": status,
            "ApprovalDescription": description,
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
