from pathlib import Path

import pytest

from tests.builders import make_cifar_archive

SHARED_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-100-python-dev.tar.gz"


@pytest.fixture
def cifar_archive(tmp_path) -> Path:
    return make_cifar_archive(tmp_path / "cifar-100-python.tar.gz")


@pytest.fixture
def shared_archive() -> Path:
    if not SHARED_ARCHIVE.exists():
        pytest.skip("../shared/data/cifar-100-python-dev.tar.gz is only on the team's machines")
    return SHARED_ARCHIVE


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """One moto server + endpoint for the session: starting them costs ~1 s."""
    from contextlib import ExitStack

    from tests.local_stack import start_local_stack

    with ExitStack() as stack:
        yield start_local_stack(stack, tmp_path_factory.mktemp("local-stack"))
