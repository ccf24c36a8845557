"""The precision's lower confidence bound: exact one-sided Clopper–Pearson, checked against known values."""
import math

import pytest

from processing.confidence_bounds import (
    BoundInputError,
    binomial_upper_tail,
    images_needed,
    lower_bound,
    precision_bound,
)

# Beta(0.05; k, n - k + 1), the one-sided 95 % Clopper–Pearson lower bound (scipy.stats.beta.ppf, recorded once)
KNOWN = [(1, 2, 0.02532056551910361), (5, 10, 0.2224411010081294), (95, 100, 0.8977466223567255),
         (163, 164, 0.9714020758579999), (199, 200, 0.9765015295650493), (150, 200, 0.6945326433508061),
         (990, 1000, 0.9830968248794375)]


@pytest.mark.parametrize("successes, trials, expected", KNOWN)
def test_matches_the_beta_quantile(successes, trials, expected):
    assert lower_bound(successes, trials) == pytest.approx(expected, abs=1e-12)


def test_without_errors_the_bound_has_its_closed_form():
    for n in (1, 10, 59, 149, 200):
        assert lower_bound(n, n) == pytest.approx(0.05 ** (1 / n), abs=1e-15)
    assert lower_bound(1, 1) == pytest.approx(0.05)


def test_edges():
    assert lower_bound(0, 7) == 0.0
    assert lower_bound(0, 0) is None
    assert lower_bound(9, 10, level=0.5) < 0.9 < lower_bound(9, 10, level=0.01) + 0.1


def test_the_bound_is_where_the_binomial_tail_is_alpha():
    bound = lower_bound(80, 90)
    assert binomial_upper_tail(80, 90, bound) == pytest.approx(0.05, abs=1e-9)
    assert binomial_upper_tail(0, 5, 0.3) == 1.0 and binomial_upper_tail(3, 5, 0.0) == 0.0


def test_agrees_with_scipy_when_it_is_installed():
    stats = pytest.importorskip("scipy.stats")
    for successes, trials in ((3, 4), (17, 40), (120, 121), (480, 500), (2, 2000)):
        expected = stats.beta.ppf(0.05, successes, trials - successes + 1)
        assert lower_bound(successes, trials) == pytest.approx(expected, abs=1e-10)


def test_images_needed_without_an_error():
    assert [images_needed(b) for b in (0.95, 0.98, 0.99)] == [59, 149, 299]
    for bound in (0.95, 0.98, 0.99):
        n = images_needed(bound)
        assert lower_bound(n, n) >= bound > lower_bound(n - 1, n - 1)
    assert images_needed(0.98, level=0.975) == 183       # a two-sided 95 % interval's lower end


def test_two_hundred_flawless_images_bound_the_precision_at_0_985():
    assert math.floor(lower_bound(200, 200) * 1000) / 1000 == 0.985
    assert lower_bound(148, 148) < 0.98 <= lower_bound(149, 149)


@pytest.mark.parametrize("successes, trials", [(-1, 3), (4, 3), (1.5, 3), (True, 3), ("1", 3)])
def test_refuses_counts_that_are_not_counts(successes, trials):
    with pytest.raises(BoundInputError):
        lower_bound(successes, trials)


def test_refuses_levels_and_bounds_outside_the_open_unit_interval():
    for call in (lambda: lower_bound(1, 2, level=1.0), lambda: images_needed(1.0), lambda: images_needed(0.9, 0)):
        with pytest.raises(BoundInputError):
            call()


def test_evaluation_record():
    assert precision_bound(163, 164) == {"lower_bound": pytest.approx(0.9714020758579999), "confidence_level": 0.95,
                                         "method": "Clopper-Pearson one-sided", "confident": 164, "correct": 163}
