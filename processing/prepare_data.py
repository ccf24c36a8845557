"""Stages CIFAR-100 bicycles and motorcycles for the built-in image-classification algorithm.

Output (``--output-dir``)::

    train/<class>/<n>_<name>.png   validation/…   test/…
    train.lst  validation.lst  test.lst      index<TAB>class id<TAB>relative path
    staging_report.json                      counts, label map, duplicates, human labels used and skipped, timings

With ``--human-labels-dir`` (the human-label set ``run-pipeline`` passes as ``HumanLabelsUri``,
``scones_common/contracts/human_labels.py``) the images people labelled in review join the
training split only; an image whose bytes or pixels are in the test split is skipped, and the
report says how many were used and skipped, and why.

Runs as a SageMaker Processing entry point (defaults are the container paths) and as the
``scones-prepare-data`` command. The output directory is filled in place (it may be a mount
point): everything is written to a hidden folder inside it and moved into place at the end, so
a failure leaves no partial output (see ``processing/output_dir.py``). A directory that holds
anything else than an earlier output of this command is refused, never emptied.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from processing.cifar_archive import CifarArchive
from processing.cifar_source import resolve_archive, sha256_of
from processing.output_dir import COMMAND, check_output_dir, staging_area
from processing.staging import (
    FoldedLabels,
    HumanLabelled,
    Sample,
    StagedSplits,
    build_splits,
    class_counts,
    fold_human_labels,
    select_classes,
)
from scones_common.cli_args import whole_number
from scones_common.contracts.classes import CLASS_NAMES
from scones_common.contracts.container import HUMAN_LABELS_INPUT, STAGING_INPUT, STAGING_OUTPUT
from scones_common.contracts.human_labels import MANIFEST_FILE, known_label, parse_manifest
from scones_common.contracts.staged_data import SPLITS, STAGING_REPORT, LstEntry, format_lst, image_path, lst_name
from scones_common.errors import cli_entry

log = logging.getLogger("prepare_data")


def png_bytes(image) -> bytes:
    """The staged PNG of an image: the same pixels always give the same bytes (what the test split's hashes use)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _write_png(path: Path, sample: Sample) -> None:
    path.write_bytes(png_bytes(sample.image))


def read_human_labels(folder: Path) -> list[HumanLabelled]:
    """The human-label set's entries, each decoded to the model's 32×32 input, or with the reason it cannot be used."""
    from scones_common.images import InvalidImageError, decode_rgb

    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        return []
    labelled = []
    for entry in parse_manifest(manifest.read_bytes(), str(manifest)):
        item = {"review_id": entry.review_id, "image_uri": entry.image, "image_sha256": entry.image_sha256,
                "label": entry.label}
        path = folder / entry.file if entry.file else None
        if not known_label(entry.label):
            labelled.append(HumanLabelled(**item, problem=f"label {entry.label!r} is not a class"))
        elif path is None or not path.is_file():
            labelled.append(HumanLabelled(**item, problem="the image was gone when the run started"))
        else:
            data = path.read_bytes()
            item["image_sha256"] = hashlib.sha256(data).hexdigest()     # what the bytes are, whatever was recorded
            try:
                labelled.append(HumanLabelled(**item, pixels=decode_rgb(data, 32, 32)))
            except InvalidImageError as exc:
                labelled.append(HumanLabelled(**item, problem=f"not an image this project decodes ({exc})"))
    return labelled


def write_split(root: Path, split: str, samples: list[Sample], pool: ThreadPoolExecutor) -> None:
    entries, jobs = [], []
    for name in CLASS_NAMES:
        (root / split / name).mkdir(parents=True)
    for index, sample in enumerate(samples):
        entry = LstEntry(index, sample.class_id, image_path(sample.class_id, index, sample.source_name))
        jobs.append(pool.submit(_write_png, root / split / entry.path, sample))
        entries.append(entry)
    for job in jobs:
        job.result()
    (root / lst_name(split)).write_text(format_lst(entries))


def read_splits(archive_path: str | Path, validation_fraction: float = 0.1,
                seed: int = 42) -> tuple[StagedSplits, dict[str, int]]:
    """Everything staging does short of writing: the archive read in full and checked, the splits built and
    checked. What ``scones-local run --fresh`` asks of an archive before it forgets the earlier runs."""
    archive = CifarArchive(archive_path)
    fine_ids = archive.fine_label_ids(list(CLASS_NAMES))
    staged = build_splits(select_classes(archive.split("train"), fine_ids),
                          select_classes(archive.split("test"), fine_ids), validation_fraction, seed)
    return staged, fine_ids


def stage(archive_path: str | Path, output_dir: str | Path, validation_fraction: float = 0.1,
          seed: int = 42, human_labels_dir: str | Path | None = None) -> dict:
    """Stages one archive into ``output_dir`` (an earlier output there is replaced) and returns the report."""
    output = check_output_dir(output_dir)
    started = time.perf_counter()
    staged, fine_ids = read_splits(archive_path, validation_fraction, seed)
    folded = FoldedLabels()
    if human_labels_dir is not None:
        test_digests = {hashlib.sha256(png_bytes(s.image)).hexdigest() for s in staged.splits["test"]}
        folded = fold_human_labels(staged.splits, read_human_labels(Path(human_labels_dir)), test_digests)
        log.info("human labels: %d used in training, %d skipped %s", len(folded.used), len(folded.skipped),
                 folded.report()["skipped_by_reason"])
    read_seconds = time.perf_counter() - started
    if staged.conflicting_labels:
        log.warning("dropped %d images labelled with both classes (e.g. %s): their label is unknown",
                    len(staged.conflicting_labels), staged.conflicting_labels[0])

    with staging_area(output) as scratch:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for split in SPLITS:
                write_split(scratch, split, staged.splits[split], pool)
        report = {
            "written_by": COMMAND,
            "source_archive": str(archive_path),
            "source_sha256": sha256_of(Path(archive_path)),
            "label_map": {str(i): name for i, name in enumerate(CLASS_NAMES)},
            "cifar_fine_label_ids": fine_ids,
            "counts": {split: class_counts(staged.splits[split]) for split in SPLITS},
            "totals": {split: len(staged.splits[split]) for split in SPLITS},
            "num_training_samples": len(staged.splits["train"]),
            "duplicates_dropped": staged.duplicates_dropped,
            "conflicting_labels_dropped": staged.conflicting_labels,
            "human_labels": {"set": str(human_labels_dir or ""), **folded.report()},
            "image_shape": [3, 32, 32],
            "validation_fraction": validation_fraction,
            "seed": seed,
            "seconds": {"read": round(read_seconds, 3), "total": round(time.perf_counter() - started, 3)},
        }
        (scratch / STAGING_REPORT).write_text(json.dumps(report, indent=2))
    return report


def _default_source() -> str:
    """In a Processing container the archive arrives as the single file of the data input."""
    return STAGING_INPUT if Path(STAGING_INPUT).is_dir() else "cifar-100"


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"{text} is outside (0, 0.5)")
    return value


