"""``serve``: the stack comes up with the saved state, CLIs reach it, and the state is saved on stop."""
import http.cookiejar
import json
import re
import threading
import time
import urllib.error
import urllib.request

import pytest

from inference_workflow import review as review_cli
from inference_workflow.review import ReviewStore, list_reviews
from local_runtime.serve import CONSOLE_URL_VARIABLE, ENV_FILE, read_env_file, serve
from local_runtime.settings import load_local_config
from local_runtime.state import load_documents
from pipelines.registry import cli as registry_cli
from pipelines.scones import cli
from scones_common.config import ENVIRONMENT_VARIABLE
from tests.builders import FINE_NAMES, make_cifar_archive, solid_png
from tests.local_stack import deploy_tiny_model

pytestmark = pytest.mark.e2e      # starts serve, a subprocess stack or a whole pipeline


def _open_console(url: str, path: str) -> tuple[int, str]:
    """Logs in with the console URL (a cookie, as a browser), then opens ``path``; without the token: 401."""
    base = url.split("?")[0].rstrip("/")
    try:
        urllib.request.urlopen(base + path, timeout=10)
        raise AssertionError("the console answered without its token")
    except urllib.error.HTTPError as refused:
        assert refused.code == 401
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    browser.open(url, timeout=10).read()
    with browser.open(base + path, timeout=30) as response:
        return response.status, response.read().decode()


def _request_review(stack) -> str:
    """A grey image, below the threshold on the tiny model: its execution waits for a person."""
    bucket, sfn = stack.config.storage.bucket, stack.client("stepfunctions")
    stack.client("s3").put_object(Bucket=bucket, Key="incoming/grey.png", Body=solid_png(128))
    arn = sfn.start_execution(stateMachineArn=stack.resources.state_machine_arn, input=json.dumps(
        {"s3_bucket": bucket, "s3_key": "incoming/grey.png"}))["executionArn"]
    store, deadline = ReviewStore.of(stack.config), time.monotonic() + 20
    while not (pending := list_reviews(stack.client("s3"), sfn, store)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p.record["execution_arn"] for p in pending] == [arn]
    return pending[0].review_id


def test_serve_restores_exposes_and_saves(tmp_path, capsys):
    config = load_local_config(environ={})
    run_dir = tmp_path / "run"
    stop, seen = threading.Event(), {}

    def first_session(stack, env_file):
        seen["env"] = env_file.read_text()
        seen["mode"] = env_file.stat().st_mode & 0o777
        seen["package"] = deploy_tiny_model(stack, tmp_path / "model")
        seen["console_url"] = read_env_file(env_file)[CONSOLE_URL_VARIABLE]
        seen["console"] = _open_console(seen["console_url"], "/registry")
        seen["review"] = _request_review(stack)
        stop.set()

    serve(config, run_dir, stop, on_ready=first_session)
    assert seen["mode"] == 0o600                       # the console's login token is in it
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{43}", seen["console_url"])
    status, page = seen["console"]
    assert status == 200 and "Model registry" in page and "PendingManualApproval" not in page and ">live<" in page
    with pytest.raises(OSError):                       # the console stopped with serve
        urllib.request.urlopen(seen["console_url"], timeout=5)
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in seen["env"]
    assert "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME" in seen["env"]
    assert f"export {ENVIRONMENT_VARIABLE}=local\n" in seen["env"]    # what the project's CLIs read
    assert not (run_dir / ENV_FILE).exists()
    packages = load_documents(run_dir / "state", "sagemaker.model-packages")
    assert [p["ModelPackageArn"] for p in packages] == [seen["package"]]

    stop.clear()

    def second_session(stack, env_file):
        seen["live"] = registry_cli.main(["--environment", "local", "live"])
        seen["live_out"] = capsys.readouterr().out.strip()
        seen["listed"] = review_cli.main(["--environment", "local", "list"]), capsys.readouterr().out
        seen["answered"] = review_cli.main(["--environment", "local", "answer", seen["review"], "motorcycle",
                                            "--reviewer", "ana"]), capsys.readouterr().out
        labels = stack.client("s3").list_objects_v2(Bucket=config.storage.bucket,
                                                    Prefix=f"{config.storage.prefix}/human-labels/")
        seen["labels"] = [o["Key"] for o in labels.get("Contents", [])]
        stop.set()

    capsys.readouterr()
    serve(config, run_dir, stop, on_ready=second_session)
    assert seen["live"] == 0 and seen["live_out"] == seen["package"]
    # the review asked before the restart: still listed (its execution is gone locally) and still answered
    code, listed = seen["listed"]
    assert code == 0 and seen["review"] in listed and "gone" in listed and "1 waiting for review" in listed
    code, answered = seen["answered"]
    assert code == 0 and f"review {seen['review']}: motorcycle" in answered
    assert seen["labels"] == [f"{config.storage.prefix}/human-labels/{seen['review']}.json"]


def test_pipelines_executions_steps_and_jobs_survive_a_restart(tmp_path):
    """A cheap execution (it fails in PrepareData: the archive has no motorcycles) run through serve."""
    names = list(FINE_NAMES)
    names[48] = "scooter"
    archive = make_cifar_archive(tmp_path / "no-motorcycles.tar.gz", fine_names=names)
    config = load_local_config(environ={})
    run_dir, stop, seen = tmp_path / "run", threading.Event(), {}

    def first_session(stack, env_file):
        seen["code"] = cli.run_pipeline(["--environment", "local", "--data-source", str(archive), "--wait",
                                         "--poll-seconds", "0.2"])
        sm = stack.client("sagemaker")
        seen["executions"] = sm.list_pipeline_executions(PipelineName=config.pipeline.name)["PipelineExecutionSummaries"]
        stop.set()

    serve(config, run_dir, stop, on_ready=first_session)
    assert seen["code"] == 1 and len(seen["executions"]) == 1
    arn = seen["executions"][0]["PipelineExecutionArn"]
    stop.clear()

    def second_session(stack, env_file):
        sm = stack.client("sagemaker")
        seen["pipelines"] = [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]
        seen["again"] = sm.list_pipeline_executions(PipelineName=config.pipeline.name)["PipelineExecutionSummaries"]
        seen["steps"] = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
        job = seen["steps"][0]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1]
        seen["job"] = sm.describe_processing_job(ProcessingJobName=job)
        stop.set()

    serve(config, run_dir, stop, on_ready=second_session)
    assert seen["pipelines"] == [config.pipeline.name]
    assert [(e["PipelineExecutionArn"], e["PipelineExecutionStatus"]) for e in seen["again"]] == [(arn, "Failed")]
    assert [(s["StepName"], s["StepStatus"]) for s in seen["steps"]] == [("PrepareData", "Failed")]
    assert seen["job"]["ProcessingJobStatus"] == "Failed" and "MissingClassesError" in seen["job"]["FailureReason"]
