"""The local stack starts without the SageMaker SDK (~2 s to import): only building the
pipeline definition needs it."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_importing_the_local_stack_does_not_import_the_sagemaker_sdk():
    probe = ("import json, sys\n"
             "import local_runtime.stack, local_runtime.serve, local_runtime.provision\n"
             "print(json.dumps(sorted(name for name in sys.modules if name.split('.')[0] == 'sagemaker')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
