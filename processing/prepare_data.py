"""Stages CIFAR-100 bicycles and motorcycles for the built-in image-classification algorithm.

Output (``--output-dir``)::

    train/<class>/<n>_<name>.png   validation/…   test/…
    train.lst  validation.lst  test.lst      index<TAB>class id<TAB>relative path
    staging_report.json                      counts, label map, duplicates, timings

Runs as a SageMaker Processing entry point (defaults are the container paths) and as the
``scones-prepare-data`` command. Everything is written to a scratch directory inside the
output directory and moved into place at the end (the output directory itself is never
removed or replaced: in a container it is a mount point), so a failure leaves no partial output.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from processing.cifar_archive import CifarArchive
from processing.cifar_source import resolve_archive
from processing.staging import CLASS_NAMES, Sample, StagedSplits, build_splits, class_counts, select_classes
from scones_common.logs import setup_logging

CONTAINER_INPUT = "/opt/ml/processing/input/data"
CONTAINER_OUTPUT = "/opt/ml/processing/output"
SPLITS = ("train", "validation", "test")

log = logging.getLogger("prepare_data")


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _write_png(path: Path, sample: Sample) -> None:
    Image.fromarray(sample.image).save(path, format="PNG", compress_level=1)


def write_split(root: Path, split: str, samples: list[Sample], pool: ThreadPoolExecutor) -> None:
    lines, jobs = [], []
    for name in CLASS_NAMES:
        (root / split / name).mkdir(parents=True)
    for index, sample in enumerate(samples):
        relative = f"{CLASS_NAMES[sample.class_id]}/{index:05d}_{_safe_name(sample.source_name)}"
        jobs.append(pool.submit(_write_png, root / split / relative, sample))
        lines.append(f"{index}\t{sample.class_id}\t{relative}\n")
    for job in jobs:
        job.result()
    (root / f"{split}.lst").write_text("".join(lines))


def stage(archive_path: str | Path, output_dir: str | Path, validation_fraction: float = 0.1,
          seed: int = 42) -> dict:
    """Stages one archive into ``output_dir`` (its earlier content replaced) and returns the report."""
    started = time.perf_counter()
    archive = CifarArchive(archive_path)
    fine_ids = archive.fine_label_ids(list(CLASS_NAMES))
    staged: StagedSplits = build_splits(select_classes(archive.split("train"), fine_ids),
                                        select_classes(archive.split("test"), fine_ids),
                                        validation_fraction, seed)
    read_seconds = time.perf_counter() - started

    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".staging-", dir=output))   # inside: output may be a mount point
    try:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for split in SPLITS:
                write_split(scratch, split, staged.splits[split], pool)
        report = {
            "source_archive": str(archive_path),
            "label_map": {str(i): name for i, name in enumerate(CLASS_NAMES)},
            "cifar_fine_label_ids": fine_ids,
            "counts": {split: class_counts(staged.splits[split]) for split in SPLITS},
            "totals": {split: len(staged.splits[split]) for split in SPLITS},
            "num_training_samples": len(staged.splits["train"]),
            "duplicates_dropped": staged.duplicates_dropped,
            "image_shape": [3, 32, 32],
            "validation_fraction": validation_fraction,
            "seed": seed,
            "seconds": {"read": round(read_seconds, 3), "total": round(time.perf_counter() - started, 3)},
        }
        (scratch / "staging_report.json").write_text(json.dumps(report, indent=2))
        for old in output.iterdir():
            if old == scratch:
                continue
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
        for new in scratch.iterdir():
            new.replace(output / new.name)
        scratch.rmdir()
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return report


def _default_source() -> str:
    """In a Processing container the archive arrives as the single file of the data input."""
    return CONTAINER_INPUT if Path(CONTAINER_INPUT).is_dir() else "cifar-100"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-source", default=None,
                        help="'cifar-100' (official download), s3:// URI, file:// URL, archive path or "
                             f"a directory holding one archive (default: {CONTAINER_INPUT} if present, else cifar-100)")
    parser.add_argument("--output-dir", default=CONTAINER_OUTPUT)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--md5", default=None, help="expected MD5 of a custom archive")
    parser.add_argument("--cache-dir", default="~/.cache/scones")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = parse_args(argv)
    if not 0 < args.validation_fraction < 0.5:
        log.error("--validation-fraction %s is outside (0, 0.5)", args.validation_fraction)
        return 2
    try:
        archive = resolve_archive(args.data_source or _default_source(), args.cache_dir, args.md5)
        report = stage(archive, args.output_dir, args.validation_fraction, args.seed)
    except Exception as exc:   # the CLI's job is a clear one-line failure
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    log.info("staged %s into %s in %.2fs", report["totals"], args.output_dir, report["seconds"]["total"])
    print(json.dumps({"totals": report["totals"], "output_dir": str(args.output_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
