"""Local stand-in for the built-in ``image-classification`` algorithm (CPU, PyTorch → ONNX).

Honours the same container contract: channels ``train``, ``validation``, ``train_lst``,
``validation_lst`` under /opt/ml/input/data, hyperparameters from
/opt/ml/input/config/hyperparameters.json, the model in /opt/ml/model, a one-line reason in
/opt/ml/output/failure. The model is selected on the validation channel only.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from local_runtime.errors import LocalRuntimeError
from local_runtime.trainer.data import ChannelError, load_channel
from local_runtime.trainer.network import SmallVgg, WithSoftmax
from scones_common.contracts.classes import CLASS_NAMES
from scones_common.contracts.container import OPT_ML, TrainingContainer
from scones_common.contracts.staged_data import LstFormatError

log = logging.getLogger("trainer")


class HyperparameterError(LocalRuntimeError, ValueError):
    """A hyperparameter is missing or outside what the algorithm accepts."""


@dataclass(frozen=True)
class TrainSettings:
    num_classes: int
    image_shape: tuple[int, int, int]
    epochs: int
    learning_rate: float
    mini_batch_size: int
    optimizer: str = "nag"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    augmentation_type: str = "crop_color_transform"
    early_stopping: bool = False
    early_stopping_patience: int = 10
    early_stopping_min_epochs: int = 10
    num_training_samples: int | None = None
    use_pretrained_model: int = 0
    seed: int = 0


def parse_hyperparameters(raw: dict[str, str]) -> TrainSettings:
    def number(name, cast, default=None, lo=None, hi=None):
        if name not in raw:
            if default is None:
                raise HyperparameterError(f"hyperparameter {name} is required")
            return default
        try:
            value = cast(float(raw[name])) if cast is int else cast(raw[name])
        except ValueError:
            raise HyperparameterError(f"hyperparameter {name}={raw[name]!r} is not a {cast.__name__}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise HyperparameterError(f"hyperparameter {name}={value} is outside [{lo}, {hi}]")
        return value

    try:
        shape = tuple(int(v) for v in raw.get("image_shape", "3,32,32").split(","))
    except ValueError:
        raise HyperparameterError(f"image_shape={raw.get('image_shape')!r} is not 'channels,height,width'") from None
    if len(shape) != 3 or shape[0] != 3:
        raise HyperparameterError(f"image_shape={shape} must be 3,<height>,<width>")
    optimizer = raw.get("optimizer", "nag")
    if optimizer not in ("sgd", "nag", "adam", "rmsprop"):
        raise HyperparameterError(f"optimizer={optimizer!r} must be sgd, nag, adam or rmsprop")
    augmentation = raw.get("augmentation_type", "crop_color_transform")
    if augmentation not in ("none", "crop", "crop_color", "crop_color_transform"):
        raise HyperparameterError(f"augmentation_type={augmentation!r} is not supported")
    return TrainSettings(
        num_classes=number("num_classes", int, lo=2, hi=2), image_shape=shape,
        epochs=number("epochs", int, lo=1, hi=1000), learning_rate=number("learning_rate", float, 0.1, 1e-6, 10),
        mini_batch_size=number("mini_batch_size", int, 64, 1, 4096), optimizer=optimizer,
        momentum=number("momentum", float, 0.9, 0, 1), weight_decay=number("weight_decay", float, 5e-4, 0, 1),
        label_smoothing=number("label_smoothing", float, 0.1, 0, 0.5), augmentation_type=augmentation,
        early_stopping=raw.get("early_stopping", "false").lower() == "true",
        early_stopping_patience=number("early_stopping_patience", int, 10, 1),
        early_stopping_min_epochs=number("early_stopping_min_epochs", int, 10, 1),
        num_training_samples=number("num_training_samples", int, -1) if "num_training_samples" in raw else None,
        use_pretrained_model=number("use_pretrained_model", int, 0, 0, 1),
    )


def augment(batch: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Pad-4 random crop (+ brightness/contrast jitter, + horizontal flip) on a normalised batch."""
    if kind == "none":
        return batch
    n, _, h, w = batch.shape
    padded = nn.functional.pad(batch, (4, 4, 4, 4), mode="reflect")
    offsets = torch.randint(0, 9, (n, 2), generator=generator)
    batch = torch.stack([padded[i, :, y:y + h, x:x + w] for i, (y, x) in enumerate(offsets.tolist())])
    if kind in ("crop_color", "crop_color_transform"):
        scale = 1 + (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.4
        shift = (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.4
        batch = batch * scale + shift
    if kind == "crop_color_transform":
        flip = torch.rand(n, generator=generator) < 0.5
        batch = torch.where(flip.view(n, 1, 1, 1), batch.flip(3), batch)
    return batch


def _optimizer(settings: TrainSettings, parameters):
    if settings.optimizer in ("sgd", "nag"):
        return torch.optim.SGD(parameters, lr=settings.learning_rate, momentum=settings.momentum,
                               nesterov=settings.optimizer == "nag", weight_decay=settings.weight_decay)
    if settings.optimizer == "adam":
        return torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    return torch.optim.RMSprop(parameters, lr=settings.learning_rate, momentum=settings.momentum,
                               weight_decay=settings.weight_decay)


def _evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, loss_fn) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = model(images)
    return float((logits.argmax(1) == labels).float().mean()), float(loss_fn(logits, labels))


def train(settings: TrainSettings, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
          progress=log.info) -> tuple[nn.Module, dict, tuple[list[float], list[float]]]:
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    mean = train_x.astype(np.float32).mean(axis=(0, 2, 3)) / 255
    std = train_x.astype(np.float32).std(axis=(0, 2, 3)) / 255

    def normalise(x: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(x.astype(np.float32) / 255) - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)

    xt, yt, xv, yv = normalise(train_x), torch.from_numpy(train_y), normalise(val_x), torch.from_numpy(val_y)
    model = SmallVgg(settings.num_classes)
    optimizer = _optimizer(settings, model.parameters())
    steps_per_epoch = max(1, -(-len(xt) // settings.mini_batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.learning_rate,
                                                   total_steps=settings.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    plain_loss = nn.CrossEntropyLoss()
    best = {"validation:accuracy": -1.0, "validation:loss": float("inf"), "epoch": 0}
    best_state = None
    since_best = 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        correct = 0
        for start in range(0, len(xt), settings.mini_batch_size):
            index = order[start:start + settings.mini_batch_size]
            batch, target = augment(xt[index], settings.augmentation_type, generator), yt[index]
            logits = model(batch)
            loss = loss_fn(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            correct += int((logits.argmax(1) == target).sum())
        train_accuracy = correct / len(xt)
        val_accuracy, val_loss = _evaluate(model, xv, yv, plain_loss)
        progress(f"epoch {epoch}/{settings.epochs} train:accuracy={train_accuracy:.4f} "
                 f"validation:accuracy={val_accuracy:.4f} validation:loss={val_loss:.4f}")
        if (val_accuracy, -val_loss) >= (best["validation:accuracy"], -best["validation:loss"]):
            best = {"train:accuracy": train_accuracy, "validation:accuracy": val_accuracy,
                    "validation:loss": val_loss, "epoch": epoch}
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
            since_best = 0
        else:
            since_best += 1
        if (settings.early_stopping and epoch >= settings.early_stopping_min_epochs
                and since_best >= settings.early_stopping_patience):
            progress(f"early stopping at epoch {epoch}: no validation gain for {since_best} epochs")
            break
    model.load_state_dict(best_state)
    model.eval()
    return model, best, (mean.tolist(), std.tolist())


def export_model(model: nn.Module, settings: TrainSettings, normalisation, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, *settings.image_shape)
    torch.onnx.export(WithSoftmax(model).eval(), (dummy,), str(model_dir / "model.onnx"), input_names=["image"],
                      output_names=["probabilities"], dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                      dynamo=True, verbose=False)
    mean, std = normalisation
    (model_dir / "model-meta.json").write_text(json.dumps({
        "image_shape": list(settings.image_shape), "mean": mean, "std": std, "class_names": list(CLASS_NAMES),
        "framework": f"torch {torch.__version__} -> onnx", "algorithm": "image-classification (local stand-in)"}))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    parser = argparse.ArgumentParser()
    parser.add_argument("--opt-ml", default=OPT_ML)
    container = TrainingContainer(Path(parser.parse_args(argv).opt_ml))
    failure = container.failure
    failure.parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    started = time.perf_counter()
    try:
        raw = json.loads(container.hyperparameters.read_text())
        settings = parse_hyperparameters(raw)
        if settings.use_pretrained_model:
            log.warning("use_pretrained_model=1: no pretrained weights offline; training from scratch")
        train_x, train_y = load_channel(container.channel("train"), container.channel("train_lst"), settings.image_shape)
        val_x, val_y = load_channel(container.channel("validation"), container.channel("validation_lst"),
                                    settings.image_shape)
        if settings.num_training_samples not in (None, len(train_x)):
            raise HyperparameterError(f"num_training_samples={settings.num_training_samples} but train.lst lists "
                                      f"{len(train_x)} images")
        model, metrics, normalisation = train(settings, train_x, train_y, val_x, val_y)
        export_model(model, settings, normalisation, container.model_dir)
    except (HyperparameterError, ChannelError, LstFormatError, OSError, json.JSONDecodeError) as exc:
        failure.write_text(f"{type(exc).__name__}: {exc}")
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    container.metrics.write_text(json.dumps(metrics))
    log.info("best epoch %d: %s", metrics["epoch"], metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
