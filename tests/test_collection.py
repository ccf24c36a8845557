"""``python -m pytest`` from the repository root must collect the tests and nothing else.

pytest takes any ``test_*.py`` / ``*_test.py`` file it is pointed at as a test module, and any
``test*`` function or ``Test*`` class a test module imports as a test: product code must not
look like either, or collection fails (e.g. ``fixture 's3' not found``).
"""
import ast
import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_FILE_PATTERNS = ("test_*.py", "*_test.py")   # pytest's default python_files
SKIPPED_DIRS = {".git", ".venv", ".venv-sam", "runs", "build", "tests", "__pycache__", ".aws-sam"}


def _product_modules() -> list[Path]:
    return [p for p in ROOT.rglob("*.py")
            if not SKIPPED_DIRS & set(p.relative_to(ROOT).parts) and not p.name.startswith(".")]


def test_pytest_settings_collect_only_the_tests_folder():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert settings["testpaths"] == ["tests"]
    assert "python_files" not in settings   # the patterns below are pytest's defaults


def test_no_product_module_is_named_like_a_test():
    named_like_tests = [str(p.relative_to(ROOT)) for p in _product_modules()
                        if any(fnmatch.fnmatch(p.name, pattern) for pattern in TEST_FILE_PATTERNS)]
    assert named_like_tests == []


def test_no_product_function_or_class_is_named_like_a_test():
    found = []
    for path in _product_modules():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                found.append(f"{path.relative_to(ROOT)}:{node.name}")
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                found.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert found == []


def _auto_workers(markexpr: str) -> int | None:
    from types import SimpleNamespace

    from tests.conftest import pytest_xdist_auto_num_workers

    return pytest_xdist_auto_num_workers(SimpleNamespace(option=SimpleNamespace(markexpr=markexpr)))


def test_auto_workers_are_one_a_core_for_the_inner_loop_and_one_more_with_e2e(monkeypatch):
    import os

    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert _auto_workers("not e2e") == _auto_workers("not  e2e and not slow") == cores
    assert _auto_workers("") == _auto_workers("e2e") == cores + 1
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "5")
    assert _auto_workers("") is None           # xdist's own hook reads the variable


def test_a_workers_botocore_sessions_and_the_sdks_loaders_share_one_loader():
    """The inner loop's budget rests on it (tests/conftest.py): a botocore upgrade that builds its loaders
    another way fails here, not as a slow suite."""
    import botocore.loaders
    import botocore.session

    first, second = botocore.session.Session(), botocore.session.Session()
    assert first.get_component("data_loader") is second.get_component("data_loader") is botocore.loaders.create_loader()
