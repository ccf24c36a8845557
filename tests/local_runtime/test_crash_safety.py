"""``scones-local run`` interrupted as users interrupt it (real subprocesses): Ctrl-C during training,
then SIGKILL during training, then a plain rerun. No trainer outlives its run; the rerun works
without --fresh and reuses the staged data that was made durable before the interruptions."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.builders import make_cifar_archive, wait_until
from tests.console import run_script, start_script

pytestmark = pytest.mark.e2e      # starts serve, a subprocess stack or a whole pipeline


def trainer_pids(run_dir: Path) -> list[int]:
    """Trainer processes working in ``run_dir`` (their command line names its job directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if "local_runtime.trainer.train" in command and str(run_dir) in command and "Z (zombie)" not in state:
            pids.append(int(entry.name))
    return pids


def _remaining_after(run_dir: Path, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while trainer_pids(run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    return trainer_pids(run_dir)


def _interrupt_during_training(archive: Path, run_dir: Path, how: signal.Signals, meanwhile=None):
    # an epoch on this archive takes ~5 ms: a thousand could end before a loaded host sends the signal
    # started as a shell starts a background job, with SIGINT ignored: Ctrl-C must still stop the run
    process = start_script("scones-local", "run", "--data-source", str(archive), "--run-dir", str(run_dir),
                           "--epochs", "1000000", "--executions", "1", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        trainers = wait_until(lambda: trainer_pids(run_dir), 240, "the trainer to start", interval=0.2)
        if meanwhile:
            meanwhile(process.pid)
        time.sleep(1.0)
        process.send_signal(how)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, stderr, trainers


@pytest.fixture(scope="module")
def interrupted_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    archive = make_cifar_archive(root / "cifar-100-python.tar.gz", per_class_train=60, per_class_test=20)
    run_dir = root / "run"
    second = {}

    def second_run(holder: int) -> None:
        second["holder"] = holder
        second["result"] = run_script("scones-local", "run", "--data-source", str(archive), "--run-dir", str(run_dir))

    ctrl_c = _interrupt_during_training(archive, run_dir, signal.SIGINT, second_run)
    orphans_after_ctrl_c = trainer_pids(run_dir)
    killed = _interrupt_during_training(archive, run_dir, signal.SIGKILL)
    orphans_after_kill = _remaining_after(run_dir, 10)
    rerun = run_script("scones-local", "run", "--data-source", str(archive), "--run-dir", str(run_dir),
                       "--epochs", "3", "--executions", "1", "--accuracy-threshold", "0.5", timeout=600)
    return {"run_dir": run_dir, "second": second, "ctrl_c": ctrl_c, "orphans_after_ctrl_c": orphans_after_ctrl_c,
            "killed": killed, "orphans_after_kill": orphans_after_kill, "rerun": rerun}


def test_a_second_run_on_the_same_directory_is_refused_naming_the_holder(interrupted_runs):
    result = interrupted_runs["second"]["result"]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"is in use by scones-local run (pid {interrupted_runs['second']['holder']})" in result.stderr


def test_ctrl_c_ends_with_one_line_and_exit_130(interrupted_runs):
    returncode, stderr, _ = interrupted_runs["ctrl_c"]
    assert returncode == 130, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: the run stopped; finished steps are kept in"), last


def test_ctrl_c_stops_the_trainer_and_records_the_execution_as_stopped(interrupted_runs):
    _, _, trainers = interrupted_runs["ctrl_c"]
    assert trainers and interrupted_runs["orphans_after_ctrl_c"] == []
    records = [json.loads(p.read_text()) for p in (interrupted_runs["run_dir"] / "executions").glob("*.json")]
    assert "Stopped" in [r["status"] for r in records]


def test_sigkill_of_the_run_takes_the_trainer_with_it(interrupted_runs):
    returncode, _, trainers = interrupted_runs["killed"]
    assert returncode == -signal.SIGKILL and trainers
    assert interrupted_runs["orphans_after_kill"] == []


def test_the_rerun_succeeds_without_fresh_and_reuses_the_durable_staging(interrupted_runs):
    rerun = interrupted_runs["rerun"]
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Traceback" not in rerun.stderr
    summary = json.loads((interrupted_runs["run_dir"] / "summary.json").read_text())
    statuses = {s["name"]: s["status"] for s in summary["execution"]["steps"]}
    assert statuses["PrepareData"] == "Cached" and statuses["TrainModel"] == "Succeeded"
    assert statuses["DeployModel"] == "Succeeded"


def test_no_trainer_is_left_at_all(interrupted_runs):
    assert trainer_pids(interrupted_runs["run_dir"]) == []
    assert os.path.exists(interrupted_runs["run_dir"] / "state" / "layout.json")


def test_every_execution_is_in_the_saved_state_the_interrupted_ones_too(interrupted_runs):
    """Ctrl-C used to skip the save (the Stopped execution vanished from ListPipelineExecutions); SIGKILL too.
    Written ahead, all three are there: Stopped, the killed one (Failed once restored), the rerun."""
    from local_runtime.state import load_documents

    saved = load_documents(interrupted_runs["run_dir"] / "state", "sagemaker.pipeline-executions")
    assert [execution["Status"] for execution in saved] == ["Stopped", "Failed", "Succeeded"]
