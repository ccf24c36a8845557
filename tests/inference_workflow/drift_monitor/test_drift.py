"""Drift scores: pure functions on real PNGs and known distributions (the PNG decoder: test_png.py)."""
import io
import math

import numpy as np
import pytest
from PIL import Image

from inference_workflow.drift_monitor.drift import Bins, Profile, bin_index, judge, ks, psi
from inference_workflow.drift_monitor.png import decode_rgb
from tests.builders import synthetic_images


def _png(array: np.ndarray, mode: str | None = None, **save) -> bytes:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save)
    return buffer.getvalue()


def test_psi_of_identical_distributions_is_zero_and_grows_with_shift():
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)
    small, large = psi([50, 50], [55, 45]), psi([50, 50], [90, 10])
    assert 0 < small < 0.1 < large
    assert large == pytest.approx((0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5))


def test_psi_stays_finite_with_empty_bins_and_refuses_other_bins():
    assert math.isfinite(psi([100, 0], [0, 100])) and psi([100, 0], [0, 100]) > 5
    with pytest.raises(ValueError, match="same bins"):
        psi([1, 2], [1, 2, 3])


def test_ks_is_the_largest_cdf_gap():
    assert ks([1, 1, 1, 1], [1, 1, 1, 1]) == 0.0
    assert ks([1, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx(1.0)
    assert ks([2, 1, 1], [1, 1, 2]) == pytest.approx(0.25)


def test_bin_index_clamps_to_the_outer_bins():
    edges = Bins().confidence
    assert bin_index(edges, 0.3) == 0 and bin_index(edges, 1.0) == len(edges) - 2 and bin_index(edges, 0.76) == 5


def _profile(images: np.ndarray, probabilities: list[list[float]]) -> Profile:
    profile = Profile(("bicycle", "motorcycle"), 0.93)
    for row in probabilities:
        profile.add_prediction(row)
    for image in images:
        profile.add_image(decode_rgb(_png(image)))
    return profile


def test_inverted_images_violate_and_in_distribution_traffic_does_not():
    rng = np.random.default_rng(0)
    base_images = np.concatenate([synthetic_images(50, 8, rng), synthetic_images(50, 48, rng)])
    base = _profile(base_images, [[0.95, 0.05]] * 50 + [[0.05, 0.95]] * 50)
    same = _profile(np.concatenate([synthetic_images(30, 8, rng), synthetic_images(30, 48, rng)]),
                    [[0.95, 0.05]] * 30 + [[0.05, 0.95]] * 30)
    inverted = _profile(255 - np.concatenate([synthetic_images(30, 8, rng), synthetic_images(30, 48, rng)]),
                        [[0.6, 0.4]] * 60)
    assert judge(base, same).violations == []
    violated = {s.feature for s in judge(base, inverted).violations}
    assert {"brightness", "red_histogram", "confidence", "low_confidence_share"} <= violated


def test_too_few_records_never_violate():
    base = _profile(synthetic_images(40, 8, np.random.default_rng(1)), [[0.95, 0.05]] * 40)
    few = _profile(255 - synthetic_images(5, 8, np.random.default_rng(2)), [[0.5, 0.5]] * 5)
    verdict = judge(base, few, min_records=30)
    assert not verdict.enough_data and verdict.violations == [] and verdict.drift_score > 0.2


def test_profile_round_trips_through_json():
    base = _profile(synthetic_images(3, 8, np.random.default_rng(1)), [[0.95, 0.05], [0.2, 0.8], [0.5, 0.5]])
    again = Profile.from_dict(base.to_dict())
    assert again.to_dict() == base.to_dict() and again.low_confidence == 2
