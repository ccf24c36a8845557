"""Human labels join the training split only; an image already in the test split never does."""
import hashlib
import json

import numpy as np
import pytest

from processing.prepare_data import png_bytes, read_splits, stage
from processing.staging import HumanLabelled, Sample, fold_human_labels
from scones_common.contracts.human_labels import (
    HumanLabelManifestError,
    LabelEntry,
    manifest_bytes,
    parse_manifest,
    set_name,
)


def _pixels(value: int) -> np.ndarray:
    return np.full((32, 32, 3), value, dtype=np.uint8)


def _splits() -> dict:
    return {"train": [Sample(_pixels(1), 0, "a")], "validation": [Sample(_pixels(2), 1, "b")],
            "test": [Sample(_pixels(3), 0, "c")]}


def test_labels_go_to_training_only_and_the_test_split_is_never_trained_on():
    splits = _splits()
    labelled = [HumanLabelled("r1", "s3://b/new.png", "x", "motorcycle", _pixels(10)),
                HumanLabelled("r2", "s3://b/test.png", "x", "bicycle", _pixels(3)),                 # pixels in test
                HumanLabelled("r3", "s3://b/test-bytes.png", "testsha", "bicycle", _pixels(11)),    # bytes in test
                HumanLabelled("r4", "s3://b/a.png", "x", "bicycle", _pixels(12)),
                HumanLabelled("r5", "s3://b/a-again.png", "x", "motorcycle", _pixels(12)),          # two labels
                HumanLabelled("r6", "s3://b/gone.png", "", "bicycle", problem="the image was gone"),
                HumanLabelled("r7", "s3://b/train.png", "x", "bicycle", _pixels(1))]                # in training
    folded = fold_human_labels(splits, labelled, {"testsha"})
    assert [s.source_name for s in splits["train"]] == ["a", "human-r1"] and splits["train"][1].class_id == 1
    assert len(splits["validation"]) == 1 and len(splits["test"]) == 1
    report = folded.report()
    assert report["used"] == 1 and report["skipped"] == 6
    assert report["skipped_by_reason"] == {"in the test split": 2, "labelled differently by another review": 2,
                                           "the image was gone": 1, "already in training or validation": 1}


def test_the_manifest_is_named_by_its_content_and_checked():
    entry = LabelEntry("r1", "s3://b/k.png", "ab", "bicycle", "images/r1.png")
    assert set_name([entry]) == set_name([entry]) != set_name([]) and set_name([]).startswith("sha256-")
    assert parse_manifest(manifest_bytes([entry]), "m") == [entry]
    with pytest.raises(HumanLabelManifestError, match="not under images/"):
        parse_manifest(manifest_bytes([LabelEntry("r", "i", "", "bicycle", "../etc/passwd")]), "m")
    with pytest.raises(HumanLabelManifestError, match="not JSON"):
        parse_manifest(b"{", "m")


def test_staging_counts_the_human_labels_used_and_skipped(cifar_archive, tmp_path):
    staged, _ = read_splits(cifar_archive, 0.25, 1)
    labels = tmp_path / "labels"
    (labels / "images").mkdir(parents=True)
    test_copy = png_bytes(staged.splits["test"][0].image)         # a reviewed image that is a test image
    new = png_bytes(np.full((32, 32, 3), 77, dtype=np.uint8))
    (labels / "images" / "r1.png").write_bytes(test_copy)
    (labels / "images" / "r2.png").write_bytes(new)
    entries = [LabelEntry("r1", "s3://b/test/1.png", hashlib.sha256(test_copy).hexdigest(), "bicycle", "images/r1.png"),
               LabelEntry("r2", "s3://b/incoming/2.png", hashlib.sha256(new).hexdigest(), "motorcycle",
                          "images/r2.png"),
               LabelEntry("r3", "s3://b/incoming/3.png", "", "car", "images/r3.png")]
    (labels / "manifest.json").write_bytes(manifest_bytes(entries))
    without = stage(cifar_archive, tmp_path / "plain", validation_fraction=0.25, seed=1)
    report = stage(cifar_archive, tmp_path / "out", validation_fraction=0.25, seed=1, human_labels_dir=labels)
    human = report["human_labels"]
    assert human["used"] == 1 and human["skipped_by_reason"] == {"in the test split": 1,
                                                                  "label 'car' is not a class": 1}
    assert report["totals"]["train"] == without["totals"]["train"] + 1
    assert report["totals"]["test"] == without["totals"]["test"]
    assert report["totals"]["validation"] == without["totals"]["validation"]
    saved = json.loads((tmp_path / "out" / "staging_report.json").read_text())
    assert saved["human_labels"]["used_reviews"] == [{"review_id": "r2", "image": "s3://b/incoming/2.png",
                                                      "label": "motorcycle"}]
    assert any("human-r2" in line for line in (tmp_path / "out" / "train.lst").read_text().splitlines())
