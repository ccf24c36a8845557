"""Model quality over N seeds: test accuracy, coverage and precision at the confidence threshold.

Runs the real pieces the pipeline runs, without the rest of the pipeline: staging
(``processing.prepare_data.stage``), the stand-in trainer as a subprocess under its container
contract (hyperparameters from the config, ``local_trainer`` knobs through
``SCONES_LOCAL_TRAINER``), the exported ONNX through the serving code on every test image, and
``processing.evaluate.score``. Prints one row per seed and the median row; ``train_s`` is the trainer's wall time and
``train_cpu_s`` the CPU seconds it and its member processes used (comparable under load).
``cov_at_98`` is the share a perfectly placed threshold would cover at 98 % precision (how well
the model ranks, whatever its calibration).
Usage: python benchmarks/bench_model_quality.py [--data-source PATH] [--seeds 3] [--first-seed 0] [--epochs N]
       [--local '{"ensemble_size": 1}'] [--keep-model model.tar.gz]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_runtime.serving.model import ImageClassifier  # noqa: E402
from local_runtime.trainer.local_settings import LOCAL_TRAINER_ENV, parse_local_settings  # noqa: E402
from processing.cifar_source import resolve_archive  # noqa: E402
from processing.confidence import coverage_at_precision  # noqa: E402
from processing.evaluate import score  # noqa: E402
from processing.prepare_data import stage  # noqa: E402
from scones_common.algorithm_contract import to_text  # noqa: E402
from scones_common.cli_args import whole_number  # noqa: E402
from scones_common.config import SEED_MAX, load_config  # noqa: E402
from scones_common.contracts.staged_data import read_lst  # noqa: E402

DEV_ARCHIVE = next((parent / "shared" / "data" / "cifar-100-python-dev.tar.gz" for parent in ROOT.parents   # a worktree too
                    if (parent / "shared" / "data" / "cifar-100-python-dev.tar.gz").exists()), None)
COLUMNS = ("seed", "accuracy", "coverage", "precision", "cov_at_98", "roc_auc", "ece", "train_s", "train_cpu_s",
           "temperature")
TARGET_PRECISION = 0.98


def hyperparameters(config, num_training_samples: int, epochs: int | None) -> dict[str, str]:
    """The request the pipeline's TrainModel step sends (pipelines/scones/pipeline.py), as strings."""
    hp = config.training.hyperparameters
    return {"num_classes": "2", "image_shape": "3,32,32", "num_training_samples": str(num_training_samples),
            "epochs": str(epochs or hp.epochs), "learning_rate": str(hp.learning_rate),
            "mini_batch_size": str(hp.mini_batch_size), "optimizer": hp.optimizer, "momentum": str(hp.momentum),
            "weight_decay": str(hp.weight_decay), "augmentation_type": hp.augmentation_type,
            "early_stopping": to_text(hp.early_stopping)}


def opt_ml_for(staged: Path, job: Path, raw_hyperparameters: dict) -> Path:
    opt_ml = job / "opt" / "ml"
    for split in ("train", "validation"):
        channel = opt_ml / "input" / "data" / f"{split}_lst"
        channel.mkdir(parents=True)
        (opt_ml / "input" / "data" / split).symlink_to(staged / split, target_is_directory=True)
        (channel / f"{split}.lst").write_text((staged / f"{split}.lst").read_text())
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps(raw_hyperparameters))
    return opt_ml


def _children_cpu() -> float:
    """User + system CPU seconds of finished child processes (the trainer and its member workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_seed(seed: int, staged: Path, job: Path, raw_hyperparameters: dict, local: dict, threshold: float) -> dict:
    opt_ml = opt_ml_for(staged, job, raw_hyperparameters)
    environment = {**os.environ, LOCAL_TRAINER_ENV: json.dumps({**local, "seed": seed}), "PYTHONPATH": str(ROOT)}
    started, cpu_before = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-m", "local_runtime.trainer.train", "--opt-ml", str(opt_ml)],
                          env=environment, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if done.returncode:
        raise SystemExit(f"seed {seed}: trainer failed\n{done.stdout[-2000:]}")
    trained = json.loads((opt_ml / "output" / "metrics.json").read_text())
    model = ImageClassifier(opt_ml / "model")
    rows = read_lst(staged / "test.lst")
    probabilities = model.predict([(staged / "test" / entry.path).read_bytes() for entry in rows])
    truth = [entry.class_id for entry in rows]
    metrics = score(truth, probabilities, threshold)["metrics"]
    return {"seed": seed, "accuracy": metrics["accuracy"]["value"], "coverage": metrics["coverage"]["value"],
            "precision": metrics["confident_precision"]["value"],
            "cov_at_98": coverage_at_precision(truth, probabilities, TARGET_PRECISION),
            "roc_auc": metrics["roc_auc"]["value"],
            "ece": metrics["calibration"]["ece"], "train_s": trained["seconds"], "wall_s": wall,
            "train_cpu_s": round(cpu, 1),
            "temperature": trained.get("temperature")}


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-source", default=str(DEV_ARCHIVE) if DEV_ARCHIVE else "cifar-100")
    parser.add_argument("--seeds", type=whole_number(1, 100), default=3)
    parser.add_argument("--first-seed", type=whole_number(0, SEED_MAX), default=0,
                        help="seeds first-seed … first-seed + seeds − 1")
    parser.add_argument("--epochs", type=int, help="default: training.hyperparameters.epochs")
    parser.add_argument("--local", default="{}", help="JSON overrides of the local_trainer knobs, e.g. "
                                                      '\'{"ensemble_size": 1}\'')
    parser.add_argument("--keep-model", help="write the last seed's model.tar.gz here (for bench_endpoint.py "
                                              "--model-artifact)")
    args = parser.parse_args()
    config = load_config(environment="local")
    local = json.loads(args.local)
    settings = parse_local_settings(json.dumps(local))          # refuses unknown knobs before any training
    threshold = config.inference.confidence_threshold
    archive = resolve_archive(args.data_source, config.data.cache_dir)
    print(f"archive {archive}; threshold {threshold}; local trainer {asdict(settings)} (seed varies)")
    print("  ".join(f"{c:>11}" for c in COLUMNS))
    results = []
    with tempfile.TemporaryDirectory(prefix="scones-bench-quality-") as scratch:
        report = stage(archive, Path(scratch) / "staged", config.data.validation_fraction, config.data.seed)
        raw = hyperparameters(config, report["num_training_samples"], args.epochs)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            result = one_seed(seed, Path(scratch) / "staged", Path(scratch) / f"job-{seed}", raw, local, threshold)
            results.append(result)
            print("  ".join(f"{_cell(result[c]):>11}" for c in COLUMNS), flush=True)
        if args.keep_model:
            with tarfile.open(args.keep_model, "w:gz") as tar:
                for path in sorted((Path(scratch) / f"job-{seed}" / "opt" / "ml" / "model").iterdir()):
                    tar.add(path, arcname=path.name)
    median = {c: statistics.median(r[c] for r in results if r[c] is not None) if any(r[c] is not None for r in results)
              else None for c in COLUMNS[1:]}
    print("  ".join(f"{_cell(v):>11}" for v in ["median", *median.values()]))


if __name__ == "__main__":
    main()
