"""The inference code shared by the local endpoint and local batch transform.

A model artifact (``model.tar.gz``) holds ``model.onnx`` (softmax probabilities out) and
``model-meta.json`` (image shape, normalisation, class names) written by the local trainer.
"""
from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from scones_common.images import InvalidImageError, decode_rgb

__all__ = ["ImageClassifier", "InvalidImageError", "ModelArtifactError", "ModelMeta"]

from local_runtime.errors import LocalRuntimeError

INFERENCE_THREADS = 1
"""One onnxruntime thread: the endpoint answers one image per request, on several worker threads, on a
2-core machine that also runs the client; a second thread per inference made the trunk slower, not faster
(1.63 against 1.82–1.91 ms per image at 96 px) and cost ~0.9 ms of CPU per request (docs/research, round 11)."""


class ModelArtifactError(LocalRuntimeError, RuntimeError):
    """A model artifact is missing, not a model.tar.gz, or lacks a loadable model.onnx / model-meta.json."""


@dataclass(frozen=True)
class ModelMeta:
    image_shape: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...]


class ImageClassifier:
    def __init__(self, model_dir: str | Path):
        model_dir = Path(model_dir)
        meta = json.loads((model_dir / "model-meta.json").read_text())
        self.meta = ModelMeta(tuple(meta["image_shape"]), tuple(meta["mean"]), tuple(meta["std"]),
                              tuple(meta["class_names"]))
        options = ort.SessionOptions()
        options.intra_op_num_threads = INFERENCE_THREADS
        options.inter_op_num_threads = 1
        self.model_path = model_dir / "model.onnx"
        self.session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        mean = np.array(self.meta.mean, dtype=np.float64).reshape(1, 3, 1, 1)
        std = np.array(self.meta.std, dtype=np.float64).reshape(1, 3, 1, 1)
        self._scale = (1 / (255 * std)).astype(np.float32)
        self._offset = (-mean / std).astype(np.float32)

    @classmethod
    def from_artifact(cls, artifact: str | Path, extract_to: str | Path) -> "ImageClassifier":
        """Raises :class:`ModelArtifactError` naming the artifact for anything that keeps it from loading."""
        target = Path(extract_to)
        try:
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(artifact) as tar:
                tar.extractall(target, filter="data")
            return cls(target)
        except Exception as exc:   # tar, JSON, ONNX and file errors all mean the same: this artifact is unusable
            raise ModelArtifactError(f"model artifact {Path(artifact).name} cannot be loaded "
                                     f"({type(exc).__name__}: {exc})") from exc

    def preprocess(self, images: list[bytes]) -> np.ndarray:
        """(N, 3, H, W) float32: (pixels / 255 − mean) / std, written straight into the batch."""
        _, height, width = self.meta.image_shape
        if not images:
            raise InvalidImageError("no image to classify")
        batch = np.empty((len(images), 3, height, width), dtype=np.float32)
        for index, payload in enumerate(images):
            try:
                pixels = decode_rgb(payload, width, height)
            except InvalidImageError as exc:
                raise (InvalidImageError(f"image {index}: {exc}") if len(images) > 1 else exc) from None
            np.multiply(pixels.transpose(2, 0, 1), self._scale[0], out=batch[index])
        batch += self._offset
        return batch

    def predict(self, images: list[bytes]) -> np.ndarray:
        """Class probabilities, one row per image."""
        return self.session.run(None, {self.input_name: self.preprocess(images)})[0]

    def predict_one(self, image: bytes) -> list[float]:
        return self.predict([image])[0].tolist()
