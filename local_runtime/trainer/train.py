"""Local stand-in for the built-in ``image-classification`` algorithm (CPU, PyTorch → ONNX).

Honours the same container contract: channels ``train``, ``validation``, ``train_lst``,
``validation_lst`` under /opt/ml/input/data, hyperparameters from
/opt/ml/input/config/hyperparameters.json (validated against the algorithm's documented
hyperparameters, scones_common/algorithm_contract.py), the model in /opt/ml/model, a one-line
reason in /opt/ml/output/failure, the final metrics in /opt/ml/output/metrics.json. Only the seed
and the thread count are its own (``SCONES_LOCAL_TRAINER``, local_settings.py).

It trains on the train channel, scores the validation channel after every epoch and logs as the
algorithm does (``Epoch[0] Train-accuracy=…``, ``Epoch[0] Validation-accuracy=…``, which SageMaker's
metric definitions ``train:accuracy`` and ``validation:accuracy`` match); the final metrics are those
two, from the last epoch. The hyperparameters keep their documented meanings: ``use_pretrained_model``
picks the network (network.py), the layers it trains follow ``optimizer``, ``learning_rate`` (with
``lr_scheduler_step`` / ``lr_scheduler_factor``), ``momentum``, ``weight_decay``, ``beta_1``,
``beta_2``, ``eps``, ``gamma``, ``mini_batch_size``, ``epochs`` and ``early_stopping*``. Those with
no meaning here are accepted and logged (:data:`IGNORED`).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from local_runtime.errors import LocalRuntimeError
from local_runtime.trainer.data import ChannelError, load_channel
from local_runtime.trainer.local_settings import LocalSettingsError, LocalTrainerSettings, from_environment
from local_runtime.trainer.network import (
    PIXEL_MEAN,
    PIXEL_STD,
    PretrainedWeightsError,
    export_onnx,
    features_of,
    imagenet_features,
    small_cnn,
    unstandardised,
)
from scones_common import algorithm_contract
from scones_common.algorithm_contract import HyperparameterValidationError
from scones_common.contracts.classes import CLASS_NAMES
from scones_common.contracts.container import OPT_ML, TrainingContainer
from scones_common.contracts.staged_data import LstFormatError

log = logging.getLogger("trainer")
LOG_FORMAT = "%(asctime)s %(message)s"
PRETRAINED_INPUT = (3, 32, 32)     # what the pretrained path decodes and serves: CIFAR's size (network.py)
# Documented hyperparameters with no meaning for the stand-in, and why (image_shape too with use_pretrained_model=1:
# ignored_by_stand_in)
IGNORED = {
    "num_layers": "no ResNet weights offline: use_pretrained_model picks EfficientNet-Lite0 features or a small CNN",
    "resize": "images are decoded straight to the network's input size",
    "checkpoint_frequency": "no checkpoints are saved; the model is the last epoch's",
    "kv_store": "one machine", "precision_dtype": "float32 on CPU", "top_k": "two classes",
    "multi_label": "single-label .lst files", "use_weighted_loss": "single-label .lst files",
}

Hyperparameters = dict[str, object]      # every documented name's typed value (algorithm_contract.validate)


class HyperparameterError(LocalRuntimeError, ValueError):
    """Hyperparameters the algorithm accepts but the local stand-in cannot honour, or that contradict the data."""


def parse_hyperparameters(raw: Mapping[str, str], content_types: Mapping[str, str] | None = None) -> Hyperparameters:
    """Validates like the built-in algorithm (names, values, defaults), then the stand-in's own limits."""
    values = algorithm_contract.validate(raw, content_types)
    if values["image_shape"][0] != 3:
        raise HyperparameterError(f"image_shape={raw.get('image_shape')} must be 3,<height>,<width>: "
                                  "the local stand-in trains on RGB images")
    if values["num_classes"] != len(CLASS_NAMES):
        raise HyperparameterError(f"num_classes={values['num_classes']}: the local stand-in exports "
                                  f"{len(CLASS_NAMES)} classes ({', '.join(CLASS_NAMES)})")
    return values


def pretrained(hp: Hyperparameters) -> bool:
    return hp["use_pretrained_model"] == "1"


def ignored_by_stand_in(raw: Mapping[str, str], hp: Hyperparameters) -> list[str]:
    """The documented hyperparameters the job set that the local stand-in accepts but does not act on, with why."""
    ignored = {**IGNORED, "image_shape": "the pretrained trunk takes the 32 px images upsampled to 96 px"} \
        if pretrained(hp) else IGNORED
    return [f"{name} ({ignored[name]})" for name in sorted(set(raw) & set(ignored))]


