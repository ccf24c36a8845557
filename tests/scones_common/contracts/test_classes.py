import ast
from pathlib import Path

from scones_common.contracts.classes import CLASS_NAMES, class_name

LAMBDAS = Path(__file__).resolve().parents[3] / "inference_workflow"


def _module_constant(path: Path, name: str):
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def test_class_ids_are_positions():
    assert CLASS_NAMES == ("bicycle", "motorcycle")
    assert [class_name(i) for i in range(3)] == ["bicycle", "motorcycle", "2"]
    assert class_name(-1) == "-1"


def test_lambda_copies_equal_the_contract():
    """The Lambdas ship alone (their folder is the zip), so each keeps its own copy of the class names."""
    copies = {path.parent.name: _module_constant(path, "CLASS_NAMES") for path in LAMBDAS.glob("*/lambda_function.py")}
    holding = {name: value for name, value in copies.items() if value is not None}
    assert holding, "no Lambda holds CLASS_NAMES any more: drop this test or the contract"
    assert holding == {name: CLASS_NAMES for name in holding}
