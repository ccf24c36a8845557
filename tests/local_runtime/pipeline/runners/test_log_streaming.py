"""A training job's log lines reach the job log (and so CloudWatch Logs) as they are written, not at its end."""
import sys
import threading
import time

from local_runtime.pipeline import jobs
from local_runtime.pipeline.runners import training

SLOW_TRAINER = "import time\nprint('epoch 1 done')\ntime.sleep(1.5)\nprint('epoch 2 done')\n"


def test_training_lines_reach_the_log_as_they_are_printed(tmp_path, monkeypatch):
    real = training.job_process
    monkeypatch.setattr(training, "job_process",
                        lambda command, **popen: real([sys.executable, "-c", SLOW_TRAINER], **popen))
    log_path = tmp_path / "job.log"
    seen = {}

    def look():
        time.sleep(1.0)
        seen["during"] = log_path.read_text() if log_path.exists() else ""
    watcher = threading.Thread(target=look)
    watcher.start()
    assert training._run_trainer(tmp_path, log_path, None, lambda message: None, {}, epochs=2) == 0
    watcher.join()
    assert seen["during"] == "epoch 1 done\n"
    assert log_path.read_text() == "epoch 1 done\nepoch 2 done\n"


def test_logs_are_shipped_often_enough_to_stamp_lines_apart():
    assert jobs.SHIP_SECONDS <= 0.25
