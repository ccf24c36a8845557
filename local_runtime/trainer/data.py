"""Reads a channel the way the built-in algorithm does in .lst mode: images + a .lst file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from local_runtime.errors import LocalRuntimeError
from scones_common.contracts.staged_data import read_lst
from scones_common.images import InvalidImageError, decode_rgb


class ChannelError(LocalRuntimeError, ValueError):
    """A training channel is missing, empty, or its .lst names files that are not there."""


def find_lst(channel_dir: Path) -> Path:
    files = sorted(channel_dir.glob("*.lst"))
    if len(files) != 1:
        raise ChannelError(f"{channel_dir} holds {len(files)} .lst files; expected exactly one")
    return files[0]


def load_channel(images_dir: Path, lst_dir: Path, image_shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Returns (N, C, H, W) uint8 images and (N,) int64 labels, decoded exactly as the endpoint decodes."""
    if not images_dir.is_dir():
        raise ChannelError(f"channel directory {images_dir} does not exist")
    channels, height, width = image_shape
    images, labels = [], []
    for entry in read_lst(find_lst(lst_dir)):
        path = images_dir / entry.path
        if not path.exists():
            raise ChannelError(f"{entry.path} is listed in the .lst file but missing from {images_dir}")
        try:
            pixels = decode_rgb(path.read_bytes(), width, height)
        except InvalidImageError as exc:
            raise ChannelError(f"{entry.path} in {images_dir}: {exc}") from None
        images.append(pixels.transpose(2, 0, 1)[:channels])
        labels.append(entry.class_id)
    if not images:
        raise ChannelError(f"{lst_dir} lists no images")
    return np.stack(images), np.array(labels, dtype=np.int64)
