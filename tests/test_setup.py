"""setup.py's console scripts point at functions that exist (a renamed module breaks them silently)."""
import ast
import importlib
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[1] / "setup.py"


def _console_scripts() -> dict[str, str]:
    for node in ast.walk(ast.parse(SETUP.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entry_points = ast.literal_eval(node.value)
            return dict(line.replace(" ", "").split("=", 1) for line in entry_points["console_scripts"])
    raise AssertionError("setup.py declares no entry_points")


def test_the_workflow_test_script_is_declared():
    assert _console_scripts()["scones-workflow-test"] == "inference_workflow.executions:main"


@pytest.mark.parametrize("script, target", sorted(_console_scripts().items()))
def test_console_script_target_is_callable(script, target):
    module, function = target.split(":")
    assert callable(getattr(importlib.import_module(module), function)), script
