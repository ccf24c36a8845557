"""Acknowledged means saved: ``scones-local serve`` killed with SIGKILL right after acknowledged changes
comes back with all of them (no Ctrl-C, no save on exit)."""
import os
import signal
import subprocess
import time

import pytest

from inference_workflow.deploy_model.lambda_function import live_package_arn
from local_runtime.aws import LocalAws
from local_runtime.serve import ENV_FILE, read_env_file
from local_runtime.settings import load_local_config
from pipelines.registry import cli as registry_cli
from tests.builders import write_tiny_model_artifact
from tests.console import start_script

pytestmark = pytest.mark.e2e
FAST = {"SCONES__DEPLOYMENT__WAIT_SECONDS": "0", "SCONES__ENDPOINT__LOCAL_TRANSITION_SECONDS": "0.3"}
KEYS = ["p/f/", "p/f/a.txt", "/abs/x", "../../../../x", "a", "a/b"]


def _serve(run_dir, monkeypatch):
    """serve in a subprocess, and this process's environment pointed at it (its endpoint and its key)."""
    process = start_script("scones-local", "serve", "--run-dir", str(run_dir), env=FAST,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = process.stdout.readline()
    assert line.startswith("Local AWS APIs at"), line
    env = read_env_file(run_dir / ENV_FILE)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return process, env, LocalAws.from_environment(env)


def test_an_approval_and_every_other_acknowledged_change_survive_kill_9(tmp_path, monkeypatch):
    config = load_local_config(environ=FAST)
    run_dir = tmp_path / "run"
    process, env, aws = _serve(run_dir, monkeypatch)
    try:
        s3, sm, events = aws.client("s3"), aws.client("sagemaker"), aws.client("events")
        artifact = write_tiny_model_artifact(tmp_path / "model" / "model.tar.gz")
        key = f"{config.storage.prefix}/models/tiny/model.tar.gz"
        s3.upload_file(str(artifact), config.storage.bucket, key)
        sm.create_model_package_group(ModelPackageGroupName=config.registry.model_package_group)
        package = sm.create_model_package(
            ModelPackageGroupName=config.registry.model_package_group, ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={"Containers": [{"Image": "image-classification",
                                                    "ModelDataUrl": f"s3://{config.storage.bucket}/{key}"}],
                                    "SupportedContentTypes": ["image/png"],
                                    "SupportedResponseMIMETypes": ["application/json"]})["ModelPackageArn"]
        assert registry_cli.main(["--environment", "local", "approve", "1", "--reason", "survives kill -9"]) == 0
        s3.create_bucket(Bucket="users-own")
        for name in KEYS:
            s3.put_object(Bucket="users-own", Key=name, Body=name.encode())
        events.put_rule(Name="users-rule", ScheduleExpression="rate(1 day)", State="DISABLED")
        deadline = time.monotonic() + 60
        while live_package_arn(sm, config.endpoint.name) != package and time.monotonic() < deadline:
            time.sleep(0.2)
        assert live_package_arn(sm, config.endpoint.name) == package        # the switch was acknowledged
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    process, env, aws = _serve(run_dir, monkeypatch)
    try:
        sm, s3 = aws.client("sagemaker"), aws.client("s3")
        described = sm.describe_model_package(ModelPackageName=package)
        assert described["ModelApprovalStatus"] == "Approved"
        assert described["ApprovalDescription"].endswith("survives kill -9")
        assert live_package_arn(sm, config.endpoint.name) == package
        assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="users-own")["Contents"]) == sorted(KEYS)
        assert aws.client("events").describe_rule(Name="users-rule")["State"] == "DISABLED"
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and not str(p).startswith(str(tmp_path / "run"))
               and not str(p).startswith(str(tmp_path / "model"))]
    assert outside == []
