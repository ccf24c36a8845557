"""Reads a channel the way the built-in algorithm does in .lst mode: images + a .lst file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from local_runtime.errors import LocalRuntimeError


class ChannelError(LocalRuntimeError, ValueError):
    """A training channel is missing, empty, or its .lst names files that are not there."""


def find_lst(channel_dir: Path) -> Path:
    files = sorted(channel_dir.glob("*.lst"))
    if len(files) != 1:
        raise ChannelError(f"{channel_dir} holds {len(files)} .lst files; expected exactly one")
    return files[0]


def load_channel(images_dir: Path, lst_dir: Path, image_shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Returns (N, C, H, W) uint8 images and (N,) int64 labels."""
    if not images_dir.is_dir():
        raise ChannelError(f"channel directory {images_dir} does not exist")
    channels, height, width = image_shape
    images, labels = [], []
    for line in find_lst(lst_dir).read_text().splitlines():
        if not line.strip():
            continue
        _, label, relative = line.split("\t")
        path = images_dir / relative
        if not path.exists():
            raise ChannelError(f"{relative} is listed in the .lst file but missing from {images_dir}")
        image = Image.open(path).convert("RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.BILINEAR)
        images.append(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)[:channels])
        labels.append(int(float(label)))
    if not images:
        raise ChannelError(f"{lst_dir} lists no images")
    return np.stack(images), np.array(labels, dtype=np.int64)
