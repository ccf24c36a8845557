"""Pure staging logic: pick the two classes, de-duplicate, split, check. No I/O here."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from processing.cifar_archive import CifarSplit
from processing.errors import ProcessingError
from scones_common.contracts.classes import CLASS_NAMES

MAX_IMBALANCE = 1.5


class DataCheckError(ProcessingError):
    """The staged data would be unusable: an empty class, a badly skewed split, bad shapes."""


@dataclass(frozen=True)
class Sample:
    image: np.ndarray
    class_id: int
    source_name: str


@dataclass
class StagedSplits:
    splits: dict[str, list[Sample]]
    duplicates_dropped: dict[str, int] = field(default_factory=dict)
    conflicting_labels: list[str] = field(default_factory=list)    # source names of images dropped: two labels


def select_classes(split: CifarSplit, fine_ids: dict[str, int]) -> list[Sample]:
    class_of = {fine_id: CLASS_NAMES.index(name) for name, fine_id in fine_ids.items()}
    keep = np.flatnonzero(np.isin(split.fine_labels, list(class_of)))
    return [Sample(split.images[i], class_of[int(split.fine_labels[i])], split.filenames[i]) for i in keep]


def image_hash(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def drop_duplicates(samples: list[Sample], seen: set[str]) -> tuple[list[Sample], int]:
    """Drops exact pixel duplicates, also of images in ``seen`` (so test never leaks into train)."""
    kept = []
    for sample in samples:
        digest = image_hash(sample.image)
        if digest not in seen:
            seen.add(digest)
            kept.append(sample)
    return kept, len(samples) - len(kept)


def stratified_split(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Carves ``fraction`` of each class off into a second list, reproducibly for a seed."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for class_id in range(len(CLASS_NAMES)):
        members = [s for s in samples if s.class_id == class_id]
        order = rng.permutation(len(members))
        n_second = int(round(len(members) * fraction))
        second += [members[i] for i in order[:n_second]]
        first += [members[i] for i in order[n_second:]]
    return first, second


def class_counts(samples: list[Sample]) -> dict[str, int]:
    counts = np.bincount([s.class_id for s in samples], minlength=len(CLASS_NAMES))
    return {name: int(counts[i]) for i, name in enumerate(CLASS_NAMES)}


def check_splits(splits: dict[str, list[Sample]]) -> None:
    for name, samples in splits.items():
        counts = class_counts(samples)
        empty = [c for c, n in counts.items() if n == 0]
        if empty:
            raise DataCheckError(f"split '{name}' has no images of {empty}; the archive is missing a class")
        if max(counts.values()) / min(counts.values()) > MAX_IMBALANCE:
            raise DataCheckError(f"split '{name}' is imbalanced {counts} (max/min > {MAX_IMBALANCE})")
        bad = [s.source_name for s in samples if s.image.shape != (32, 32, 3) or s.image.dtype != np.uint8]
        if bad:
            raise DataCheckError(f"split '{name}' has {len(bad)} images not 32×32×3 uint8, e.g. {bad[0]}")


def conflicting_labels(samples: list[Sample]) -> set[str]:
    """Digests of images that appear with two class ids: which label is right is unknown, so no copy of them
    may train or score the model."""
    labels: dict[str, set[int]] = {}
    for sample in samples:
        labels.setdefault(image_hash(sample.image), set()).add(sample.class_id)
    return {digest for digest, ids in labels.items() if len(ids) > 1}


def build_splits(train: list[Sample], test: list[Sample], validation_fraction: float, seed: int) -> StagedSplits:
    seen: set[str] = set()
    conflicting = conflicting_labels(train + test)
    dropped = sorted(s.source_name for s in train + test if image_hash(s.image) in conflicting)
    train = [s for s in train if image_hash(s.image) not in conflicting]
    test = [s for s in test if image_hash(s.image) not in conflicting]
    test, test_dups = drop_duplicates(test, seen)
    train, train_dups = drop_duplicates(train, seen)
    train, validation = stratified_split(train, validation_fraction, seed)
    splits = {"train": train, "validation": validation, "test": test}
    check_splits(splits)
    return StagedSplits(splits, {"test": test_dups, "train": train_dups}, dropped)


@dataclass(frozen=True)
class HumanLabelled:
    """A reviewed image decoded to the model's input, with the person's class; or why it cannot be used."""
    review_id: str
    image_uri: str
    image_sha256: str                 # of the image's bytes as the workflow read them
    label: str
    pixels: np.ndarray | None = None  # 32×32×3 uint8; None when unusable
    problem: str = ""                 # why it cannot be used (decoded elsewhere: missing, not an image, unknown label)


@dataclass
class FoldedLabels:
    used: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)     # {review_id, image, reason}

    def report(self) -> dict:
        reasons: dict[str, int] = {}
        for item in self.skipped:
            reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
        return {"used": len(self.used), "skipped": len(self.skipped), "skipped_by_reason": reasons,
                "used_reviews": self.used, "skipped_reviews": self.skipped}


def fold_human_labels(splits: dict[str, list[Sample]], labelled: list[HumanLabelled],
                      test_file_digests: set[str]) -> FoldedLabels:
    """Adds the human-labelled images to the training split only (never validation or test).

    Skipped, each with its reason: an image whose bytes (SHA-256) or pixels are in the test split
    (it would score the model on what it learned), one already in training or validation, one two
    people labelled differently (which label is right is unknown), and one that could not be used.
    A repeat of the same image with the same label is used once.
    """
    folded = FoldedLabels()
    test_pixels = {image_hash(s.image) for s in splits["test"]}
    known_pixels = {image_hash(s.image) for split in ("train", "validation") for s in splits[split]}
    labels_of: dict[str, set[str]] = {}
    for item in labelled:
        if item.pixels is not None:
            labels_of.setdefault(image_hash(item.pixels), set()).add(item.label)

    def skip(item: HumanLabelled, reason: str) -> None:
        folded.skipped.append({"review_id": item.review_id, "image": item.image_uri, "reason": reason})

    for item in sorted(labelled, key=lambda i: i.review_id):
        if item.pixels is None:
            skip(item, item.problem or "not usable")
            continue
        digest = image_hash(item.pixels)
        if item.image_sha256 in test_file_digests or digest in test_pixels:
            skip(item, "in the test split")
        elif len(labels_of[digest]) > 1:
            skip(item, "labelled differently by another review")
        elif digest in known_pixels:
            skip(item, "already in training or validation")
        else:
            known_pixels.add(digest)
            splits["train"].append(Sample(item.pixels, CLASS_NAMES.index(item.label), f"human-{item.review_id}"))
            folded.used.append({"review_id": item.review_id, "image": item.image_uri, "label": item.label})
    return folded
