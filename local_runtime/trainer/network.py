"""A small VGG-style CNN (3 stages of 2×(conv3×3-BN-ReLU) + maxpool, GAP, linear) and the exported graph."""
from __future__ import annotations

from functools import partial

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

    The exported graph is a cascade whose later stages run only for a batch holding an image the
    earlier ones are unsure of (the endpoint sends one image at a time):

    - ``early_confidence`` below 1: an image the first member alone gives at least that keeps the
      first member's probabilities, skipping the other members (0.14 of their 0.24 ms) and the
      probe. Out of fold, 0.998 let 32 % of the images out at the first member with the errors
      and coverage of the full cascade (README "Trainer", round 8).
    - ``skip_confidence`` below 1: an image whose members together give at least that keeps the
      members' probabilities, skipping the probe (eight times the members' time). Out of fold,
      0.98 let 56 % of the images skip it with the accuracy and the coverage at 98 % precision of
      the full blend (round 7).
    """

    def __init__(self, members: list[nn.Module], flip: bool, temperature: float = 1.0, average: str = "logits",
                 probe: nn.Module | None = None, probe_weight: float = 0.0, skip_confidence: float = 1.0,
                 early_confidence: float = 1.0):
        super().__init__()
        self.views = MemberViews(members, flip)
        self.average = average
        self.probe = probe
        self.probe_weight = probe_weight
        self.skip_confidence = skip_confidence
        self.early_confidence = early_confidence
        self.register_buffer("inverse_temperature", torch.tensor(1.0 / temperature))

    def view_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(views, N, classes) logits of the members before the temperature, member by member."""
        return self.views(x)

    def probe_logits(self, x: torch.Tensor) -> torch.Tensor | None:
        return self.probe(x) if self.probe is not None else None

    @property
    def cascades(self) -> bool:
        """Whether the probe is a stage of its own (``skip_confidence``)."""
        return self.probe is not None and self.skip_confidence < 1.0

    @property
    def exits_early(self) -> bool:
        """Whether the first member is a stage of its own (``early_confidence``; needs a second member)."""
        return len(self.views.members) > 1 and self.early_confidence < 1.0

    @property
    def stages(self) -> list[str]:
        """The exported graph's stages in order; an image is answered by the first one sure enough of it."""
        count = len(self.views.members)
        members = f"{count} member{'s' if count > 1 else ''}"
        stages = ["the first member alone"] if self.exits_early else []
        if self.probe is None or self.cascades:
            stages.append(members)
        if self.probe is not None:
            stages.append(f"{members} + the ImageNet probe")
        return stages

    def members_only(self, view_logits: torch.Tensor) -> torch.Tensor:
        return combine(view_logits, self.inverse_temperature, self.average)

    def blend(self, view_logits: torch.Tensor, probe_logits: torch.Tensor | None) -> torch.Tensor:
        return combine(view_logits, self.inverse_temperature, self.average, probe_logits, self.probe_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = self.view_logits(x)
        answer = self.blend(views, self.probe_logits(x))
        if self.cascades:
            members_only = self.members_only(views)
            confident = members_only.max(dim=1).values >= self.skip_confidence
            answer = torch.where(confident.unsqueeze(1), members_only, answer)
        if self.exits_early:
            first_only = self.members_only(views[:len(views) // len(self.views.members)])
            early = first_only.max(dim=1).values >= self.early_confidence
            answer = torch.where(early.unsqueeze(1), first_only, answer)
        return answer

    def exportable(self, example: torch.Tensor) -> nn.Module:
        """The module for the TorchScript exporter: this graph, or for a cascade a scripted one whose
        later stages sit in ONNX ``If`` branches.

        Each stage is traced on its own modules only: tracing the whole graph per stage took 1.5 s.
        """
        if not (self.cascades or self.exits_early):
            return self
        members, flip = list(self.views.members), self.views.flip
        first = MemberViews(members[:1], flip) if self.exits_early else self.views
        with torch.no_grad():
            first_views, views, probe_logits = first(example), self.view_logits(example), self.probe_logits(example)
            trace = partial(torch.jit.trace, check_trace=False)
            rest = trace(MemberViews(members[1:], flip), example) if self.exits_early else None
            probe = trace(self.probe, example) if self.probe is not None else None
            blend = trace(_Pure(self.blend), (views, probe_logits)) if self.probe is not None else None
            members_only = trace(_Pure(self.members_only), views) if self.probe is None or self.cascades else None
            first_only = trace(_Pure(self.members_only), first_views) if self.exits_early else None
            return torch.jit.script(_Cascade(trace(first, example), rest, first_only, members_only, probe, blend,
                                             self.early_confidence, self.skip_confidence))


class _Pure(nn.Module):
    """A parameter-free step of the graph (the temperature is a constant) as a module to trace."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.function(*inputs)


class _Cascade(nn.Module):
    """ServingGraph's forward as stages. A stage that is ``None`` is not in the graph: TorchScript
    drops the code behind ``is not None`` for it."""

    def __init__(self, first: nn.Module, rest: nn.Module | None, first_only: nn.Module | None,
                 members_only: nn.Module | None, probe: nn.Module | None, blend: nn.Module | None,
                 early_confidence: float, skip_confidence: float):
        super().__init__()
        self.first = first               # the first member's views; every member's without an early stage
        self.rest = rest
        self.first_only = first_only
        self.members_only = members_only
        self.probe = probe
        self.blend = blend
        self.early_confidence = early_confidence
        self.skip_confidence = skip_confidence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = self.first(x)
        if self.rest is not None and self.first_only is not None:
            first_only = self.first_only(views)
            early = first_only.max(dim=1).values >= self.early_confidence
            if bool(early.all()):
                return first_only
            views = torch.cat([views, self.rest(x)])
            return torch.where(early.unsqueeze(1), first_only, self._after_members(x, views))
        return self._after_members(x, views)

    def _after_members(self, x: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        if self.members_only is not None:
            members_only = self.members_only(views)
            if self.probe is None or self.blend is None:
                return members_only
            confident = members_only.max(dim=1).values >= self.skip_confidence
            if bool(confident.all()):
                return members_only
            return torch.where(confident.unsqueeze(1), members_only, self.blend(views, self.probe(x)))
        assert self.probe is not None and self.blend is not None    # ServingGraph.exportable gives one or the other
        return self.blend(views, self.probe(x))
