"""What a decision records, and which reasons the registry cannot keep."""
from datetime import UTC, datetime

import pytest

from pipelines.registry.audit import (
    AuditTrailFullError,
    ReasonRequiredError,
    ReasonTooLongError,
    decision_update,
    decisions,
    deployment_outcome,
)

ARN = "arn:aws:iam::123456789012:user/alice"
WHEN = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def test_a_decision_is_numbered_and_read_back():
    first = decision_update("Approved", ARN, "beats v6, ticket #12", {}, WHEN)
    assert first["ApprovalDescription"] == f"Approved by {ARN} at 2026-11-26T03:00:00Z: beats v6, ticket #12"
    second = decision_update("Rejected", ARN, "night photos", first["CustomerMetadataProperties"], WHEN)
    both = decisions({**first["CustomerMetadataProperties"], **second["CustomerMetadataProperties"]})
    assert [(d.number, d.status, d.who, d.reason) for d in both] == [
        (1, "Approved", ARN, "beats v6 ticket 12"), (2, "Rejected", ARN, "night photos")]


def test_line_breaks_and_invisible_characters_are_folded_into_one_line():
    update = decision_update("Approved", ARN, "  better\non rain\u200b \t ", {}, WHEN)
    assert update["ApprovalDescription"].endswith(": better on rain")


@pytest.mark.parametrize("reason", ["", "   ", "\u200b\u200b", "\n\t", "?!"])
def test_a_reason_without_words_is_refused(reason):
    with pytest.raises(ReasonRequiredError, match="needs --reason"):
        decision_update("Approved", ARN, reason, {}, WHEN)


def test_a_reason_that_does_not_fit_is_refused_not_cut():
    with pytest.raises(ReasonTooLongError, match="at most 9[0-9][0-9] characters"):
        decision_update("Approved", ARN, "x" * 1000, {}, WHEN)


def test_a_full_audit_trail_is_refused():
    metadata = {f"key-{i}": "v" for i in range(49)}
    with pytest.raises(AuditTrailFullError, match="allows 50"):
        decision_update("Approved", ARN, "fine", metadata, WHEN)


def test_deployment_outcome_reads_describe_endpoint():
    assert deployment_outcome(None) == "no endpoint"
    assert deployment_outcome({"EndpointStatus": "Updating", "EndpointConfigName": "e-v1",
                               "PendingDeploymentSummary": {"EndpointConfigName": "e-v2"}}) == \
        "updating: e-v1 serving, e-v2 being deployed"
    assert "rolled back" in deployment_outcome({"EndpointStatus": "InService", "EndpointConfigName": "e-v1",
                                                "FailureReason": "Rolled back: alarm a went to ALARM"})
