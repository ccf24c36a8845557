"""Answers as AWS gives them, for clients we did not write (AWS CLI, boto3 waiters and paginators, the SDK):
each test here failed before its fix."""
import datetime
import json
import time

import pytest
from botocore.exceptions import ClientError

from local_runtime.moto_ext import pipeline_executions
from tests.builders import wait_until

FAIL_ONLY = {"Version": "2020-12-01", "Parameters": [],
             "PipelineExperimentConfig": {"ExperimentName": {"Get": "Execution.PipelineName"},
                                          "TrialName": {"Get": "Execution.PipelineExecutionId"}},
             "Steps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "stopped on purpose"}}]}


def _error(call) -> dict:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]


@pytest.fixture(scope="module")
def pipeline(local_stack):
    sm = local_stack.client("sagemaker")
    sm.create_pipeline(PipelineName="FidelityPipeline", PipelineDefinition=json.dumps(FAIL_ONLY),
                       RoleArn=local_stack.resources.role_arn)
    return sm, "FidelityPipeline"


def test_listing_works_after_a_restore_and_a_new_execution(local_stack, pipeline):
    sm, name = pipeline
    region = local_stack.aws.region
    arn = f"arn:aws:sagemaker:{region}:123456789012:pipeline/{name}/execution/restored0001"
    pipeline_executions.restore(region, [{       # what a restored run directory puts back
        "PipelineName": name, "PipelineExecutionArn": arn, "DisplayName": None, "Description": None,
        "Parameters": [], "Definition": json.dumps(FAIL_ONLY), "Status": "Succeeded", "FailureReason": None,
        "StartTime": time.time() - 60, "LastModifiedTime": time.time() - 50, "Record": None}])
    started = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    listed = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in listed][:2] == [started, arn]      # newest first
    assert sm.list_pipeline_executions(PipelineName=name, SortOrder="Ascending")["PipelineExecutionSummaries"]


def test_a_failed_execution_says_what_sagemaker_says_and_the_step_says_why(pipeline):
    sm, name = pipeline
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    described = wait_until(lambda: (d := sm.describe_pipeline_execution(PipelineExecutionArn=arn))
                           ["PipelineExecutionStatus"] == "Failed" and d, 20.0, "the execution to fail")
    assert described["FailureReason"] == "Step failure: One or multiple steps failed."
    step = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"][0]
    assert step["FailureReason"] == "stopped on purpose"
    assert described["PipelineExperimentConfig"] == {"ExperimentName": name.lower(), "TrialName": arn.rsplit("/", 1)[1]}


def test_an_unknown_pipeline_is_resource_not_found(local_stack):
    sm = local_stack.client("sagemaker")
    for call in (lambda: sm.describe_pipeline(PipelineName="no-such-pipeline"),
                 lambda: sm.list_pipeline_executions(PipelineName="no-such-pipeline"),
                 lambda: sm.describe_pipeline_execution(PipelineExecutionArn=(
                     "arn:aws:sagemaker:us-east-1:123456789012:pipeline/no-such-pipeline/execution/x"))):
        error = _error(call)
        assert error["Code"] == "ResourceNotFound" and error["Message"].endswith("does not exist.")


def test_a_step_that_depends_on_a_fail_step_is_refused(local_stack):
    sm = local_stack.client("sagemaker")
    definition = {**FAIL_ONLY, "Steps": [*FAIL_ONLY["Steps"], {"Name": "After", "Type": "Fail", "DependsOn": ["Stop"],
                                                                "Arguments": {"ErrorMessage": "never"}}]}
    error = _error(lambda: sm.create_pipeline(PipelineName="DependsOnFail", PipelineDefinition=json.dumps(definition),
                                              RoleArn=local_stack.resources.role_arn))
    assert error["Code"] == "ValidationException" and "depends on Fail step Stop" in error["Message"]
    assert not sm.list_pipelines(PipelineNamePrefix="DependsOnFail")["PipelineSummaries"]


def test_endpoint_variants_carry_their_weights(local_stack):
    described = local_stack.client("sagemaker").describe_endpoint(EndpointName=local_stack.config.endpoint.name)
    variant = described["ProductionVariants"][0]
    assert variant["CurrentWeight"] == variant["DesiredWeight"] == 1.0


