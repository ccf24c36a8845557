"""Local stand-in for the built-in ``image-classification`` algorithm (CPU, PyTorch → ONNX).

Honours the same container contract: channels ``train``, ``validation``, ``train_lst``,
``validation_lst`` under /opt/ml/input/data, hyperparameters from
/opt/ml/input/config/hyperparameters.json (validated against the algorithm's documented
hyperparameters, scones_common/algorithm_contract.py), the model in /opt/ml/model, a one-line
reason in /opt/ml/output/failure. Knobs that exist only for this stand-in (ensemble size, width,
seed, …: ``LocalTrainerConfig`` in scones_common/config.py) come from the ``SCONES_LOCAL_TRAINER``
environment variable, never from the hyperparameters.
The model is selected on the validation channel only.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from local_runtime.errors import LocalRuntimeError
from local_runtime.pipeline.runners.job_process import die_with_parent
from local_runtime.trainer.data import ChannelError, load_channel
from local_runtime.trainer.local_settings import LocalSettingsError, LocalTrainerConfig, from_environment
from local_runtime.trainer.network import ServingGraph, SmallVgg, combine
from local_runtime.trainer.onnx_export import export_onnx, localise_branch_weights
from local_runtime.trainer.pretrained import ImageNetProbeError, fit_probe, imagenet_trunk
from scones_common import algorithm_contract
from scones_common.algorithm_contract import HyperparameterValidationError
from scones_common.contracts.classes import CLASS_NAMES
from scones_common.contracts.container import OPT_ML, TrainingContainer
from scones_common.contracts.staged_data import LstFormatError

log = logging.getLogger("trainer")
LOG_FORMAT = "%(asctime)s %(message)s"
IGNORED_BY_STAND_IN = frozenset({"beta_1", "beta_2", "checkpoint_frequency", "early_stopping_tolerance", "eps", "gamma",
                                 "kv_store", "lr_scheduler_factor", "lr_scheduler_step", "multi_label", "num_layers",
                                 "precision_dtype", "resize", "top_k", "use_weighted_loss"})


class HyperparameterError(LocalRuntimeError, ValueError):
    """Hyperparameters the algorithm accepts but the local stand-in cannot honour, or that contradict the data."""


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
    augmentation_type: str = "crop_color_transform"
    early_stopping: bool = False
    early_stopping_patience: int = 10
    early_stopping_min_epochs: int = 10
    num_training_samples: int | None = None
    use_pretrained_model: int = 0


def parse_hyperparameters(raw: dict[str, str], content_types: Mapping[str, str] | None = None) -> TrainSettings:
    """Validates like the built-in algorithm (names, values, defaults), then the stand-in's own limits."""
    values = algorithm_contract.validate(raw, content_types)
    shape = values["image_shape"]
    if shape[0] != 3:
        raise HyperparameterError(f"image_shape={raw.get('image_shape')} must be 3,<height>,<width>: "
                                  "the local stand-in trains on RGB images")
    if values["num_classes"] != len(CLASS_NAMES):
        raise HyperparameterError(f"num_classes={values['num_classes']}: the local stand-in exports "
                                  f"{len(CLASS_NAMES)} classes ({', '.join(CLASS_NAMES)})")
    return TrainSettings(
        num_classes=values["num_classes"], image_shape=shape, epochs=values["epochs"],
        learning_rate=values["learning_rate"], mini_batch_size=values["mini_batch_size"],
        optimizer=values["optimizer"], momentum=values["momentum"], weight_decay=values["weight_decay"],
        augmentation_type=values["augmentation_type"] or "none",
        early_stopping=values["early_stopping"] == "True",
        early_stopping_patience=values["early_stopping_patience"],
        early_stopping_min_epochs=values["early_stopping_min_epochs"],
        num_training_samples=values["num_training_samples"],
        use_pretrained_model=int(values["use_pretrained_model"]),
    )


def ignored_by_stand_in(raw: Mapping[str, str]) -> list[str]:
    """Documented hyperparameters the job set that the local stand-in accepts but does not act on."""
    return sorted(set(raw) & IGNORED_BY_STAND_IN)


