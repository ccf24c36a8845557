"""One error root per package, one wrapper for every console script, one exit-code rule."""
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from scones_common.errors import SconesError, cli_entry

REPO = Path(__file__).resolve().parents[2]
PACKAGE_ROOTS = {"scones_common": "scones_common.errors.SconesError", "processing": "processing.errors.ProcessingError",
                 "pipelines": "pipelines.errors.PipelinesError", "local_runtime": "local_runtime.errors.LocalRuntimeError",
                 "inference_workflow": "inference_workflow.errors.InferenceWorkflowError"}


RUNS_IN_A_FUNCTIONS_OWN_PROCESS = {"local_runtime.moto_ext.lambda_bootstrap"}   # standard library only, like a runtime


def _ships_alone(module: str) -> bool:
    """The Lambdas' code is zipped on its own, without scones_common."""
    if module in RUNS_IN_A_FUNCTIONS_OWN_PROCESS:
        return True
    folder = REPO.joinpath(*module.split(".")[:-1])
    return module.endswith(".lambda_function") or (folder / "lambda_function.py").exists()


def _load(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _project_modules():
    for package in PACKAGE_ROOTS:
        yield package
        for info in pkgutil.walk_packages([str(REPO / package)], prefix=f"{package}."):
            yield info.name


def test_every_public_exception_derives_from_its_package_root():
    """Private ones (``_Interrupted``) are control flow inside a module and never reach a user."""
    offenders = []
    for name in _project_modules():
        if _ships_alone(name):
            continue
        module = importlib.import_module(name)
        root = _load(PACKAGE_ROOTS[name.split(".")[0]])
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == name
                    and not value.__name__.startswith("_") and not issubclass(value, root)):
                offenders.append(f"{name}.{value.__name__}")
    assert offenders == []


@pytest.mark.parametrize("root", sorted(PACKAGE_ROOTS.values()))
def test_package_roots_derive_from_the_common_root(root):
    assert issubclass(_load(root), SconesError)


def test_code_that_ships_alone_does_not_import_scones_common():
    alone = [*REPO.glob("inference_workflow/*/*.py")]
    assert len([p for p in alone if p.name == "lambda_function.py"]) == 9   # 3 workflow Lambdas, review, deploy, lookup, champion, drift, retraining
    assert [p.name for p in alone if re.search(r"^\s*(from|import) scones_common", p.read_text(), re.M)] == []


def test_every_console_script_runs_under_cli_entry():
    scripts = re.findall(r'"([\w-]+)=([\w.]+):(\w+)"', (REPO / "setup.py").read_text())
    assert len(scripts) >= 8
    unwrapped = [name for name, module, function in scripts
                 if not getattr(getattr(importlib.import_module(module), function), "__scones_cli__", False)]
    assert unwrapped == []


def _entry(raised: BaseException):
    @cli_entry
    def main(argv=None):
        raise raised
    return main


class _BadInput(SconesError):
    pass


@pytest.mark.parametrize("raised, code, line", [
    (_BadInput("the archive\n  is  missing"), 2, "_BadInput: the archive is missing"),
    (ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject"), 1, "AWS error: ClientError"),
    (EndpointConnectionError(endpoint_url="http://x"), 1, "AWS error: EndpointConnectionError"),
    (PermissionError(13, "Permission denied", "/x"), 1, "PermissionError: [Errno 13] Permission denied: '/x'"),
    (KeyboardInterrupt("kept for a rerun"), 130, "interrupted: kept for a rerun"),
])
def test_errors_map_to_one_line_and_an_exit_code(capsys, raised, code, line):
    assert _entry(raised)([]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and line in err


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        _entry(ZeroDivisionError("bug"))([])


def test_return_values_pass_through():
    assert cli_entry(lambda argv=None: None)([]) == 0
    assert cli_entry(lambda argv=None: 3)([]) == 3