def test_a_deleted_endpoint_stops_answering_at_once(local_stack):
    from tests.builders import solid_png
    from tests.local_stack import TRANSITION_SECONDS

    sm, runtime = local_stack.client("sagemaker"), local_stack.client("sagemaker-runtime")
    config = sm.describe_endpoint(EndpointName=local_stack.config.endpoint.name)["EndpointConfigName"]
    sm.create_endpoint(EndpointName="short-lived", EndpointConfigName=config)
    time.sleep(TRANSITION_SECONDS + 0.1)
    assert sm.describe_endpoint(EndpointName="short-lived")["EndpointStatus"] == "InService"
    runtime.invoke_endpoint(EndpointName="short-lived", ContentType="image/png", Body=solid_png(40))
    sm.delete_endpoint(EndpointName="short-lived")
    error = _error(lambda: runtime.invoke_endpoint(EndpointName="short-lived", ContentType="image/png",
                                                   Body=solid_png(40)))
    assert error["Code"] == "ValidationError" and "not found" in error["Message"]


# -- Step Functions ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def state_machine(local_stack):
    sfn = local_stack.client("stepfunctions")
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": True}}}
    arn = sfn.create_state_machine(name="fidelity-passes", definition=json.dumps(definition),
                                   roleArn=local_stack.resources.role_arn)["stateMachineArn"]
    return sfn, arn


def test_unnamed_executions_get_generated_names_and_both_start(state_machine):
    import uuid

    sfn, arn = state_machine
    first = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    second = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert first != second
    name = first.rsplit(":", 1)[1]
    uuid.UUID(name)
    assert sfn.describe_execution(executionArn=first)["name"] == name
    listed = {e["executionArn"]: e for e in sfn.list_executions(stateMachineArn=arn)["executions"]}
    assert listed[first]["name"] == name and listed[second]["name"] == second.rsplit(":", 1)[1]


def test_input_that_is_not_json_is_invalid_execution_input(state_machine):
    sfn, arn = state_machine
    error = _error(lambda: sfn.start_execution(stateMachineArn=arn, name="bad-input", input="{not json"))
    assert error["Code"] == "InvalidExecutionInput"
    assert error["Message"].startswith("Invalid State Machine Execution Input: ")


def test_execution_history_honours_reverse_order_and_paging(state_machine):
    sfn, arn = state_machine
    execution = sfn.start_execution(stateMachineArn=arn, name="history")["executionArn"]
    wait_until(lambda: sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED", 20.0,
               "the execution to succeed")
    every = sfn.get_execution_history(executionArn=execution)["events"]
    ids = [e["id"] for e in every]
    assert ids == sorted(ids) and len(ids) > 3
    newest = sfn.get_execution_history(executionArn=execution, reverseOrder=True, maxResults=2)
    assert [e["id"] for e in newest["events"]] == ids[::-1][:2] and newest["nextToken"]
    paged = [e["id"] for page in sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution, PaginationConfig={"PageSize": 2}) for e in page["events"]]
    assert paged == ids


# -- CloudWatch --------------------------------------------------------------------------------------------

def test_get_metric_data_answers_percentiles_and_metric_math(local_stack):
    cw = local_stack.client("cloudwatch")
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    cw.put_metric_data(Namespace="Fidelity", MetricData=[
        {"MetricName": "Latency", "Value": float(v), "Timestamp": now} for v in range(1, 101)])
    metric = {"Namespace": "Fidelity", "MetricName": "Latency"}
    window = {"StartTime": now - datetime.timedelta(minutes=5), "EndTime": now + datetime.timedelta(minutes=5)}
    results = cw.get_metric_data(MetricDataQueries=[
        {"Id": "p", "MetricStat": {"Metric": metric, "Period": 600, "Stat": "p99"}},
        {"Id": "n", "MetricStat": {"Metric": metric, "Period": 600, "Stat": "SampleCount"}, "ReturnData": False},
        {"Id": "s", "MetricStat": {"Metric": metric, "Period": 600, "Stat": "Sum"}, "ReturnData": False},
        {"Id": "mean", "Expression": "s / n"},
        {"Id": "iqm", "MetricStat": {"Metric": metric, "Period": 600, "Stat": "IQM"}}], **window)["MetricDataResults"]
    by_id = {r["Id"]: r for r in results}
    assert set(by_id) == {"p", "mean", "iqm"}
    assert by_id["p"]["Values"] == [99.0] and by_id["p"]["Label"] == "Latency p99"
    assert by_id["mean"]["Values"] == [50.5]
    assert by_id["iqm"]["Values"] == [50.5]
    error = _error(lambda: cw.get_metric_data(MetricDataQueries=[
        {"Id": "m", "MetricStat": {"Metric": metric, "Period": 600, "Stat": "Sum"}, "ReturnData": False},
        {"Id": "e", "Expression": "ANOMALY_DETECTION_BAND(m)"}], **window))
    assert error["Code"] == "ValidationError" and "ANOMALY_DETECTION_BAND" in error["Message"]
