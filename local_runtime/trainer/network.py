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


class ServingGraph(nn.Module):
    """What is exported: class probabilities (like the built-in algorithm) combined over views.

    Views are every member on the image and, with ``flip``, on its mirror (one batch of 2N).
    ``probe`` (the ImageNet probe, local_runtime/trainer/pretrained.py) sees the image once and
    takes ``probe_weight`` of the blend. ``temperature`` divides every logit; ``average`` is
    ``logits`` or ``probabilities`` (``combine``).
    """

    def __init__(self, members: list[nn.Module], flip: bool, temperature: float = 1.0, average: str = "logits",
                 probe: nn.Module | None = None, probe_weight: float = 0.0):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.flip = flip
        self.average = average
        self.probe = probe
        self.probe_weight = probe_weight
        self.register_buffer("inverse_temperature", torch.tensor(1.0 / temperature))

    def view_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(views, N, classes) logits of the members before the temperature."""
        batch = torch.cat([x, x.flip(3)]) if self.flip else x
        logits = torch.stack([member(batch) for member in self.members])
        return logits.reshape(-1, x.shape[0], logits.shape[-1])

    def probe_logits(self, x: torch.Tensor) -> torch.Tensor | None:
        return self.probe(x) if self.probe is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return combine(self.view_logits(x), self.inverse_temperature, self.average, self.probe_logits(x),
                       self.probe_weight)