SEED_MAX = 10**9      # config data.seed's bound (scones_common.config imports yaml, which Processing images may lack)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-source", default=None,
                        help="'cifar-100' (official download), s3:// URI, file:// URL, archive path or "
                             f"a directory holding one archive (default: {STAGING_INPUT} if present, else cifar-100)")
    parser.add_argument("--output-dir", default=STAGING_OUTPUT)
    parser.add_argument("--validation-fraction", type=_fraction, default=0.1)
    parser.add_argument("--seed", type=whole_number(0, SEED_MAX), default=42)
    parser.add_argument("--md5", default=None, help="expected MD5 of a custom archive")
    parser.add_argument("--human-labels-dir", default=None,
                        help="a human-label set (manifest.json + images/): its images join the training split "
                             f"(default: {HUMAN_LABELS_INPUT} if present)")
    parser.add_argument("--cache-dir", default="~/.cache/scones")
    return parser.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_output_dir(args.output_dir)           # before any download: a refused directory costs nothing
    source = _default_source() if args.data_source is None else args.data_source     # "" is an error, not "download"
    archive = resolve_archive(source, args.cache_dir, args.md5)
    labels = args.human_labels_dir or (HUMAN_LABELS_INPUT if Path(HUMAN_LABELS_INPUT).is_dir() else None)
    report = stage(archive, args.output_dir, args.validation_fraction, args.seed, labels)
    log.info("staged %s into %s in %.2fs", report["totals"], args.output_dir, report["seconds"]["total"])
    print(json.dumps({"totals": report["totals"], "output_dir": str(args.output_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
