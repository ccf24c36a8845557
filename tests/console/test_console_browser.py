"""The console in a real browser (Chromium driven by Playwright), started by ``scones-local serve`` itself.

One serve for the module: v1 of a tiny model serving, an execution that fails in PrepareData (cheap, and
it leaves a processing job with a log), v2 registered PendingManualApproval on purpose (the local
config approves automatically) and a little traffic. The browser logs in with SCONES_CONSOLE_URL, opens
every page, approves v2 with a reason and sees the endpoint start its canary; no page may log a console
error or throw.
"""
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from local_runtime.serve import CONSOLE_URL_VARIABLE, ENV_FILE, read_env_file
from local_runtime.stack import deploy_artifact
from tests.builders import FINE_NAMES, make_cifar_archive, solid_png, write_tiny_model_artifact
from tests.local_stack import Serving, deploy_tiny_model

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"


def _browser_available() -> None:
    """Fails (never skips) with what to install: a silent skip would hide that the suite did not run."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("playwright is not installed: pip install -c constraints.txt -e '.[dev]' (playwright 1.65.x)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium "
                    "(browser downloads with 'playwright install' are not used)")


def _evaluation_dir(path: Path) -> Path:
    from processing.evaluate import score

    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 80)
    confidence = rng.uniform(0.55, 1.0, 80)
    predicted = np.where(rng.uniform(size=80) < 0.9, truth, 1 - truth)
    probabilities = np.where(predicted[:, None] == np.arange(2), confidence[:, None], 1 - confidence[:, None])
    path.mkdir(parents=True)
    (path / "evaluation.json").write_text(json.dumps(score(truth, probabilities, 0.93)))
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    _browser_available()
    from pipelines.scones import cli

    work = tmp_path_factory.mktemp("console-browser")
    names = list(FINE_NAMES)
    names[48] = "scooter"
    broken = make_cifar_archive(work / "no-motorcycles.tar.gz", fine_names=names)
    with Serving(work / "run") as serving:
        stack = serving.stack
        url = read_env_file(work / "run" / ENV_FILE)[CONSOLE_URL_VARIABLE]
        deploy_tiny_model(stack, work / "v1")
        assert cli.run_pipeline(["--environment", "local", "--data-source", str(broken), "--wait",
                                 "--poll-seconds", "0.2"]) == 1
        pending = deploy_artifact(stack, write_tiny_model_artifact(work / "v2" / "model.tar.gz", inverted=True),
                                  "tiny/browser-v2", "PendingManualApproval", _evaluation_dir(work / "evaluation"))
        runtime = stack.client("sagemaker-runtime")
        for value in (255, 0, 128, 240, 30, 140):
            runtime.invoke_endpoint(EndpointName=stack.config.endpoint.name, ContentType="image/png",
                                    Body=solid_png(value))
        yield stack, url, pending, work


@pytest.fixture(scope="module")
def browser(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A logged-out page that records every console error and uncaught exception."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("console", lambda message: page.problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("response", lambda response: page.problems.append(f"HTTP {response.status} {response.url}")
            if response.status >= 400 else None)
    yield page
    context.close()


def _login(page, url):
    page.goto(url)
    assert "token=" not in page.url and page.url.endswith("/pipelines")    # the token left the address bar


def test_without_the_token_the_browser_gets_a_readable_refusal(served, browser):
    _, url, _, _ = served
    context = browser.new_context()
    response = context.request.get(url.split("?")[0] + "registry")
    assert response.status == 401 and "login token" in response.text()
    context.close()


def test_every_page_opens_without_console_errors(served, page):
    stack, url, _, _ = served
    _login(page, url)
    assert page.locator("h1").inner_text() == "Pipelines"
    page.locator("table.grid a").first.click()
    assert page.locator("svg.pipeline-graph").is_visible()
    assert page.locator("svg.pipeline-graph g.step-failed").count() == 1
    page.locator('svg.pipeline-graph g[data-step="PrepareData"]').click()     # the box opens its job
    page.wait_for_url(re.compile(r"/jobs/processing/"))
    assert "MissingClassesError" in page.locator("dl.facts").inner_text()
    for path, heading in (("/registry", "Model registry"), ("/endpoint", "Endpoint"),
                          ("/captures", "Captures & drift"), ("/review", "Human review")):
        page.goto(url.split("?")[0].rstrip("/") + path)
        assert page.locator("h1").inner_text().startswith(heading), path
    assert page.locator("text=No review is waiting").count() == 1
    page.goto(url.split("?")[0] + "captures")
    assert page.locator("figure.capture img").count() == 6
    page.goto(url.split("?")[0] + "registry/compare?a=1&b=2")
    assert page.locator("tr.differs").count() >= 3     # v1 has no evaluation: no curves to overlay
    assert page.problems == []


def test_a_reviewer_answers_a_waiting_image_in_the_browser_and_the_execution_ends_with_the_label(served, page):
    """Before the approval below: v1 serves, and a grey image is below the threshold on it."""
    stack, url, _, _ = served
    bucket, prefix = stack.config.storage.bucket, stack.config.storage.prefix
    sfn, s3 = stack.client("stepfunctions"), stack.client("s3")
    s3.put_object(Bucket=bucket, Key="incoming/grey.png", Body=solid_png(128))
    arn = sfn.start_execution(stateMachineArn=stack.resources.state_machine_arn, input=json.dumps(
        {"s3_bucket": bucket, "s3_key": "incoming/grey.png"}))["executionArn"]
    _login(page, url)
    base = url.split("?")[0].rstrip("/")
    deadline = time.monotonic() + 30
    while not page.locator("section.review").count() and time.monotonic() < deadline:
        time.sleep(0.3)
        page.goto(f"{base}/review")
    review = page.locator("section.review")
    assert review.count() == 1 and review.locator("img.thumbnail").is_visible()
    assert "waiting" in review.inner_text() and f"s3://{bucket}/incoming/grey.png" in review.inner_text()
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"

    review.get_by_label("bicycle").check()
    review.locator("input[name=note]").fill("a bicycle seen from the front")
    review.get_by_role("button", name=re.compile(r"^Answer ")).click()
    assert "bicycle" in page.locator(".flash").inner_text()
    assert page.locator("text=No review is waiting").count() == 1

    deadline = time.monotonic() + 20
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED" and json.loads(described["output"])["predicted_label"] == "bicycle"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/human-labels/").get("Contents", [])]
    assert len(keys) == 1
    record = json.loads(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())
    assert record["label"] == "bicycle" and record["note"] == "a bicycle seen from the front"
    assert record["reviewer"].startswith("arn:aws:")         # the console's AWS identity, as registry decisions
    assert page.problems == []


def test_approving_with_a_reason_starts_the_canary(served, page):
    stack, url, pending, _ = served
    _login(page, url)
    base = url.split("?")[0].rstrip("/")
    page.goto(f"{base}/registry/versions/2")
    assert page.locator("svg.plot").count() == 3
    page.get_by_role("button", name="Approve v2").click()          # an empty reason: the browser itself refuses
    assert page.url.endswith("/registry/versions/2")
    assert stack.client("sagemaker").describe_model_package(ModelPackageName=pending)["ModelApprovalStatus"] == \
        "PendingManualApproval"
    page.fill("#approve-reason", "beats v1 on the night set")
    page.get_by_role("button", name="Approve v2").click()
    assert "v2 approved" in page.locator(".flash").inner_text()
    assert "beats v1 on the night set" in page.locator("#decisions").inner_text()
    described = stack.client("sagemaker").describe_model_package(ModelPackageName=pending)
    assert described["ModelApprovalStatus"] == "Approved" and described["ApprovalDescription"].endswith(
        ": beats v1 on the night set")

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page.goto(f"{base}/endpoint")
        if page.locator("text=Canary in progress").count():
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the endpoint page never showed the canary")
    canary = page.locator("section.canary").inner_text()
    assert "10 % new" in canary and "90 % old" in canary and "left of 20 s" in canary
    assert "-v2" in canary and "rollback" in canary
    assert page.problems == []


def test_screenshots_of_every_page_stay_small(served, browser, tmp_path):
    from console.screenshots import MAX_BYTES, capture

    _, url, _, _ = served
    shots = capture(url, tmp_path, browser=browser)
    assert set(shots) == {"pipelines", "execution", "job", "registry", "version", "compare", "endpoint", "captures",
                          "review"}
    for name, path in shots.items():
        assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size < MAX_BYTES, name

