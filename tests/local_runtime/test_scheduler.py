"""Schedule rules fire their targets: on demand (``scones-local fire-schedule``) and on time while serve runs."""
from datetime import UTC, datetime, timedelta

import pytest

from local_runtime.cli import main
from local_runtime.provision import schedule_rule_name
from local_runtime.scheduler import RuleNotFoundError, Scheduler, fire_rule
from pipelines.scones.pipeline import get_pipeline
from tests.local_stack import Serving

pytestmark = pytest.mark.e2e      # starts serve, a subprocess stack or a whole pipeline


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    with Serving(tmp_path_factory.mktemp("schedules") / "run") as served:
        get_pipeline(served.config).upsert(role_arn=served.config.pipeline.role_arn)
        yield served
        served.stack.executions.wait_idle(120)


def _parameters(sm, arn: str) -> dict:
    listed = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    return {p["Name"]: p["Value"] for p in listed}


def test_the_local_rule_is_disabled_and_targets_the_pipeline_like_the_template(serving):
    events = serving.stack.client("events")
    rule = schedule_rule_name(serving.config)
    assert events.describe_rule(Name=rule)["State"] == "DISABLED"
    target = events.list_targets_by_rule(Rule=rule)["Targets"][0]
    assert target["Arn"].endswith(f":pipeline/{serving.config.pipeline.name}")
    assert target["SageMakerPipelineParameters"]["PipelineParameterList"] == [
        {"Name": "ModelApprovalStatus", "Value": "PendingManualApproval"}]


def test_fire_schedule_starts_an_execution_awaiting_manual_approval(serving, capsys):
    sm = serving.stack.client("sagemaker")
    assert main(["fire-schedule", "--run-dir", str(serving.run_dir)]) == 0
    assert "started arn:aws:sagemaker:" in capsys.readouterr().out
    executions = sm.list_pipeline_executions(PipelineName=serving.config.pipeline.name)["PipelineExecutionSummaries"]
    assert _parameters(sm, executions[0]["PipelineExecutionArn"]) == {"ModelApprovalStatus": "PendingManualApproval"}


def test_unknown_rule_is_a_named_error(serving):
    with pytest.raises(RuleNotFoundError, match="no-such-rule"):
        fire_rule(serving.stack.aws, "no-such-rule")
    assert main(["fire-schedule", "no-such-rule", "--run-dir", str(serving.run_dir)]) == 2


def test_enabled_rules_fire_when_due_and_only_then(serving):
    events, sm = serving.stack.client("events"), serving.stack.client("sagemaker")
    target = events.list_targets_by_rule(Rule=schedule_rule_name(serving.config))["Targets"][0]
    for name, expression in (("every-five-minutes", "rate(5 minutes)"), ("monday-3am", "cron(0 3 ? * MON *)")):
        events.put_rule(Name=name, ScheduleExpression=expression, State="ENABLED")
        events.put_targets(Rule=name, Targets=[target])
    sunday = datetime(2026, 11, 29, 23, 58, tzinfo=UTC)
    scheduler = Scheduler(serving.stack.aws, started=sunday)

    def tick(when):     # the template's own schedules (the hourly drift monitor) fire too; these rules are under test
        return [(name, deliveries) for name, deliveries in scheduler.tick(when)
                if name in ("every-five-minutes", "monday-3am")]

    assert tick(sunday + timedelta(minutes=1)) == []
    fired = tick(sunday + timedelta(minutes=5, seconds=1))
    assert [(name, [d.ok for d in deliveries]) for name, deliveries in fired] == [("every-five-minutes", [True])]
    assert tick(sunday + timedelta(minutes=5, seconds=2)) == []
    fired = tick(datetime(2026, 11, 30, 3, 0, 1, tzinfo=UTC))
    assert sorted(name for name, _ in fired) == ["every-five-minutes", "monday-3am"]
    started = fired[0][1][0].result
    assert _parameters(sm, started) == {"ModelApprovalStatus": "PendingManualApproval"}
    for name in ("every-five-minutes", "monday-3am"):
        events.disable_rule(Name=name)
    assert tick(datetime(2026, 12, 7, 3, 0, 1, tzinfo=UTC)) == []
