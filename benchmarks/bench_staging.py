"""Staging speed: the sample archive the package ships and a full-size synthetic CIFAR-100 archive.

Prints one line per case: archive size, images written, read seconds, total seconds.
Usage: python benchmarks/bench_staging.py [--full-size] [--repeat N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from processing.cifar_source import sample_archive  # noqa: E402
from processing.prepare_data import stage  # noqa: E402
from tests.builders import make_cifar_archive  # noqa: E402


def bench(name: str, archive: Path, repeat: int) -> None:
    totals, reads = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(repeat):
            started = time.perf_counter()
            report = stage(archive, Path(scratch) / "out")
            totals.append(time.perf_counter() - started)
            reads.append(report["seconds"]["read"])
    images = sum(report["totals"].values())
    print(f"{name:<28} {archive.stat().st_size / 1e6:7.1f} MB  {images:6d} images  "
          f"read {statistics.median(reads):6.2f} s  total {statistics.median(totals):6.2f} s (median of {repeat})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full-size", action="store_true", help="also build and stage a 50k/10k-image archive")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench("sample archive (800/200)", sample_archive(), args.repeat)
    if args.full_size:
        with tempfile.TemporaryDirectory() as scratch:
            started = time.perf_counter()
            archive = make_cifar_archive(Path(scratch) / "cifar-100-python.tar.gz", per_class_train=500,
                                         per_class_test=100, other_classes=98,
                                         other_train=500, other_test=100)
            print(f"(built full-size synthetic archive in {time.perf_counter() - started:.1f} s)")
            bench("full-size synthetic (50k/10k)", archive, args.repeat)


if __name__ == "__main__":
    main()
