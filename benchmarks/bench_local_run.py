"""The main job's speed and quality: a fresh local run on the dev archive (or --data-source).

Prints wall time of the whole run and of each pipeline step, the trainer's own time, the best
validation epoch and the test accuracy (selected on validation only).
Usage: python benchmarks/bench_local_run.py [--data-source PATH] [--epochs N] [--executions N]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_runtime.run import run_local  # noqa: E402
from local_runtime.settings import load_local_config  # noqa: E402
from scones_common.logs import setup_logging  # noqa: E402

DEV_ARCHIVE = ROOT.parent / "shared" / "data" / "cifar-100-python-dev.tar.gz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-source", default=str(DEV_ARCHIVE) if DEV_ARCHIVE.exists() else "cifar-100")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--executions", type=int, default=20)
    args = parser.parse_args()
    setup_logging("WARNING")
    config = load_local_config(overrides={"data.source": args.data_source,
                                                         "training.hyperparameters.epochs": args.epochs})
    with tempfile.TemporaryDirectory(prefix="scones-bench-run-") as scratch:
        started = time.perf_counter()
        summary = run_local(config, Path(scratch), executions=args.executions)
        seconds = time.perf_counter() - started
        metrics_files = list(Path(scratch).glob("jobs/*/TrainModel/opt/ml/output/metrics.json"))
        trainer = json.loads(metrics_files[0].read_text()) if metrics_files else {}
    print(f"local run on {args.data_source} ({config.training.hyperparameters.epochs} epochs): "
          f"{summary.execution.status} in {seconds:.1f} s")
    for step in summary.execution.steps:
        print(f"  {step.name:<24} {step.status:<10} {step.seconds:6.2f} s")
    print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in summary.seconds.items()))
    if trainer:
        print("  trainer's final metrics: " + ", ".join(f"{name} {value:.4f}" for name, value in sorted(trainer.items())))
    if summary.accuracy is not None:
        confident = [r for r in summary.workflow if r.status == "SUCCEEDED"]
        print(f"  test accuracy {summary.accuracy:.4f}, ROC AUC {summary.evaluation['metrics']['roc_auc']['value']:.4f}; "
              f"workflow: {len(confident)}/{len(summary.workflow)} confident")


if __name__ == "__main__":
    main()
