"""Model quality over N seeds: test accuracy, coverage and precision at the confidence threshold, training
time and the served graph's latency; optionally against a baseline checkout's trainer on the same data.

Runs the real pieces the pipeline runs, without the rest of the pipeline: staging
(``processing.prepare_data.stage``), the stand-in trainer as a subprocess under its container
contract (the hyperparameters TrainModel sends, ``pipelines.scones.pipeline.training_hyperparameters``
of the local config; the seed through ``SCONES_LOCAL_TRAINER``), the exported ONNX through the
serving code on every test image, and ``processing.evaluate.score``. ``--baseline-repo`` trains
that checkout's trainer too (e.g. ``git worktree add /tmp/old-main 8f5edc1``), with the request
its own benchmark builds from its own config, on the same staged images and seeds, the two
alternating so that a busy host weighs on both alike.

Prints one row per run and a median row per trainer. ``train_s`` is the trainer process's wall time
(start-up included), ``train_cpu_s`` the CPU seconds it and its worker processes used (comparable
under load); ``onnx_ms`` the median latency of model.onnx for one image on one onnxruntime thread
over the test images (three passes; the decode is not included); ``cov_at_98`` the share a perfectly
placed threshold would cover at 98 % precision (how well the model ranks, whatever its calibration).
Usage: python benchmarks/bench_model_quality.py [--data-source PATH] [--seeds 3] [--first-seed 0]
       [--epochs N] [--set NAME=VALUE …] [--baseline-repo PATH] [--keep-model model.tar.gz]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from local_runtime.serving.model import ImageClassifier  # noqa: E402
from local_runtime.trainer.local_settings import LOCAL_TRAINER_ENV, SEED_MAX  # noqa: E402
from processing.cifar_source import resolve_archive  # noqa: E402
from processing.confidence import coverage_at_precision  # noqa: E402
from processing.evaluate import score  # noqa: E402
from processing.prepare_data import stage  # noqa: E402
from scones_common.cli_args import whole_number  # noqa: E402
from scones_common.config import load_config  # noqa: E402
from scones_common.contracts.staged_data import read_lst  # noqa: E402

DEV_ARCHIVE = next((parent / "shared" / "data" / "cifar-100-python-dev.tar.gz" for parent in ROOT.parents   # a worktree too
                    if (parent / "shared" / "data" / "cifar-100-python-dev.tar.gz").exists()), None)
COLUMNS = ("trainer", "seed", "accuracy", "coverage", "precision", "cov_at_98", "roc_auc", "ece", "train_s",
           "train_cpu_s", "onnx_ms")
TARGET_PRECISION = 0.98
# The baseline's own request, built by its own benchmark from its own config (run inside the baseline checkout)
BASELINE_REQUEST = ("import json, sys; import benchmarks.bench_model_quality as bench; "
                    "from scones_common.config import load_config; "
                    "config, samples = load_config(environment='local'), int(sys.argv[1]); "
                    "print(json.dumps(bench.request(config, samples, None, {}) if hasattr(bench, 'request') "
                    "else bench.hyperparameters(config, samples, None)))")     # older checkouts named it so


def request(config, num_training_samples: int, epochs: int | None, overrides: dict[str, str]) -> dict[str, str]:
    """The hyperparameters the pipeline's TrainModel step sends, as strings, with ``overrides`` applied."""
    from pipelines.scones.pipeline import training_hyperparameters

    raw = {**training_hyperparameters(config.training.hyperparameters), "num_training_samples": str(num_training_samples)}
    return {**raw, **({"epochs": str(epochs)} if epochs else {}), **overrides}


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
    """User + system CPU seconds of finished child processes (the trainer and its worker processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def onnx_ms(model_path: Path, batch: np.ndarray) -> float:
    """Median milliseconds of one image through model.onnx on one onnxruntime thread, over ``batch`` three times."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    name, images = session.get_inputs()[0].name, [batch[i:i + 1] for i in range(len(batch))]
    for image in images[:20]:
        session.run(None, {name: image})
    times = []
    for _ in range(3):
        for image in images:
            started = time.perf_counter()
            session.run(None, {name: image})
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def one_run(trainer: str, repo: Path, seed: int, staged: Path, job: Path, raw_hyperparameters: dict,
            threshold: float) -> dict:
    opt_ml = opt_ml_for(staged, job, raw_hyperparameters)
    environment = {**os.environ, LOCAL_TRAINER_ENV: json.dumps({"seed": seed}), "PYTHONPATH": str(repo)}
    started, cpu_before = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-m", "local_runtime.trainer.train", "--opt-ml", str(opt_ml)], cwd=repo,
                          env=environment, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if done.returncode:
        raise SystemExit(f"{trainer} seed {seed}: trainer failed\n{done.stdout[-2000:]}")
    model = ImageClassifier(opt_ml / "model")
    rows = read_lst(staged / "test.lst")
    batch = model.preprocess([(staged / "test" / entry.path).read_bytes() for entry in rows])
    probabilities = model.session.run(None, {model.input_name: batch})[0]
    truth = [entry.class_id for entry in rows]
    metrics = score(truth, probabilities, threshold)["metrics"]
    return {"trainer": trainer, "seed": seed, "accuracy": metrics["accuracy"]["value"],
            "coverage": metrics["coverage"]["value"], "precision": metrics["confident_precision"]["value"],
            "cov_at_98": coverage_at_precision(truth, probabilities, TARGET_PRECISION),
            "roc_auc": metrics["roc_auc"]["value"], "ece": metrics["calibration"]["ece"], "train_s": round(wall, 1),
            "train_cpu_s": round(cpu, 1), "onnx_ms": onnx_ms(opt_ml / "model" / "model.onnx", batch)}


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _print(row: dict) -> None:
    print("  ".join(f"{_cell(row.get(c)):>11}" for c in COLUMNS), flush=True)


