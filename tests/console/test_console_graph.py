"""The pipeline graph (console/graph.py) is pure: definition JSON and step statuses in, SVG out."""
import xml.etree.ElementTree as ET

from console.graph import Edge, layout, pipeline_edges, pipeline_steps, render_svg, transitive_reduction

SVG = "{http://www.w3.org/2000/svg}"
DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [{"Name": "Epochs", "Type": "Integer", "DefaultValue": 3}],
    "Steps": [
        {"Name": "Prepare", "Type": "Processing", "Arguments": {}},
        {"Name": "Train", "Type": "Training",
         "Arguments": {"Input": {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
                       "Epochs": {"Get": "Parameters.Epochs"}}},
        {"Name": "Evaluate", "Type": "Processing",
         "Arguments": {"Model": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
                       "Labels": {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"}},
         "PropertyFiles": [{"PropertyFileName": "Report", "OutputName": "evaluation", "FilePath": "evaluation.json"}]},
        {"Name": "Check", "Type": "Condition", "Arguments": {
            "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": {"Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Report"}, "Path": "accuracy"}}, "RightValue": 0.8}],
            "IfSteps": [{"Name": "Register", "Type": "RegisterModel",
                         "Arguments": {"Model": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}},
                        {"Name": "Deploy", "Type": "Lambda", "DependsOn": ["Register"], "Arguments": {}}],
            "ElseSteps": [{"Name": "TooLow", "Type": "Fail", "Arguments": {"ErrorMessage": "too low"}}]}},
    ],
}


def test_steps_include_condition_branches_and_edges_come_from_references_and_depends_on():
    assert list(pipeline_steps(DEFINITION)) == ["Prepare", "Train", "Evaluate", "Check", "Register", "Deploy", "TooLow"]
    edges = set(pipeline_edges(DEFINITION))
    assert Edge("Prepare", "Train", "data") in edges and Edge("Prepare", "Evaluate", "data") in edges
    assert Edge("Evaluate", "Check", "data") in edges                        # JsonGet on a property file
    assert Edge("Check", "Register", "if") in edges and Edge("Check", "TooLow", "else") in edges
    assert Edge("Register", "Deploy", "depends") in edges and Edge("Train", "Register", "data") in edges
    assert not any(e.source == e.target for e in edges)


def test_the_picture_drops_edges_a_longer_path_implies():
    reduced = set(transitive_reduction(pipeline_edges(DEFINITION)))
    assert Edge("Prepare", "Evaluate", "data") not in reduced and Edge("Train", "Register", "data") not in reduced
    assert Edge("Check", "Deploy", "if") not in reduced and Edge("Register", "Deploy", "depends") in reduced


def test_layout_puts_a_step_below_its_deepest_input():
    boxes, _ = layout(DEFINITION)
    assert [boxes[n].row for n in ("Prepare", "Train", "Evaluate", "Check", "Register", "Deploy", "TooLow")] == \
        [0, 1, 2, 3, 4, 5, 4]
    assert boxes["Register"].column == 0 and boxes["TooLow"].column == 1


def test_svg_colours_steps_by_status_and_links_them():
    svg = render_svg(DEFINITION, {"Prepare": "Succeeded", "Train": "Failed", "Evaluate": "Executing"},
                     {"Train": "/jobs/training/t-1?x=1&y=2"}, cached={"Prepare"})
    root = ET.fromstring(svg)                                   # well-formed XML, so it inlines safely
    groups = {g.get("data-step"): g for g in root.iter(f"{SVG}g")}
    assert set(groups) == set(pipeline_steps(DEFINITION))
    assert groups["Prepare"].get("class") == "step step-succeeded" and "cached" in ET.tostring(groups["Prepare"]).decode()
    assert groups["Train"].get("class") == "step step-failed" and groups["Register"].get("class") == "step step-notrun"
    links = [a.get("href") for a in root.iter(f"{SVG}a")]
    assert links == ["/jobs/training/t-1?x=1&y=2"]              # escaped in the markup, intact once parsed


def test_names_are_escaped_and_an_empty_definition_says_so():
    hostile = {"Steps": [{"Name": "<script>x</script>", "Type": "Fail", "Arguments": {}}]}
    svg = render_svg(hostile, {})
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "no steps" in render_svg({"Steps": []})
