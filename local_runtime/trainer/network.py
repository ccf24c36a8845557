"""A small VGG-style CNN (3 stages of 2×(conv3×3-BN-ReLU) + maxpool, GAP, linear) and the exported graph."""
from __future__ import annotations

import torch
from torch import nn


def _stage(in_channels: int, out_channels: int) -> nn.Sequential:
    layers = []
    for channels in (in_channels, out_channels):
        layers += [nn.Conv2d(channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class SmallVgg(nn.Module):
    def __init__(self, num_classes: int, width: int = 16):
        super().__init__()
        stages, channels = [], 3
        for stage_width in (width, 2 * width, 4 * width):
            stages.append(_stage(channels, stage_width))
            channels = stage_width
        self.features = nn.Sequential(*stages)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def combine(view_logits: torch.Tensor, inverse_temperature: torch.Tensor | float, average: str,
            probe_logits: torch.Tensor | None = None, probe_weight: float = 0.0) -> torch.Tensor:
    """(views, N, classes) logits, and optionally the ImageNet probe's (N, classes), to (N, classes) probabilities.

    ``logits``: the softmax of the mean logit (a geometric mean of the views' probabilities);
    ``probabilities``: the mean of the views' softmaxes. Out of fold, averaging logits ranked the
    images better (README "Trainer", round 4): more images above the threshold at the same precision.
    The probe takes ``probe_weight`` of the blend and the members' views the rest.
    """
    if average == "logits":
        logits = view_logits.mean(dim=0)
        if probe_logits is not None:
            logits = (1 - probe_weight) * logits + probe_weight * probe_logits
        return torch.softmax(logits * inverse_temperature, dim=1)
    probabilities = torch.softmax(view_logits * inverse_temperature, dim=2).mean(dim=0)
    if probe_logits is not None:
        probabilities = (1 - probe_weight) * probabilities + probe_weight * torch.softmax(
            probe_logits * inverse_temperature, dim=1)
    return probabilities


class MemberViews(nn.Module):
    """(views, N, classes) logits: every member on the image and, with ``flip``, on its mirror (one batch of 2N)."""

    def __init__(self, members: list[nn.Module], flip: bool):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.flip = flip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = torch.cat([x, x.flip(3)]) if self.flip else x
        logits = torch.stack([member(batch) for member in self.members])
        return logits.reshape(-1, x.shape[0], logits.shape[-1])


class ServingGraph(nn.Module):
    """What is exported: class probabilities (like the built-in algorithm) combined over the members' views.

    ``probe`` (the ImageNet probe, local_runtime/trainer/pretrained.py) sees the image once and
    takes ``probe_weight`` of the blend. ``temperature`` divides every logit; ``average`` is
    ``logits`` or ``probabilities`` (``combine``).

    ``skip_confidence`` below 1 makes the probe a second stage: an image whose members alone are
    at least that confident keeps the members' probabilities, and the exported graph runs the
    probe (eight times the members' time) only for a batch holding an image below it (the
    endpoint sends one image at a time). Out of fold, 0.98 let 56 % of the images skip it with
    the accuracy and the coverage at 98 % precision of the full blend (README "Trainer", round 7).
    """

    def __init__(self, members: list[nn.Module], flip: bool, temperature: float = 1.0, average: str = "logits",
                 probe: nn.Module | None = None, probe_weight: float = 0.0, skip_confidence: float = 1.0):
        super().__init__()
        self.views = MemberViews(members, flip)
        self.average = average
        self.probe = probe
        self.probe_weight = probe_weight
        self.skip_confidence = skip_confidence
        self.register_buffer("inverse_temperature", torch.tensor(1.0 / temperature))

    def view_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(views, N, classes) logits of the members before the temperature."""
        return self.views(x)

    def probe_logits(self, x: torch.Tensor) -> torch.Tensor | None:
        return self.probe(x) if self.probe is not None else None

    @property
    def cascades(self) -> bool:
        return self.probe is not None and self.skip_confidence < 1.0

    def members_only(self, view_logits: torch.Tensor) -> torch.Tensor:
        return combine(view_logits, self.inverse_temperature, self.average)

    def blend(self, view_logits: torch.Tensor, probe_logits: torch.Tensor | None) -> torch.Tensor:
        return combine(view_logits, self.inverse_temperature, self.average, probe_logits, self.probe_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = self.view_logits(x)
        if not self.cascades:
            return self.blend(views, self.probe_logits(x))
        members_only = self.members_only(views)
        confident = members_only.max(dim=1).values >= self.skip_confidence
        return torch.where(confident.unsqueeze(1), members_only, self.blend(views, self.probe(x)))

    def exportable(self, example: torch.Tensor) -> nn.Module:
        """The module for the TorchScript exporter: this graph, or with a cascade, a scripted one whose
        probe sits in an ONNX ``If`` branch that runs only when some image of the batch needs it.

        Each stage is traced on its own modules only: tracing the whole graph per stage took 1.5 s.
        """
        if not self.cascades:
            return self
        with torch.no_grad():
            views, probe_logits = self.view_logits(example), self.probe(example)
            traced = [torch.jit.trace(module, inputs, check_trace=False) for module, inputs in (
                (self.views, example), (self.probe, example), (_Pure(self.members_only), views),
                (_Pure(self.blend), (views, probe_logits)))]
            return torch.jit.script(_Cascade(*traced, self.skip_confidence))


class _Pure(nn.Module):
    """A parameter-free step of the graph (the temperature is a constant) as a module to trace."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.function(*inputs)


class _Cascade(nn.Module):
    def __init__(self, views: nn.Module, probe: nn.Module, members_only: nn.Module, blend: nn.Module,
                 skip_confidence: float):
        super().__init__()
        self.views = views
        self.probe = probe
        self.members_only = members_only
        self.blend = blend
        self.skip_confidence = skip_confidence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = self.views(x)
        members_only = self.members_only(views)
        confident = members_only.max(dim=1).values >= self.skip_confidence
        if bool(confident.all()):
            return members_only
        return torch.where(confident.unsqueeze(1), members_only, self.blend(views, self.probe(x)))
