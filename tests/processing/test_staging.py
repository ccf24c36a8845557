import numpy as np
import pytest

from processing.staging import DataCheckError, Sample, build_splits, drop_duplicates, stratified_split


def _samples(n_per_class, seed=0, start=0):
    rng = np.random.default_rng(seed)
    return [Sample(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), c, f"s{start + i}_{c}")
            for c in (0, 1) for i in range(n_per_class)]


def test_stratified_split_is_seeded_and_balanced():
    samples = _samples(50)
    first, second = stratified_split(samples, 0.2, seed=3)
    again, _ = stratified_split(samples, 0.2, seed=3)
    assert [s.source_name for s in first] == [s.source_name for s in again]
    assert sorted(s.class_id for s in second) == [0] * 10 + [1] * 10
    assert len(first) == 80


def test_duplicates_of_test_images_are_dropped_from_train():
    test = _samples(5, seed=1)
    train = _samples(20, seed=2) + [test[0], test[0]]
    staged = build_splits(train, test, 0.1, seed=0)
    assert staged.duplicates_dropped == {"test": 0, "train": 2}
    test_hashes = {s.image.tobytes() for s in staged.splits["test"]}
    assert not any(s.image.tobytes() in test_hashes for s in staged.splits["train"] + staged.splits["validation"])


def test_drop_duplicates_counts():
    samples = _samples(3)
    kept, dropped = drop_duplicates(samples + samples[:2], set())
    assert len(kept) == 6 and dropped == 2


def test_missing_class_fails():
    only_bicycles = [s for s in _samples(20) if s.class_id == 0]
    with pytest.raises(DataCheckError, match="no images of"):
        build_splits(only_bicycles, _samples(5, seed=9), 0.1, seed=0)


def test_imbalance_fails():
    train = [s for s in _samples(40) if s.class_id == 0] + [s for s in _samples(10, seed=5) if s.class_id == 1]
    with pytest.raises(DataCheckError, match="imbalanced"):
        build_splits(train, _samples(5, seed=9), 0.1, seed=0)


def test_an_image_labelled_with_both_classes_is_dropped_everywhere_and_reported():
    """It used to stay, silently, as whichever label came first (bicycle)."""
    test = _samples(6, seed=1)
    both = test[0]
    relabelled = Sample(both.image, 1 - both.class_id, "same_pixels_other_label.png")
    train = _samples(20, seed=2) + [relabelled]
    staged = build_splits(train, test + [Sample(both.image, 1 - both.class_id, "again.png")], 0.1, seed=0)
    kept = [s.image.tobytes() for split in staged.splits.values() for s in split]
    assert both.image.tobytes() not in kept
    assert staged.conflicting_labels == sorted([both.source_name, "again.png", "same_pixels_other_label.png"])
