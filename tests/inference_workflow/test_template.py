"""The SAM template: cfn-lint always, sam validate --lint when the SAM CLI is installed (CI installs it)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[2] / "inference_workflow" / "template.yaml"
CFN_LINT = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")


def _sam() -> str | None:
    return os.environ.get("SAM_CLI") or shutil.which("sam")


def test_cfn_lint_passes():
    result = subprocess.run([CFN_LINT, str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_deliberate_error(tmp_path):
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Handler: deployer.lambda_handler", "Handlr: deployer.lambda_handler"))
    result = subprocess.run([CFN_LINT, str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "Handlr" in result.stdout


def test_least_privilege_invoke_endpoint():
    text = TEMPLATE.read_text()
    assert "sagemaker:InvokeEndpoint" in text and "endpoint/${EndpointName}" in text
    assert '"*"' not in text and "Resource: '*'" not in text


@pytest.mark.skipif(_sam() is None, reason="the SAM CLI is not installed (.ci/run installs it into .venv-sam)")
def test_sam_validate_lint():
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run([_sam(), "validate", "--lint", "--template", str(TEMPLATE), "--region", "us-east-1"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = TEMPLATE.parent / ".broken-template.yaml"
    try:
        broken.write_text(TEMPLATE.read_text().replace("!GetAtt FilterInferencesFunction.Arn", "!GetAtt FilterInferencesFunctionTypo.Arn"))
        result = subprocess.run([_sam(), "validate", "--lint", "--template", str(broken), "--region", "us-east-1"],
                                capture_output=True, text=True, env=env)
        assert result.returncode != 0
    finally:
        broken.unlink(missing_ok=True)
