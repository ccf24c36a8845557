import functools
import os
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest

# A real Lambda always has a region; a laptop running the tests may not. Set before test modules import handlers.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from tests.builders import make_cifar_archive

# botocore decodes its JSON files (service models, the 1.2 MB endpoints.json) once per loader, and makes a
# loader per session: moto's mock_aws starts every test on a new session, and the SageMaker SDK makes sessions
# and loaders of its own. A third of the inner loop's CPU went to decoding the same files again. One loader a
# data path, shared by the worker's sessions; what it returns is only read.
_loader_for_path = functools.cache(botocore.loaders.create_loader)


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    return _loader_for_path(search_path_string)     # one key whether or not the path is given


botocore.loaders.create_loader = botocore.session.create_loader = _shared_loader

SHARED_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-100-python-dev.tar.gz"


@pytest.fixture
def cifar_archive(tmp_path) -> Path:
    return make_cifar_archive(tmp_path / "cifar-100-python.tar.gz")


@pytest.fixture
def shared_archive() -> Path:
    if not SHARED_ARCHIVE.exists():
        pytest.skip("../shared/data/cifar-100-python-dev.tar.gz is only on the team's machines")
    return SHARED_ARCHIVE


STACK_FIXTURES = frozenset({"local_stack", "stack", "failing_stack", "monitored", "serving", "main_job"})


MAIN_JOB_MODULES = ("tests/local_runtime/test_run.py", "tests/local_runtime/test_review_loop.py")


def pytest_collection_modifyitems(items):
    """The tiers' rule, applied where it cannot be forgotten: a test that needs a running stack (moto server,
    endpoint server, deployed model), serve or the shared main job is end to end, however it reaches it."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if STACK_FIXTURES.intersection(names):
            item.add_marker(pytest.mark.e2e)
        if "main_job" in names and item.nodeid.split("::", 1)[0] not in MAIN_JOB_MODULES:
            raise pytest.UsageError(f"{item.nodeid} uses main_job: add its module to MAIN_JOB_MODULES in "
                                    "tests/conftest.py, so that the session trains once")
    items.sort(key=lambda item: "e2e" not in item.keywords)    # the long modules first: workers end together


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: a worker a core for the inner loop, which is all CPU; one more when end-to-end tests run, as a
    third of their time is spent waiting (canary bakes, endpoint transitions, subprocesses starting), which the
    extra worker fills. PYTEST_XDIST_AUTO_NUM_WORKERS still decides when it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores if "not e2e" in " ".join(config.option.markexpr.split()) else cores + 1


@pytest.hookimpl(optionalhook=True)      # without xdist (-p no:xdist) the hook is simply unused
def pytest_xdist_make_scheduler(config, log):
    """Whole modules per worker (``--dist loadfile``: module fixtures start once), and the modules sharing the
    session's main job on one worker, so that it runs once."""
    from xdist.scheduler import LoadFileScheduling

    class SharedMainJob(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return "main_job" if module in MAIN_JOB_MODULES else module

    return SharedMainJob(config, log)


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    """A moto server + endpoint per test module (~1 s to start). Not per session: moto's in-process
    ``mock_aws`` used by other modules resets the same backends the server serves from."""
    from contextlib import ExitStack

    from tests.local_stack import start_local_stack

    with ExitStack() as stack:
        yield start_local_stack(stack, tmp_path_factory.mktemp("local-stack"))


@pytest.fixture(scope="session")
def main_job(tmp_path_factory):
    """The one full pipeline run of the test session (the main job on a tiny archive); see tests/tiny_run.py."""
    from tests.tiny_run import run_main_job

    return run_main_job(tmp_path_factory.mktemp("main-job"))


@pytest.fixture(autouse=True, scope="module")
def _environment_restored_after_each_module():
    """In-process Lambdas apply their function's environment around each invocation; concurrent invocations can
    restore one another's values (a known race, docs/aws-differences.md). A module never inherits them."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)
