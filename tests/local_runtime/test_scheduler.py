"""Schedule rules fire their targets: on demand (``scones-local fire-schedule``) and on time while serve runs.

The retraining schedule targets the start-retraining Lambda (as the template's RetrainScheduleRule), which
snapshots the human labels and starts the pipeline with them: ModelApprovalStatus and HumanLabelsUri."""
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from local_runtime.cli import main
from local_runtime.provision import schedule_rule_name
from local_runtime.scheduler import RuleNotFoundError, Scheduler, fire_rule
from pipelines.scones.pipeline import get_pipeline
from scones_common.names import human_label_sets_uri, human_labels_uri
from tests.builders import png_bytes
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


def _manifest(serving, labels_uri: str) -> dict:
    bucket, key = labels_uri[len("s3://"):].split("/", 1)
    return json.loads(serving.stack.client("s3").get_object(Bucket=bucket, Key=f"{key}manifest.json")["Body"].read())


def _retraining_parameters(serving, sm, arn: str) -> dict:
    """The execution's parameters, its label set checked: a content-addressed folder with its manifest."""
    parameters = _parameters(sm, arn)
    labels = parameters.pop("HumanLabelsUri")
    assert re.fullmatch(rf"{re.escape(human_label_sets_uri(serving.config))}/sha256-[0-9a-f]{{64}}/", labels), labels
    assert _manifest(serving, labels)["version"] == 1
    return parameters


def test_the_local_rule_is_disabled_and_targets_the_start_retraining_function_like_the_template(serving):
    events, lam = serving.stack.client("events"), serving.stack.client("lambda")
    rule = schedule_rule_name(serving.config)
    assert events.describe_rule(Name=rule)["State"] == "DISABLED"
    [target] = events.list_targets_by_rule(Rule=rule)["Targets"]
    assert target["Arn"] == serving.stack.resources.retraining_function_arn
    assert target["Arn"].endswith(f":function:{serving.config.project.name}-start-retraining")
    variables = lam.get_function_configuration(FunctionName=target["Arn"])["Environment"]["Variables"]
    assert variables["PIPELINE_NAME"] == serving.config.pipeline.name
    assert variables["MODEL_APPROVAL_STATUS"] == "PendingManualApproval"
    invoke = lam.get_function_event_invoke_config(FunctionName=target["Arn"])     # as the template's
    assert invoke["MaximumRetryAttempts"] == 2 and invoke["MaximumEventAgeInSeconds"] == 21600
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"].endswith(
        f":{serving.config.project.name}-start-retraining-failures")


def test_fire_schedule_starts_an_execution_awaiting_manual_approval(serving, capsys):
    """...with the human labels recorded so far: the schedule's run trains on the reviewed images too."""
    sm, s3, config = serving.stack.client("sagemaker"), serving.stack.client("s3"), serving.config
    image_key = f"{config.storage.prefix}/incoming/reviewed.png"
    s3.put_object(Bucket=config.storage.bucket, Key=image_key, Body=png_bytes())
    labels_key = human_labels_uri(config)[len(f"s3://{config.storage.bucket}/"):]
    s3.put_object(Bucket=config.storage.bucket, Key=f"{labels_key}/rev0001.json", Body=json.dumps({
        "review_id": "rev0001", "image": f"s3://{config.storage.bucket}/{image_key}", "image_sha256": "",
        "label": "motorcycle", "reviewer": "ana", "answered_at": "2026-11-29T12:00:00+00:00"}).encode())
    assert main(["fire-schedule", "--run-dir", str(serving.run_dir)]) == 0
    assert '"pipeline_execution_arn": "arn:aws:sagemaker:' in capsys.readouterr().out
    executions = sm.list_pipeline_executions(PipelineName=config.pipeline.name)["PipelineExecutionSummaries"]
    arn = executions[0]["PipelineExecutionArn"]
    assert _retraining_parameters(serving, sm, arn) == {"ModelApprovalStatus": "PendingManualApproval"}
    [label] = _manifest(serving, _parameters(sm, arn)["HumanLabelsUri"])["labels"]
    assert (label["review_id"], label["label"], label["file"]) == ("rev0001", "motorcycle", "images/rev0001.png")


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
    started = [json.loads(deliveries[0].result)["pipeline_execution_arn"] for _, deliveries in fired]
    assert len(set(started)) == 2           # two events, two runs (each event's id is its own request token)
    assert _retraining_parameters(serving, sm, started[0]) == {"ModelApprovalStatus": "PendingManualApproval"}
    for name in ("every-five-minutes", "monday-3am"):
        events.disable_rule(Name=name)
    assert tick(datetime(2026, 12, 7, 3, 0, 1, tzinfo=UTC)) == []
