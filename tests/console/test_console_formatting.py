"""How the console writes times, sources, alarms and who started an execution (pure)."""
from datetime import UTC, datetime, timedelta, timezone

from console.formatting import alarm_condition, duration, short_source, started_by, status_class, trigger, when


def test_times_are_utc_and_durations_readable():
    assert when(datetime(2026, 12, 7, 10, 0, tzinfo=timezone(timedelta(hours=2)))) == "2026-12-07 08:00:00 UTC"
    assert when(None) == "–"
    assert [duration(s) for s in (None, 4.25, 75, 3725)] == ["–", "4.2 s", "1 min 15 s", "1 h 02 min"]


def test_sources_alarms_and_statuses():
    assert short_source("sha256:" + "ab" * 32 + " sample") == "sha256:abababababab… sample"
    assert short_source("") == "–"
    latency = {"Namespace": "AWS/SageMaker", "MetricName": "ModelLatency", "Statistic": "Average",
               "ComparisonOperator": "GreaterThanThreshold", "Threshold": 500000.0, "Period": 60, "EvaluationPeriods": 1}
    assert alarm_condition(latency) == "AWS/SageMaker ModelLatency Average > 500 ms over 1 × 60 s"
    assert [status_class(s) for s in ("Succeeded", "Executing", "Failed", "PendingManualApproval", None)] == \
        ["status-good", "status-running", "status-bad", "status-other", "status-none"]


def test_who_and_what_started_an_execution():
    assert started_by({"CreatedBy": {"IamIdentity": {"Arn": "arn:aws:sts::1:assumed-role/ci/build"}}}) == \
        "arn:aws:sts::1:assumed-role/ci/build"
    assert started_by({"CreatedBy": {"UserProfileName": "ana"}}) == "Studio user ana" and started_by({}) == ""
    assert trigger({"PipelineExecutionDescription": "started by EventBridge rule r (Scheduled Event)"}) == \
        "started by EventBridge rule r (Scheduled Event)"
    assert trigger({"PipelineExecutionDisplayName": "run-3daae6e"}) == "run-pipeline / scones-local run (run-3daae6e)"
    assert trigger({"PipelineExecutionDisplayName": "console-20261207"}) == "operator console (console-20261207)"
    assert when(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01 00:00:00 UTC"