def augment(batch: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Pad-4 random crop (+ brightness/contrast jitter, + horizontal flip) on a normalised batch.

    The crop is one flat gather over the whole batch: a Python loop per image cost a third of an
    epoch, and 4-d advanced indexing was 3.6× slower than this (same pixels).
    """
    if kind == "none":
        return batch
    n, c, h, w = batch.shape
    padded = nn.functional.pad(batch, (4, 4, 4, 4), mode="reflect")
    offsets = torch.randint(0, 9, (n, 2), generator=generator)
    rows, cols = offsets[:, 0:1] + torch.arange(h), offsets[:, 1:2] + torch.arange(w)
    flat = (rows.unsqueeze(2) * (w + 8) + cols.unsqueeze(1)).view(n, 1, h * w).expand(n, c, h * w)
    batch = padded.reshape(n, c, -1).gather(2, flat).view(n, c, h, w)
    if kind in ("crop_color", "crop_color_transform"):
        scale = 1 + (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.4
        shift = (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.4
        batch = batch * scale + shift
    if kind == "crop_color_transform":
        flip = torch.rand(n, generator=generator) < 0.5
        batch = torch.where(flip.view(n, 1, 1, 1), batch.flip(3), batch)
    return batch


def cutout(batch: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zeroes (the mean, after normalising) one ``size``-pixel square per image, centred anywhere, clipped."""
    n, _, h, w = batch.shape
    centres = torch.stack([torch.randint(0, h, (n,), generator=generator),
                           torch.randint(0, w, (n,), generator=generator)], dim=1)
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    top, left = (centres[:, 0] - size // 2).view(n, 1, 1), (centres[:, 1] - size // 2).view(n, 1, 1)
    hole = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return batch.masked_fill(hole.unsqueeze(1), 0.0)


def coarsen(batch: torch.Tensor, resolution: int) -> torch.Tensor:
    """The batch downsampled (antialiased) to ``resolution`` pixels wide, aspect kept; never upsampled.

    The network pools globally, so it takes any size from 8 px (three max-pools) up.
    """
    height, width = batch.shape[-2:]
    if width <= resolution:
        return batch
    size = (max(1, round(height * resolution / width)), resolution)
    return nn.functional.interpolate(batch, size=size, mode="bilinear", antialias=True, align_corners=False)


def _optimizer(settings: TrainSettings, parameters):
    if settings.optimizer in ("sgd", "nag"):
        return torch.optim.SGD(parameters, lr=settings.learning_rate, momentum=settings.momentum,
                               nesterov=settings.optimizer == "nag", weight_decay=settings.weight_decay)
    if settings.optimizer == "adam":
        return torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    return torch.optim.RMSprop(parameters, lr=settings.learning_rate, momentum=settings.momentum,
                               weight_decay=settings.weight_decay)


def _logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(images)


def fit_temperature(view_logits: torch.Tensor, labels: torch.Tensor, average: str = "logits",
                    probe_logits: torch.Tensor | None = None, probe_weight: float = 0.0) -> float:
    """The temperature minimising the validation log-loss of the views combined as the graph combines them.

    A fixed log grid (0.25 … 4) rather than an optimiser: one number, robust, reproducible.
    """
    grid = torch.logspace(-2, 2, 161, base=2)
    losses = [float(nn.functional.nll_loss(torch.log(combine(view_logits, 1 / t, average, probe_logits, probe_weight)),
                                           labels)) for t in grid]
    return float(grid[int(np.argmin(losses))])


def _ema_with_warmup(decay: float):
    """EMA whose decay ramps up as (1 + n) / (10 + n) to ``decay``: a short run is not stuck near its initial weights."""
    def average(averaged: torch.Tensor, current: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        rate = min(decay, (1 + float(updates)) / (10 + float(updates)))
        return rate * averaged + (1 - rate) * current
    return average


def _train_member(settings: TrainSettings, local: LocalTrainerConfig, seed: int, data: tuple, tag: str,
                  progress) -> tuple[nn.Module, dict]:
    """One network, one-cycle schedule, the weights of its last epoch.

    The first ``coarse_fraction`` of the epochs see the images downsampled to
    ``coarse_resolution`` pixels: a quarter of the convolution work at 16 px, and out of fold the
    members were as good or better for it (README "Trainer", round 4).

    A held-out validation split (``xv`` not None) is scored every epoch (the log, early stopping)
    but does not pick the epoch: on 80 images the best of 40 noisy scores is a winner's curse.
    Picking the epoch on one half of validation lost 2.3 points on the other half against the
    last epoch (README). A split trained on is not scored: its score would say nothing.
    """
    xt, yt, xv, yv = data
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    mix_rng = np.random.default_rng(seed)
    model = SmallVgg(settings.num_classes, local.width)
    if local.channels_last:
        model = model.to(memory_format=torch.channels_last)
    averaged = (AveragedModel(model, avg_fn=_ema_with_warmup(local.ema_decay), use_buffers=True)
                if local.ema_decay else None)
    optimizer = _optimizer(settings, model.parameters())
    steps_per_epoch = max(1, -(-len(xt) // settings.mini_batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.learning_rate,
                                                   total_steps=settings.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=local.label_smoothing)
    coarse_epochs = int(local.coarse_fraction * settings.epochs)
    best_accuracy, best_loss, since_best, last = -1.0, float("inf"), 0, {}
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        correct = 0
        for start in range(0, len(xt), settings.mini_batch_size):
            index = order[start:start + settings.mini_batch_size]
            batch, target = augment(xt[index], settings.augmentation_type, generator), yt[index]
            if local.cutout:
                batch = cutout(batch, local.cutout, generator)
            if epoch <= coarse_epochs:
                batch = coarsen(batch, local.coarse_resolution)
            if local.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            if local.mixup_alpha:
                lam = float(mix_rng.beta(local.mixup_alpha, local.mixup_alpha))
                partner = torch.randperm(len(index), generator=generator)
                batch = lam * batch + (1 - lam) * batch[partner]
                logits = model(batch)
                loss = lam * loss_fn(logits, target) + (1 - lam) * loss_fn(logits, target[partner])
            else:
                logits = model(batch)
                loss = loss_fn(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if averaged is not None:
                averaged.update_parameters(model)
            correct += int((logits.argmax(1) == target).sum())
        train_accuracy = correct / len(xt)
        selected = averaged.module if averaged is not None else model
        last = {"train:accuracy": train_accuracy, "epoch": epoch}
        if xv is None:
            progress(f"{tag}epoch {epoch}/{settings.epochs} train:accuracy={train_accuracy:.4f}")
            continue
        val_logits = _logits(selected, xv)
        val_accuracy = float((val_logits.argmax(1) == yv).float().mean())
        val_loss = float(nn.functional.cross_entropy(val_logits, yv))
        progress(f"{tag}epoch {epoch}/{settings.epochs} train:accuracy={train_accuracy:.4f} "
                 f"validation:accuracy={val_accuracy:.4f} validation:loss={val_loss:.4f}")
        last.update({"validation:accuracy": val_accuracy, "validation:loss": val_loss})
        if (val_accuracy, -val_loss) > (best_accuracy, -best_loss):
            best_accuracy, best_loss, since_best = val_accuracy, val_loss, 0
        else:
            since_best += 1
        if (settings.early_stopping and epoch >= settings.early_stopping_min_epochs
                and since_best >= settings.early_stopping_patience):
            progress(f"{tag}early stopping at epoch {epoch}: no validation gain for {since_best} epochs")
            break
    member = SmallVgg(settings.num_classes, local.width)
    member.load_state_dict(selected.state_dict())
    return member.eval(), last


def normaliser(train_x: np.ndarray):
    """Per-channel mean/std of the training images (also stored in model-meta.json for serving)."""
    mean = train_x.astype(np.float32).mean(axis=(0, 2, 3)) / 255
    std = train_x.astype(np.float32).std(axis=(0, 2, 3)) / 255

    def normalise(x: np.ndarray) -> torch.Tensor:
        return ((torch.from_numpy(x.astype(np.float32) / 255) - torch.tensor(mean).view(1, 3, 1, 1))
                / torch.tensor(std).view(1, 3, 1, 1))
    return normalise, (mean.tolist(), std.tolist())


def _member_in_worker(settings: TrainSettings, local: LocalTrainerConfig, seed: int, data: tuple, tag: str,
                      threads: int) -> tuple[dict, dict]:
    """One member in a worker process (spawned: a fresh interpreter, its own OpenMP pool)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout)
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    member, metrics = _train_member(settings, local, seed, data, tag, log.info)
    return member.state_dict(), metrics


def _train_members(settings: TrainSettings, local: LocalTrainerConfig, data: tuple, progress) -> list[tuple]:
    """``ensemble_size`` members; with more than one, one process each, sharing ``threads``.

    Single-thread processes side by side use the cores better than one process with OpenMP
    threads, whose barriers stall whenever another job holds a core; three processes on two
    cores still finish sooner than two rounds of two. ``threads: 1`` trains the members one
    after another in this process.
    """
    size = local.ensemble_size
    seeds = [local.seed * 1000 + k for k in range(size)]
    tags = [f"member {k + 1}/{size} " if size > 1 else "" for k in range(size)]
    workers = size if local.threads > 1 else 1
    if workers == 1:
        return [_train_member(settings, local, seed, data, tag, progress) for seed, tag in zip(seeds, tags)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(_member_in_worker, settings, local, seed, data, tag, max(1, local.threads // size))
                   for seed, tag in zip(seeds, tags)]
        results = [future.result() for future in futures]
    members = []
    for state, metrics in results:
        member = SmallVgg(settings.num_classes, local.width)
        member.load_state_dict(state)
        members.append((member.eval(), metrics))
    return members


def train(settings: TrainSettings, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
          local: LocalTrainerConfig = LocalTrainerConfig(),
          progress=log.info) -> tuple[nn.Module, dict, tuple[list[float], list[float]]]:
    """Trains ``local.ensemble_size`` members and returns the graph to export: probabilities out.

    With ``train_on_validation`` (the default) the members fit train + validation with the
    schedule chosen out of fold (README "Trainer", round 5: the extra tenth of the images is
    worth more than a held-out score, which the test split gives anyway); nothing is then
    scored on validation. Otherwise the validation split is scored and, when on, the temperature
    is fitted on its views of the whole graph. The test split is never looked at.
    """
    if local.train_on_validation and settings.early_stopping:
        raise HyperparameterError("early_stopping=True needs a held-out validation split, but "
                                  "local_trainer.train_on_validation is true: set one of them to false")
    trunk = None
    if local.imagenet_probe:
        trunk = imagenet_trunk(local.probe_resolution)
    normalise, normalisation = normaliser(train_x)
    if local.train_on_validation:
        data = (normalise(np.concatenate([train_x, val_x])), torch.from_numpy(np.concatenate([train_y, val_y])),
                None, None)
        progress(f"training on train + validation ({len(train_x)} + {len(val_x)} images, "
                 "local_trainer.train_on_validation): no held-out validation score")
    else:
        data = (normalise(train_x), torch.from_numpy(train_y), normalise(val_x), torch.from_numpy(val_y))
    trained = _train_members(settings, local, data, progress)
    members, member_metrics = [member for member, _ in trained], [metrics for _, metrics in trained]
    best = {"train:accuracy": float(np.mean([m["train:accuracy"] for m in member_metrics])),
            "epoch": member_metrics[-1]["epoch"], "members": len(members)}
    probe, probe_weight = None, 0.0
    if trunk is not None:
        started = time.perf_counter()
        probe = fit_probe(trunk, data[0], data[1].numpy(), normalisation, local.probe_blocks, local.probe_resolution,
                          local.probe_regularization)
        probe_weight = local.probe_weight
        progress(f"ImageNet probe (EfficientNet-Lite0, {local.probe_blocks} blocks at {local.probe_resolution} px) "
                 f"fitted in {time.perf_counter() - started:.1f} s; weight {probe_weight} in the blend"
                 + (f", skipped for images the members alone give {local.probe_skip_confidence:g} or more"
                    if local.probe_skip_confidence < 1 else ""))
    temperature = local.temperature
    if local.temperature_scaling:     # only without train_on_validation (LocalTrainerConfig)
        scored = ServingGraph(members, flip=local.flip_tta, probe=probe).eval()
        with torch.no_grad():
            view_logits, probe_logits = scored.view_logits(data[2]), scored.probe_logits(data[2])
        temperature = fit_temperature(view_logits, data[3], local.ensemble_average, probe_logits, probe_weight)
    best["temperature"] = round(temperature, 4)
    graph = ServingGraph(members, flip=local.flip_tta, temperature=temperature, average=local.ensemble_average,
                         probe=probe, probe_weight=probe_weight, skip_confidence=local.probe_skip_confidence,
                         early_confidence=local.early_exit_confidence).eval()
    if len(graph.stages) > 1:
        progress(f"exported as a cascade, each stage answering the images it is sure enough of: {' → '.join(graph.stages)}")
    if not local.train_on_validation:
        with torch.no_grad():
            probabilities = graph(data[2])
        best["validation:accuracy"] = float((probabilities.argmax(1) == data[3]).float().mean())
        best["validation:loss"] = float(nn.functional.nll_loss(torch.log(probabilities), data[3]))
    return graph, best, normalisation


def export_model(model: nn.Module, settings: TrainSettings, normalisation, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(model, torch.zeros(1, *settings.image_shape), model_dir / "model.onnx", "probabilities")
    localise_branch_weights(model_dir / "model.onnx")
    mean, std = normalisation
    (model_dir / "model-meta.json").write_text(json.dumps({
        "image_shape": list(settings.image_shape), "mean": mean, "std": std, "class_names": list(CLASS_NAMES),
        "framework": f"torch {torch.__version__} -> onnx", "algorithm": "image-classification (local stand-in)",
        "stages": getattr(model, "stages", None)}))


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
    started = time.perf_counter()
    try:
        raw = json.loads(container.hyperparameters.read_text())
        settings = parse_hyperparameters(raw, _content_types(container.root))
        if ignored_by_stand_in(raw):
            log.info("accepted, not acted on by the local stand-in: %s", ", ".join(ignored_by_stand_in(raw)))
        local = from_environment()
        torch.set_num_threads(local.threads)
        if settings.use_pretrained_model:
            log.warning("use_pretrained_model=1: the local stand-in does not fine-tune a pretrained network; "
                        "its ImageNet features come from local_trainer.imagenet_probe (now %s)",
                        "on" if local.imagenet_probe else "off")
        train_x, train_y = load_channel(container.channel("train"), container.channel("train_lst"), settings.image_shape)
        val_x, val_y = load_channel(container.channel("validation"), container.channel("validation_lst"),
                                    settings.image_shape)
        if settings.num_training_samples not in (None, len(train_x)):
            raise HyperparameterError(f"num_training_samples={settings.num_training_samples} but train.lst lists "
                                      f"{len(train_x)} images")
        model, metrics, normalisation = train(settings, train_x, train_y, val_x, val_y, local)
        export_model(model, settings, normalisation, container.model_dir)
    except (HyperparameterValidationError, HyperparameterError, LocalSettingsError, ChannelError, LstFormatError, OSError,
            ImageNetProbeError, json.JSONDecodeError) as exc:
        reason = exc.failure_reason if isinstance(exc, HyperparameterValidationError) else f"{type(exc).__name__}: {exc}"
        failure.write_text(reason)
        log.error("%s", reason)
        return 1
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    container.metrics.write_text(json.dumps(metrics))
    log.info("trained to epoch %d: %s", metrics["epoch"], metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