def _override(text: str) -> tuple[str, str]:
    name, _, value = text.partition("=")
    if not value:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE, e.g. learning_rate=0.01")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-source", default=str(DEV_ARCHIVE) if DEV_ARCHIVE else "cifar-100")
    parser.add_argument("--seeds", type=whole_number(1, 100), default=3)
    parser.add_argument("--first-seed", type=whole_number(0, SEED_MAX), default=0,
                        help="seeds first-seed … first-seed + seeds − 1")
    parser.add_argument("--epochs", type=int, help="default: training.hyperparameters.epochs")
    parser.add_argument("--set", type=_override, action="append", default=[], metavar="NAME=VALUE",
                        help="a hyperparameter of the request to change (this checkout's trainer only)")
    parser.add_argument("--baseline-repo", type=Path, help="a checkout whose trainer to run too, e.g. /tmp/old-main")
    parser.add_argument("--keep-model", help="write the last seed's model.tar.gz here (for bench_endpoint.py "
                                              "--model-artifact)")
    args = parser.parse_args()
    config = load_config(environment="local")
    threshold = config.inference.confidence_threshold
    archive = resolve_archive(args.data_source, config.data.cache_dir)
    results = []
    with tempfile.TemporaryDirectory(prefix="scones-bench-quality-") as scratch:
        staged = Path(scratch) / "staged"
        report = stage(archive, staged, config.data.validation_fraction, config.data.seed)
        trainers = {"new": (ROOT, request(config, report["num_training_samples"], args.epochs, dict(args.set)))}
        if args.baseline_repo:
            baseline = subprocess.run([sys.executable, "-c", BASELINE_REQUEST, str(report["num_training_samples"])],
                                      cwd=args.baseline_repo, env={**os.environ, "PYTHONPATH": str(args.baseline_repo)},
                                      capture_output=True, text=True, check=True).stdout
            trainers["baseline"] = (args.baseline_repo.resolve(), json.loads(baseline.strip().splitlines()[-1]))
        print(f"archive {archive}; threshold {threshold}")
        for name, (repo, raw) in trainers.items():
            print(f"{name}: {repo}\n  {json.dumps(raw, sort_keys=True)}")
        print("  ".join(f"{c:>11}" for c in COLUMNS))
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for name, (repo, raw) in trainers.items():
                results.append(one_run(name, repo, seed, staged, Path(scratch) / f"{name}-{seed}", raw, threshold))
                _print(results[-1])
        if args.keep_model:
            with tarfile.open(args.keep_model, "w:gz") as tar:
                for path in sorted((Path(scratch) / f"new-{seed}" / "opt" / "ml" / "model").iterdir()):
                    tar.add(path, arcname=path.name)
    for name in trainers:
        rows = [r for r in results if r["trainer"] == name]
        _print({"trainer": name, "seed": "median", **{c: statistics.median(r[c] for r in rows) for c in COLUMNS[2:]}})


if __name__ == "__main__":
    main()