def optimizer_for(hp: Hyperparameters, parameters) -> torch.optim.Optimizer:
    """The documented optimizers: momentum and weight_decay for sgd and nag only; beta_1, beta_2 and eps for
    adam; gamma and eps for rmsprop."""
    rate = hp["learning_rate"]
    if hp["optimizer"] in ("sgd", "nag"):
        return torch.optim.SGD(parameters, lr=rate, momentum=hp["momentum"], nesterov=hp["optimizer"] == "nag",
                               weight_decay=hp["weight_decay"])
    if hp["optimizer"] == "adam":
        return torch.optim.Adam(parameters, lr=rate, betas=(hp["beta_1"], hp["beta_2"]), eps=hp["eps"])
    return torch.optim.RMSprop(parameters, lr=rate, alpha=hp["gamma"], eps=hp["eps"])


def augment(batch: torch.Tensor, kind: str | None, generator: torch.Generator) -> torch.Tensor:
    """``crop``: a random window of the image padded by 4 px and a random horizontal flip; ``crop_color`` and
    ``crop_color_transform`` add a brightness and contrast jitter (the algorithm's hue/saturation/lightness
    jitter and affine transforms are not reproduced). None: the batch as it is.

    The crop is one flat gather over the whole batch: a Python loop per image cost a third of an epoch.
    """
    if kind is None:
        return batch
    n, c, h, w = batch.shape
    padded = nn.functional.pad(batch, (4, 4, 4, 4), mode="reflect")
    offsets = torch.randint(0, 9, (n, 2), generator=generator)
    rows, cols = offsets[:, 0:1] + torch.arange(h), offsets[:, 1:2] + torch.arange(w)
    flat = (rows.unsqueeze(2) * (w + 8) + cols.unsqueeze(1)).view(n, 1, h * w).expand(n, c, h * w)
    batch = padded.reshape(n, c, -1).gather(2, flat).view(n, c, h, w)
    batch = torch.where((torch.rand(n, generator=generator) < 0.5).view(n, 1, 1, 1), batch.flip(3), batch)
    if kind != "crop":
        scale = 1 + (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.4
        batch = batch * scale + (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.4
    return batch


def improved(accuracy: float, best: float, tolerance: float) -> bool:
    """``early_stopping_tolerance``: an improvement whose ratio to the previous best is below it is none."""
    return accuracy > best and (best == 0 or (accuracy - best) / best >= tolerance)


def fit(model: nn.Module, train_set: tuple[torch.Tensor, torch.Tensor],
        validation_set: tuple[torch.Tensor, torch.Tensor], hp: Hyperparameters, seed: int,
        augmentation: Callable[[torch.Tensor, torch.Generator], torch.Tensor] = lambda batch, _: batch,
        progress: Callable[[str], None] = log.info) -> dict[str, float]:
    """Trains ``model`` on the inputs of ``train_set``, scoring ``validation_set`` after every epoch; returns the
    last epoch's ``train:accuracy`` (over its mini-batches, as the algorithm reports it) and ``validation:accuracy``.

    A last mini-batch short of ``mini_batch_size`` is filled from the epoch's first images, as the
    algorithm's image iterator does. With ``early_stopping``, training ends once
    ``early_stopping_min_epochs`` have run and ``early_stopping_patience`` epochs in a row brought no
    improvement of the validation accuracy (:func:`improved`).
    """
    (x, y), (x_validation, y_validation) = train_set, validation_set
    generator = torch.Generator().manual_seed(seed)
    optimizer = optimizer_for(hp, model.parameters())
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(hp["lr_scheduler_step"] or []),
                                                    hp["lr_scheduler_factor"])
    batch_size, best, since_best, metrics = hp["mini_batch_size"], 0.0, 0, {}
    for epoch in range(hp["epochs"]):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), generator=generator)
        order = torch.cat([order, order[:-len(order) % batch_size]])
        correct = 0
        for index in order.split(batch_size):
            logits = model(augmentation(x[index], generator))
            loss = nn.functional.cross_entropy(logits, y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            correct += int((logits.argmax(1) == y[index]).sum())
        schedule.step()
        model.eval()
        with torch.no_grad():
            accuracy = int((model(x_validation).argmax(1) == y_validation).sum()) / len(y_validation)
        metrics = {"train:accuracy": correct / len(order), "validation:accuracy": accuracy}
        progress(f"Epoch[{epoch}] Train-accuracy={metrics['train:accuracy']:.6f}")
        progress(f"Epoch[{epoch}] Time cost={time.perf_counter() - started:.3f}")
        progress(f"Epoch[{epoch}] Validation-accuracy={accuracy:.6f}")
        best, since_best = (accuracy, 0) if improved(accuracy, best, hp["early_stopping_tolerance"]) else (best, since_best + 1)
        if hp["early_stopping"] == "True" and epoch + 1 >= hp["early_stopping_min_epochs"] \
                and since_best >= hp["early_stopping_patience"]:
            progress(f"Early stopping after epoch {epoch}: no validation accuracy improvement in {since_best} epochs")
            break
    return metrics


def scaled(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, C, H, W) pixels as the endpoint feeds them to the model: ``(pixel / 255 − mean) / std``."""
    return torch.from_numpy((images.astype(np.float32) / 255 - PIXEL_MEAN) / PIXEL_STD)


def train(hp: Hyperparameters, train_set: tuple[np.ndarray, np.ndarray], validation_set: tuple[np.ndarray, np.ndarray],
          local: LocalTrainerSettings = LocalTrainerSettings(),
          progress: Callable[[str], None] = log.info) -> tuple[nn.Module, dict[str, float]]:
    """The model to export (scaled images in, probabilities out) and the final metrics.

    With ``use_pretrained_model: 1`` the features of every image are computed once, and with an
    ``augmentation_type`` those of its mirror too (the flip that every kind includes), as more
    training examples; then the new layer is trained on them.
    """
    (x, y), (x_validation, y_validation) = [(scaled(images), torch.from_numpy(labels))
                                            for images, labels in (train_set, validation_set)]
    num_classes = hp["num_classes"]
    torch.manual_seed(local.seed)          # the new layers' initial weights
    if not pretrained(hp):
        network = small_cnn(num_classes)
        metrics = fit(network, (x, y), (x_validation, y_validation), hp, local.seed,
                      lambda batch, generator: augment(batch, hp["augmentation_type"], generator), progress)
        return nn.Sequential(network, nn.Softmax(dim=1)).eval(), metrics
    trunk = imagenet_features()
    started = time.perf_counter()
    mirrored = hp["augmentation_type"] is not None
    inputs = torch.cat([x, x.flip(3), x_validation] if mirrored else [x, x_validation])
    features = features_of(trunk, inputs, local.threads)
    train_features, validation_features = features[:-len(x_validation)], features[-len(x_validation):]
    progress(f"ImageNet features of {len(x)} training images{', their mirrors' if mirrored else ''} and "
             f"{len(x_validation)} validation images computed in {time.perf_counter() - started:.1f} s")
    mean, std = train_features.mean(dim=0), train_features.std(dim=0) + 1e-6
    layer = nn.Linear(trunk.width, num_classes)
    metrics = fit(layer, ((train_features - mean) / std, torch.cat([y, y]) if mirrored else y),
                  ((validation_features - mean) / std, y_validation), hp, local.seed, progress=progress)
    return nn.Sequential(trunk, unstandardised(layer, mean, std), nn.Softmax(dim=1)).eval(), metrics


def export_model(model: nn.Module, image_shape: tuple[int, int, int], model_dir: Path) -> None:
    """model.onnx (``image`` in, ``probabilities`` out) and model-meta.json, as local_runtime/serving/model.py loads them."""
    model_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(model, torch.zeros(1, *image_shape), model_dir / "model.onnx", "probabilities")
    (model_dir / "model-meta.json").write_text(json.dumps({
        "image_shape": list(image_shape), "mean": [PIXEL_MEAN] * 3, "std": [PIXEL_STD] * 3,
        "class_names": list(CLASS_NAMES), "framework": f"torch {torch.__version__} -> onnx",
        "algorithm": "image-classification (local stand-in)"}))


def _content_types(opt_ml: Path) -> dict[str, str]:
    """Channel content types from input/config/inputdataconfig.json, which SageMaker writes for every job."""
    path = opt_ml / "input" / "config" / "inputdataconfig.json"
    if not path.exists():
        return {}
    return {name: channel.get("ContentType", "") for name, channel in json.loads(path.read_text()).items()}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout)
    parser = argparse.ArgumentParser()
    parser.add_argument("--opt-ml", default=OPT_ML)
    container = TrainingContainer(Path(parser.parse_args(argv).opt_ml))
    failure = container.failure
    failure.parent.mkdir(parents=True, exist_ok=True)
    torch.set_flush_denormal(True)    # denormal floats are slow on x86 CPUs; tiny weights need no precision
    try:
        raw = json.loads(container.hyperparameters.read_text())
        hp = parse_hyperparameters(raw, _content_types(container.root))
        local = from_environment()
        torch.set_num_threads(1 if pretrained(hp) else local.threads)   # LocalTrainerSettings says why
        if ignored_by_stand_in(raw, hp):
            log.info("accepted, not acted on by the local stand-in: %s", "; ".join(ignored_by_stand_in(raw, hp)))
        shape = PRETRAINED_INPUT if pretrained(hp) else hp["image_shape"]
        train_set = load_channel(container.channel("train"), container.channel("train_lst"), shape)
        validation_set = load_channel(container.channel("validation"), container.channel("validation_lst"), shape)
        if hp["num_training_samples"] != len(train_set[0]):
            raise HyperparameterError(f"num_training_samples={hp['num_training_samples']} but train.lst lists "
                                      f"{len(train_set[0])} images")
        model, metrics = train(hp, train_set, validation_set, local)
        export_model(model, shape, container.model_dir)
    except (HyperparameterValidationError, HyperparameterError, LocalSettingsError, ChannelError, LstFormatError,
            PretrainedWeightsError, OSError, json.JSONDecodeError) as exc:
        reason = exc.failure_reason if isinstance(exc, HyperparameterValidationError) else f"{type(exc).__name__}: {exc}"
        failure.write_text(reason)
        log.error("%s", reason)
        return 1
    container.metrics.write_text(json.dumps(metrics))
    log.info("final metrics: %s", metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
