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
