"""The stand-in trainer on a small synthetic dataset, through its container contract."""
import json

import numpy as np
import pytest

from local_runtime.serving.model import ImageClassifier
from local_runtime.trainer import train as trainer
from processing.prepare_data import stage
from tests.builders import make_cifar_archive, png_bytes


@pytest.fixture(scope="module")
def opt_ml(tmp_path_factory):
    root = tmp_path_factory.mktemp("job")
    staged = stage(make_cifar_archive(root / "a.tar.gz", per_class_train=60, per_class_test=10), root / "staged",
                   validation_fraction=0.2)
    opt_ml = root / "opt" / "ml"
    data = opt_ml / "input" / "data"
    data.mkdir(parents=True)
    for split in ("train", "validation"):
        (data / split).symlink_to(root / "staged" / split, target_is_directory=True)
        (data / f"{split}_lst").mkdir(parents=True, exist_ok=True)
        (data / f"{split}_lst" / f"{split}.lst").write_text((root / "staged" / f"{split}.lst").read_text())
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps({
        "num_classes": "2", "image_shape": "3,32,32", "epochs": "6", "learning_rate": "0.05", "mini_batch_size": "32",
        "num_training_samples": str(staged["num_training_samples"]), "augmentation_type": "crop_color_transform"}))
    return opt_ml


def test_trains_exports_onnx_and_reports_metrics(opt_ml):
    assert trainer.main(["--opt-ml", str(opt_ml)]) == 0
    metrics = json.loads((opt_ml / "output" / "metrics.json").read_text())
    assert metrics["validation:accuracy"] >= 0.8            # the synthetic classes are easy to separate
    assert metrics["members"] == 1 and metrics["temperature"] == 1.0   # defaults: one network, no temperature
    model = ImageClassifier(opt_ml / "model")
    probabilities = model.predict([png_bytes(8, seed=1), png_bytes(48, seed=2)])
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert probabilities[0].argmax() == 0 and probabilities[1].argmax() == 1


def test_wrong_sample_count_fails_with_reason(opt_ml, tmp_path):
    hyperparameters = opt_ml / "input" / "config" / "hyperparameters.json"
    original = hyperparameters.read_text()
    try:
        hyperparameters.write_text(json.dumps({**json.loads(original), "num_training_samples": "5"}))
        assert trainer.main(["--opt-ml", str(opt_ml)]) == 1
        assert "num_training_samples=5" in (opt_ml / "output" / "failure").read_text()
    finally:
        hyperparameters.write_text(original)


@pytest.mark.parametrize("raw, message", [
    ({"num_classes": "2", "image_shape": "3,32,32"}, "epochs is required"),
    ({"num_classes": "3", "epochs": "1"}, "num_classes=3"),
    ({"num_classes": "2", "epochs": "1", "optimizer": "lion"}, "optimizer"),
    ({"num_classes": "2", "epochs": "1", "image_shape": "32,32"}, "image_shape"),
    ({"num_classes": "2", "epochs": "ten"}, "not a int"),
])
def test_hyperparameter_errors(raw, message):
    with pytest.raises(trainer.HyperparameterError, match=message):
        trainer.parse_hyperparameters(raw)


def test_augment_keeps_shape():
    import torch

    batch = torch.zeros(4, 3, 32, 32)
    generator = torch.Generator().manual_seed(0)
    for kind in ("none", "crop", "crop_color", "crop_color_transform"):
        assert trainer.augment(batch, kind, generator).shape == batch.shape


def test_bad_local_trainer_knob_fails_with_reason(opt_ml, monkeypatch):
    monkeypatch.setenv("SCONES_LOCAL_TRAINER", '{"ensemble_size": 0}')
    assert trainer.main(["--opt-ml", str(opt_ml)]) == 1
    assert "SCONES_LOCAL_TRAINER ensemble_size = 0 is invalid" in (opt_ml / "output" / "failure").read_text()
