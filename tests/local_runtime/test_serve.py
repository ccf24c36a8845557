"""``serve``: the stack comes up with the saved state, CLIs reach it, and the state is saved on stop."""
import json
import threading

from local_runtime.serve import ENV_FILE, serve
from pipelines.registry import cli as registry_cli
from scones_common.config import ENVIRONMENT_VARIABLE, load_config
from tests.local_stack import deploy_tiny_model


def test_serve_restores_exposes_and_saves(tmp_path, capsys):
    config = load_config(environment="local", environ={})
    run_dir = tmp_path / "run"
    stop, seen = threading.Event(), {}

    def first_session(stack, env_file):
        seen["env"] = env_file.read_text()
        seen["package"] = deploy_tiny_model(stack, tmp_path / "model")
        stop.set()

    serve(config, run_dir, stop, on_ready=first_session)
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in seen["env"]
    assert "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME" in seen["env"]
    assert f"export {ENVIRONMENT_VARIABLE}=local\n" in seen["env"]    # what the project's CLIs read
    assert not (run_dir / ENV_FILE).exists()
    snapshot = json.loads((run_dir / "state" / "sagemaker.json").read_text())
    assert [p["ModelPackageArn"] for p in snapshot["packages"]] == [seen["package"]]

    stop.clear()

    def second_session(stack, env_file):
        seen["live"] = registry_cli.main(["--environment", "local", "live"])
        stop.set()

    capsys.readouterr()
    serve(config, run_dir, stop, on_ready=second_session)
    assert seen["live"] == 0 and capsys.readouterr().out.strip() == seen["package"]
