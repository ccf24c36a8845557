"""Small real inputs: CIFAR-format archives with synthetic pixels, and real PNG bytes."""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

FINE_NAMES = [f"class_{i}" for i in range(100)]
FINE_NAMES[8], FINE_NAMES[48] = "bicycle", "motorcycle"


def synthetic_images(n: int, fine_label: int, rng: np.random.Generator) -> np.ndarray:
    """Class-dependent patterns so a classifier can learn them: bicycles bright top, motorcycles bright bottom."""
    images = rng.integers(0, 90, size=(n, 32, 32, 3), dtype=np.uint8)
    if fine_label == 8:
        images[:, :16] += 120
    elif fine_label == 48:
        images[:, 16:] += 120
    return images


def _split(counts: dict[int, int], rng: np.random.Generator, str_keys: bool) -> dict:
    labels = [label for label, n in counts.items() for _ in range(n)]
    images = np.concatenate([synthetic_images(n, label, rng) for label, n in counts.items()])
    data = images.transpose(0, 3, 1, 2).reshape(len(labels), 3072)
    record = {"data": data, "fine_labels": labels, "coarse_labels": [0] * len(labels),
              "filenames": [f"img_{i:05d}.png" for i in range(len(labels))], "batch_label": "synthetic"}
    return {k if str_keys else k.encode(): (v.encode() if isinstance(v, str) and not str_keys else v)
            for k, v in record.items()}


class RunsOnLoad:
    """Pickles as a call of ``function(*args)``: what a hostile archive plants in a member."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def make_cifar_archive(path: Path, per_class_train: int = 40, per_class_test: int = 10, other_classes: int = 5,
                       str_keys: bool = False, fine_names: list[str] | None = None, omit: str | None = None,
                       seed: int = 0, other_train: int = 7, other_test: int = 3,
                       planted: dict[str, object] | None = None,
                       replaced: dict[str, dict[str, object]] | None = None) -> Path:
    """Writes a tar.gz in the original cifar-100-python layout, with some other classes mixed in.

    ``planted`` adds an extra entry to the named members' records (e.g. a :class:`RunsOnLoad`);
    the archive stays otherwise valid, so staging it would succeed if the entry were loaded.
    ``replaced`` sets fields of members, e.g. ``{"train": {"fine_labels": "8"}}``: a damaged archive;
    a callable value is given the field's current value."""
    rng = np.random.default_rng(seed)
    names = fine_names or FINE_NAMES
    others = [c for c in range(100) if c not in (8, 48)][:other_classes]
    train_counts = {8: per_class_train, 48: per_class_train, **{c: other_train for c in others}}
    test_counts = {8: per_class_test, 48: per_class_test, **{c: other_test for c in others}}
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    members = {
        "meta": {key("fine_label_names"): [n if str_keys else n.encode() for n in names],
                 key("coarse_label_names"): [b"x"] * 20},
        "train": _split(train_counts, rng, str_keys),
        "test": _split(test_counts, rng, str_keys),
    }
    for name, extra in (planted or {}).items():
        members[name][key("planted")] = extra
    for name, fields in (replaced or {}).items():
        for field_name, value in fields.items():
            current = members[name].get(key(field_name))
            members[name][key(field_name)] = value(current) if callable(value) else value
    with tarfile.open(path, "w:gz") as tar:
        for name, record in members.items():
            if name == omit:
                continue
            payload = pickle.dumps(record, protocol=2)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def png_bytes(fine_label: int = 8, seed: int = 0, size: int = 32) -> bytes:
    image = synthetic_images(1, fine_label, np.random.default_rng(seed))[0]
    if size != 32:
        image = np.array(Image.fromarray(image).resize((size, size)))
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_tiny_model(model_dir: Path, inverted: bool = False, graph_size: int = 32) -> Path:
    """A real ONNX image classifier whose confidence follows brightness: bright → bicycle, dark → motorcycle,
    mid-grey → 50/50 (``inverted``: bright → motorcycle, so two deployed models are told apart).
    Written with onnx.helper so tests need no training. ``graph_size`` other than 32 gives a model that
    loads (and answers /ping) but fails every invocation: its graph wants another input size."""
    sign = -1.0 if inverted else 1.0
    import json

    import onnx
    from onnx import TensorProto, helper

    model_dir.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=0),
         helper.make_node("Unsqueeze", ["mean", "one"], ["column"]),
         helper.make_node("MatMul", ["column", "weight"], ["scaled"]),
         helper.make_node("Add", ["scaled", "bias"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
        "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, graph_size, graph_size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
         helper.make_tensor("one", TensorProto.INT64, [1], [1]),
         helper.make_tensor("weight", TensorProto.FLOAT, [1, 2], [20.0 * sign, -20.0 * sign]),
         helper.make_tensor("bias", TensorProto.FLOAT, [2], [-10.0 * sign, 10.0 * sign])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, model_dir / "model.onnx")
    (model_dir / "model-meta.json").write_text(json.dumps({"image_shape": [3, 32, 32], "mean": [0, 0, 0],
                                                           "std": [1, 1, 1], "class_names": ["bicycle", "motorcycle"]}))
    return model_dir


def write_tiny_model_artifact(path: Path, inverted: bool = False, graph_size: int = 32) -> Path:
    """model.tar.gz as the local trainer writes it."""
    model_dir = write_tiny_model(path.parent / f"tiny-model-{graph_size}", inverted, graph_size)
    with tarfile.open(path, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    return path


def solid_png(value: int) -> bytes:
    """A flat-colour 32×32 PNG: 255 → confident bicycle, 0 → confident motorcycle, 128 → unsure."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def threshold_between(confidence, index: int) -> float:
    """A threshold midway between the sorted confidences ``index - 1`` and ``index``: that many
    images fall below it and none sits on it, where onnxruntime and torch could round apart."""
    ordered = sorted(float(c) for c in confidence)
    return (ordered[index - 1] + ordered[index]) / 2


class RecordingExecutions:
    """Stands in for the local pipeline executor behind moto's StartPipelineExecution: records each submitted
    execution's ARN and parameters; nothing runs."""

    def __init__(self):
        self.submitted: list[tuple[str, object]] = []

    def submit(self, execution_arn, pipeline_name, definition, parameters):
        self.submitted.append((execution_arn, parameters))

    def record(self, execution_arn):
        return None

    def stop(self, execution_arn):
        raise NotImplementedError

    def retry(self, execution_arn, definition):
        raise NotImplementedError

    def restore(self, records):
        pass


def lambda_zip(files: dict[str, str]) -> bytes:
    """A Lambda deployment package: the files, by name, in a zip."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def wait_until(predicate, timeout: float = 10.0, what: str = "condition", interval: float = 0.1):
    """Polls ``predicate`` until it returns something truthy, and returns that; fails naming ``what``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
