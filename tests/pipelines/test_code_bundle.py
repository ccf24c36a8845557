"""The Processing jobs run from the uploaded code bundle alone: whatever project code their
scripts import (the shared contracts included) must be in it."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from pipelines.scones.code_bundle import REPO_ROOT, code_bundle

FIRST_PARTY = ("scones_common", "processing", "pipelines", "inference_workflow", "local_runtime")
ENTRY_POINTS = ("processing.prepare_data", "processing.evaluate")


@pytest.mark.e2e
def test_bundle_holds_every_project_module_the_scripts_import(tmp_path):
    bundle = code_bundle()
    for path in bundle.files:
        target = tmp_path / path.relative_to(REPO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    probe = ("import importlib, json, sys\n"
             f"for name in {ENTRY_POINTS!r}: importlib.import_module(name)\n"
             "print(json.dumps({n: getattr(m, '__file__', None) for n, m in sys.modules.items()}))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout)
    project = {name: file for name, file in modules.items() if name.split(".")[0] in FIRST_PARTY}
    assert "scones_common.contracts.staged_data" in project
    outside = {name: file for name, file in project.items() if file and not file.startswith(str(tmp_path))}
    assert outside == {}
    assert not any(name.split(".")[0] == "sagemaker" for name in modules)
