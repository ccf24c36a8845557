"""The SAM template: cfn-lint always; sam validate --lint with the SAM CLI that the README's test command
installs into .venv-sam (its dependencies clash with moto's, so it gets its own environment)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "inference_workflow" / "template.yaml"
CFN_LINT = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")


def _sam() -> str | None:
    project_sam = REPO / ".venv-sam" / "bin" / "sam"
    return os.environ.get("SAM_CLI") or (str(project_sam) if project_sam.exists() else shutil.which("sam"))


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
    wildcard = text.split('Resource: "*"')
    # PutMetricData has no resource type: "*" is the only form IAM accepts, so it is fenced by namespace instead
    assert len(wildcard) == 2 and wildcard[0].rstrip().endswith("Action: cloudwatch:PutMetricData")
    assert wildcard[1].lstrip().startswith("Condition:") and "cloudwatch:namespace: Scones/DriftMonitor" in wildcard[1]
    assert "Resource: '*'" not in text


needs_sam = pytest.mark.skipif(_sam() is None, reason="the SAM CLI is not installed (the README's test command "
                                                        "installs it into .venv-sam)")


def _sam_validate(template: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_sam(), "validate", "--lint", "--template", str(template), "--region", "us-east-1"],
                          capture_output=True, text=True, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})


@needs_sam
def test_sam_validate_lint_passes():
    result = _sam_validate(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_sam
def test_sam_validate_lint_catches_a_deliberate_error(tmp_path):
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Timeout: 300", "Timeout: 9000"))
    result = _sam_validate(broken)
    assert result.returncode != 0 and "9000" in result.stdout + result.stderr
