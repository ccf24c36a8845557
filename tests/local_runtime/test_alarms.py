"""Alarm semantics as CloudWatch documents them (pure), and the evaluator on the real local stack."""
import json
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest

from local_runtime.alarms import UnsupportedAlarmError, combine, decide, wait_for_state
from local_runtime.settings import load_local_config
from local_runtime.stack import deploy_artifact, local_stack
from tests.builders import solid_png, write_tiny_model_artifact


def _alarm(**overrides):
    return {"AlarmName": "a", "ComparisonOperator": "GreaterThanThreshold", "Threshold": 0.5, "EvaluationPeriods": 3,
            "Statistic": "Average", "Period": 10, "StateValue": "OK", **overrides}


@pytest.mark.parametrize("values, overrides, state", [
    ([0.9, 0.9, 0.9], {}, "ALARM"),
    ([0.9, 0.1, 0.9], {}, "OK"),                                         # M defaults to N: 3 of 3 needed
    ([0.9, 0.1, 0.9], {"DatapointsToAlarm": 2}, "ALARM"),                # 2 out of 3
    ([0.5, 0.5, 0.5], {}, "OK"),                                         # not greater than
    ([0.5, 0.5, 0.5], {"ComparisonOperator": "GreaterThanOrEqualToThreshold"}, "ALARM"),
    ([0.1, 0.1, 0.1], {"ComparisonOperator": "LessThanThreshold"}, "ALARM"),
    ([None, None, None], {}, "INSUFFICIENT_DATA"),                       # TreatMissingData missing (default)
    ([None, None, None], {"TreatMissingData": "notBreaching"}, "OK"),
    ([None, None, None], {"TreatMissingData": "breaching"}, "ALARM"),
    ([None, None, None], {"TreatMissingData": "ignore", "StateValue": "ALARM"}, "ALARM"),
    ([None, 0.9, None], {"TreatMissingData": "breaching"}, "ALARM"),
    ([None, 0.9, None], {"TreatMissingData": "notBreaching"}, "OK"),
])
def test_decide(values, overrides, state):
    assert decide(_alarm(**overrides), values).state == state


def test_the_reason_is_worded_as_cloudwatch_words_it():
    alarm = _alarm(EvaluationPeriods=1, Threshold=0.05)
    assert decide(alarm, [0.5]).reason == ("Threshold Crossed: 1 out of the last 1 datapoints [0.5] was greater than "
                                           "the threshold (0.05) (minimum 1 datapoint for OK -> ALARM transition).")
    assert "0 out of the last 1 datapoints [0] were greater than the threshold (0.05)" in decide(alarm, [0.0]).reason


def test_average_combines_partial_datapoints_exactly():
    points = [{"Sum": 3.0, "SampleCount": 10.0}, {"Sum": 0.0, "SampleCount": 10.0}]
    assert combine(points, "Average") == pytest.approx(0.15) and combine([], "Average") is None
    assert combine([{"Maximum": 2.0}, {"Maximum": 5.0}], "Maximum") == 5.0


def test_unsupported_comparisons_are_named():
    with pytest.raises(UnsupportedAlarmError, match="LessThanLowerOrGreaterThanUpperThreshold"):
        decide(_alarm(ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold"), [1.0])


@pytest.fixture(scope="module")
def failing_stack(tmp_path_factory):
    """A stack whose endpoint serves a model that loads but fails every invocation."""
    work = tmp_path_factory.mktemp("failing")
    with ExitStack() as exits:
        stack = exits.enter_context(local_stack(load_local_config(environ={}), work, 0.2))
        deploy_artifact(stack, write_tiny_model_artifact(work / "model.tar.gz", graph_size=16), "tiny/failing")
        yield stack


def test_endpoint_metrics_reach_cloudwatch_and_trip_the_template_alarm(failing_stack):
    """Failed invocations (Invocation5XXErrors) through the real endpoint put the template's error-rate
    alarm in ALARM; its state-change event reaches a matching rule's Lambda target."""
    stack = failing_stack
    events = stack.client("events")
    alarm_name = f"{stack.config.endpoint.name}-invocation-5xx-rate"
    events.put_rule(Name="alarm-watch", State="ENABLED", EventPattern=json.dumps({
        "source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [alarm_name], "state": {"value": ["ALARM"]}}}))
    filter_arn = stack.resources.functions["FilterInferencesFunctionArn"]
    events.put_targets(Rule="alarm-watch", Targets=[{"Id": "t", "Arn": filter_arn}])
    runtime = stack.client("sagemaker-runtime")
    endpoint = stack.config.endpoint.name
    for _ in range(5):
        with pytest.raises(runtime.exceptions.ModelError, match=r"server error \(500\)"):
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="image/png", Body=solid_png(200))
    stack.server.metrics.flush()
    now = datetime.now(UTC)
    points = stack.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=now - timedelta(seconds=60), EndTime=now + timedelta(seconds=1), Period=60,
        Statistics=["Sum", "SampleCount"])["Datapoints"]
    assert sum(p["Sum"] for p in points) == 5
    assert wait_for_state(stack.client("cloudwatch"), alarm_name, "ALARM", timeout=30) < 25
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        changes = [c for c in stack.alarms.changes if c[0] == alarm_name and c[1] == "ALARM"]
        if changes:
            break
        time.sleep(0.1)
    deliveries = changes[-1][2]
    assert [d.rule for d in deliveries] == ["alarm-watch"] and deliveries[0].arn == filter_arn
