import pytest

from local_runtime.pipeline.expressions import Context, ExpressionError, json_get, referenced_steps, resolve, split_path


@pytest.fixture
def ctx():
    return Context(
        parameters={"Epochs": 5, "Threshold": 0.9},
        execution={"PipelineExecutionId": "abc123"},
        step_properties={"Prep": {"ProcessingOutputConfig": {"Outputs": [
            {"OutputName": "staged", "S3Output": {"S3Uri": "s3://b/staged"}}]}}},
        property_files={"Eval": {"Report": {"metrics": {"accuracy": {"value": 0.95}}, "list": [1, 2]}}})


def test_split_path_handles_names_and_indexes():
    assert split_path("Outputs['staged'].S3Output.S3Uri") == ["Outputs", "staged", "S3Output", "S3Uri"]
    assert split_path('A[0].B["x y"]') == ["A", 0, "B", "x y"]


def test_get_parameter_execution_and_step(ctx):
    assert resolve({"Get": "Parameters.Epochs"}, ctx) == 5
    assert resolve({"Get": "Execution.PipelineExecutionId"}, ctx) == "abc123"
    assert resolve({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['staged'].S3Output.S3Uri"}, ctx) == "s3://b/staged"


def test_join_stringifies(ctx):
    value = {"Std:Join": {"On": "/", "Values": [{"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['staged'].S3Output.S3Uri"},
                                                 "train", {"Get": "Parameters.Epochs"}]}}
    assert resolve(value, ctx) == "s3://b/staged/train/5"


def test_json_get_on_property_file(ctx):
    value = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "metrics.accuracy.value"}}
    assert resolve(value, ctx) == 0.95
    assert json_get({"a": [{"b": 1}]}, "a[0].b") == 1


def test_nested_structures_resolve(ctx):
    assert resolve({"x": [{"Get": "Parameters.Threshold"}, "y"]}, ctx) == {"x": [0.9, "y"]}


@pytest.mark.parametrize("expression, message", [
    ({"Get": "Parameters.Nope"}, "not declared"),
    ({"Get": "Steps.Later.Foo"}, "has not run"),
    ({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['other']"}, "no list item"),
    ({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Missing"}, "Path": "a"}}, "was not produced"),
    ({"Get": "Execution.Unknown"}, "unknown execution variable"),
])
def test_errors_are_named(ctx, expression, message):
    with pytest.raises(ExpressionError, match=message):
        resolve(expression, ctx)


def test_referenced_steps():
    tree = {"a": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, "b": [{"Get": "Parameters.X"}],
            "c": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.R"}, "Path": "x"}}}
    assert referenced_steps(tree) == {"Train", "Eval"}


def test_lambda_output_parameters_resolve_to_their_values():
    ctx = Context(parameters={}, execution={}, step_properties={"Find": {"OutputParameters": [
        {"Name": "registered", "Value": "false"}, {"Name": "model_package_arn", "Value": ""}]}})
    assert resolve({"Get": "Steps.Find.OutputParameters['registered']"}, ctx) == "false"
