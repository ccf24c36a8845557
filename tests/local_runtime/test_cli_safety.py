"""``scones-local`` refusals as a user meets them (real subprocesses): a run directory in use,
directory arguments that hold other things, bad ports, a truncated state file. Each is one
line on stderr, exit code 2, no traceback, and nothing on disk changes."""
import json
import socket
import subprocess
import time

import pytest

from local_runtime.state import load_documents
from tests.builders import make_cifar_archive, wait_until
from tests.console import run_script, start_script

pytestmark = pytest.mark.e2e      # starts serve, a subprocess stack or a whole pipeline


def _refused(result, *needles):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def _snapshot(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_cifar_archive(tmp_path_factory.mktemp("data") / "cifar-100-python.tar.gz")


@pytest.fixture(scope="module")
def served_run_dir(tmp_path_factory):
    """``scones-local serve`` up on a run directory for the module's tests."""
    run_dir = tmp_path_factory.mktemp("served") / "run"
    process = start_script("scones-local", "serve", "--run-dir", str(run_dir), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        line = process.stdout.readline()
        assert line.startswith("Local AWS APIs at"), (line, process.stderr.read() if process.poll() else "")
        yield run_dir, process
    finally:
        if process.poll() is None:
            process.send_signal(subprocess.signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
            assert process.returncode == 0 and "Traceback" not in stderr, stderr


def test_run_is_refused_while_serve_holds_the_directory_and_names_its_pid(served_run_dir, archive):
    run_dir, serve = served_run_dir
    before = _snapshot(run_dir / "state") if (run_dir / "state").exists() else {}
    result = run_script("scones-local", "run", "--run-dir", str(run_dir), "--data-source", str(archive))
    _refused(result, "RunDirLockedError", f"scones-local serve (pid {serve.pid})", "another --run-dir")
    assert len(result.stderr.strip().splitlines()) == 1
    assert (_snapshot(run_dir / "state") if (run_dir / "state").exists() else {}) == before


def test_a_second_serve_is_refused_too(served_run_dir):
    run_dir, serve = served_run_dir
    result = run_script("scones-local", "serve", "--run-dir", str(run_dir))
    _refused(result, f"pid {serve.pid}")


def test_serve_stops_on_ctrl_c_during_its_start_saves_and_frees_the_directory(tmp_path):
    """Ctrl-C as soon as serve holds the directory, mid-start (the stop after the ready line: the fixture above)."""
    run_dir = tmp_path / "run"
    process = start_script("scones-local", "serve", "--run-dir", str(run_dir), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    wait_until(lambda: (run_dir / ".scones-run.lock").exists() or process.poll() is not None, 60,
               "serve to take the run directory", interval=0.05)
    process.send_signal(subprocess.signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in stderr
    assert (run_dir / "state" / "layout.json").exists()
    assert load_documents(run_dir / "state", "sagemaker.model-package-groups") == []
    with socket.socket() as taken:             # makes the next serve stop right after it took the lock
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        second = run_script("scones-local", "serve", "--run-dir", str(run_dir), "--aws-port",
                            str(taken.getsockname()[1]))
    _refused(second, "PortInUseError")         # not RunDirLockedError: the lock went with the first process


@pytest.mark.parametrize("argument", [".", "..", "/", "~"])
def test_special_run_dirs_are_refused_and_nothing_is_deleted(tmp_path, archive, argument):
    cwd = tmp_path / "project" / "here"
    cwd.mkdir(parents=True)
    (cwd / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    result = run_script("scones-local", "run", "--fresh", "--run-dir", argument, "--data-source", str(archive), cwd=cwd)
    _refused(result, "UnsafeDirectoryError", "--run-dir")
    assert _snapshot(tmp_path) == before


def test_a_foreign_non_empty_run_dir_is_refused(tmp_path, archive):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("mine")
    result = run_script("scones-local", "run", "--fresh", "--run-dir", str(folder), "--data-source", str(archive))
    _refused(result, "chapter1.tex", "not an earlier output of scones-local")
    assert [p.name for p in folder.iterdir()] == ["chapter1.tex"]


def test_fresh_checks_the_data_source_before_deleting(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "state").mkdir(parents=True)
    (run_dir / "state" / "sagemaker.json").write_text(json.dumps({"groups": ["kept"]}))
    (run_dir / ".scones-run.json").write_text(json.dumps({"written_by": "scones-local"}))
    before = _snapshot(run_dir)
    result = run_script("scones-local", "run", "--fresh", "--run-dir", str(run_dir),
                        "--data-source", str(tmp_path / "no-such-archive.tar.gz"))
    _refused(result, "DataSourceError", "no-such-archive.tar.gz")
    assert _snapshot(run_dir) == before


def test_a_missing_data_source_is_named_before_the_stack_starts(tmp_path):
    result = run_script("scones-local", "run", "--run-dir", str(tmp_path / "run"),
                        "--data-source", str(tmp_path / "no-such-archive.tar.gz"))
    _refused(result, "DataSourceError", "no-such-archive.tar.gz")
    assert "local AWS at" not in result.stderr


@pytest.mark.parametrize("ports, needle", [(["--aws-port", "70000"], "outside [1, 65535]"),
                                           (["--aws-port", "5123", "--runtime-port", "5123"], "two ports"),
                                           (["--runtime-port", "http"], "is not a TCP port")])
def test_bad_ports_are_usage_errors(tmp_path, ports, needle):
    result = run_script("scones-local", "serve", "--run-dir", str(tmp_path / "run"), *ports)
    _refused(result, needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["serve", "run"])
def test_a_truncated_state_file_is_named_and_left_alone(tmp_path, archive, command):
    run_dir = tmp_path / "run"
    (run_dir / "state").mkdir(parents=True)
    (run_dir / ".scones-run.json").write_text(json.dumps({"written_by": "scones-local"}))    # an earlier run's
    truncated = '{"groups": ["scones-vehicle-classifier"], "packages": [{"ModelPackageGro'
    (run_dir / "state" / "sagemaker.json").write_text(truncated)
    extra = ["--data-source", str(archive)] if command == "run" else []
    started = time.monotonic()
    result = run_script("scones-local", command, "--run-dir", str(run_dir), *extra)
    _refused(result, "StateCorruptError", "sagemaker.json", "--fresh")
    assert (run_dir / "state" / "sagemaker.json").read_text() == truncated
    assert time.monotonic() - started < 20      # checked before the stack starts
