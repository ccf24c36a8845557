import pytest

from local_runtime.pipeline.graph import DefinitionError, collect_steps, execution_order


def _step(name, kind="Processing", depends=(), arguments=None):
    spec = {"Name": name, "Type": kind, "Arguments": arguments or {}}
    if depends:
        spec["DependsOn"] = list(depends)
    return spec


def test_order_follows_data_references_and_depends_on():
    definition = {"Steps": [
        _step("Evaluate", arguments={"x": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}),
        _step("Train", "Training", arguments={"x": {"Get": "Steps.Prepare.ProcessingOutputConfig"}}),
        _step("Prepare"),
        _step("Report", depends=["Evaluate"]),
    ]}
    assert execution_order(collect_steps(definition)) == ["Prepare", "Train", "Evaluate", "Report"]


def test_branch_steps_come_after_their_condition():
    condition = {"Name": "Check", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": {"Get": "Steps.Evaluate.X"}, "RightValue": 1}],
        "IfSteps": [_step("Register", "RegisterModel"), _step("Deploy", "Lambda", ["Register"],
                                                              {"arn": {"Get": "Steps.Register.ModelPackageArn"}})],
        "ElseSteps": [_step("Stop", "Fail")]}}
    nodes = collect_steps({"Steps": [condition, _step("Evaluate")]})
    assert execution_order(nodes) == ["Evaluate", "Check", "Register", "Stop", "Deploy"]
    assert nodes["Deploy"].branch_of == "Check" and nodes["Check"].depends_on == {"Evaluate"}


def test_cycle_is_reported():
    definition = {"Steps": [_step("A", depends=["B"]), _step("B", depends=["A"])]}
    with pytest.raises(DefinitionError, match="cycle"):
        execution_order(collect_steps(definition))


def test_unknown_dependency_and_duplicate_names():
    with pytest.raises(DefinitionError, match="unknown steps"):
        collect_steps({"Steps": [_step("A", depends=["Ghost"])]})
    with pytest.raises(DefinitionError, match="used twice"):
        collect_steps({"Steps": [_step("A"), _step("A")]})
