"""The Laplace mechanism and randomized response (``bigtrain_lab.privacy.mechanisms``)."""

import math

import numpy as np
import pytest
from scipy import stats

from bigtrain_lab.privacy.mechanisms import (
    laplace_mechanism,
    laplace_scale,
    mean_sensitivity,
    randomized_response,
    rr_truth_probability,
    rr_variance,
)


def test_laplace_adds_exactly_the_generators_draw():
    got = laplace_mechanism(10, sensitivity=2.0, epsilon=0.5, rng=np.random.default_rng(3))
    assert isinstance(got, float)
    assert got == 10 + np.random.default_rng(3).laplace(0.0, 4.0, size=())
    arr = laplace_mechanism([1, 2, 3], sensitivity=1.0, epsilon=1.0, rng=np.random.default_rng(4))
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.shape == (3,)
    np.testing.assert_array_equal(arr, np.array([1, 2, 3]) + np.random.default_rng(4).laplace(0.0, 1.0, size=3))
    grid = laplace_mechanism(np.zeros((2, 3)), sensitivity=1.0, epsilon=2.0, rng=np.random.default_rng(0))
    assert grid.shape == (2, 3)


def test_laplace_noise_has_scale_sensitivity_over_epsilon():
    rng = np.random.default_rng(0)
    noisy = laplace_mechanism(np.zeros(20000), sensitivity=3.0, epsilon=0.5, rng=rng)
    assert stats.kstest(noisy, stats.laplace(scale=6.0).cdf).pvalue > 0.01
    assert laplace_scale(sensitivity=3.0, epsilon=0.5) == 6.0
    assert mean_sensitivity(0.0, 100.0, 50) == 2.0


def test_laplace_densities_on_neighbours_differ_by_at_most_e_to_the_epsilon():
    b = laplace_scale(sensitivity=1.0, epsilon=0.7)
    z = np.linspace(-20, 20, 401)
    ratio = stats.laplace(loc=100, scale=b).pdf(100 + z) / stats.laplace(loc=101, scale=b).pdf(100 + z)
    assert ratio.max() == pytest.approx(math.exp(0.7)) and ratio.min() == pytest.approx(math.exp(-0.7))


@pytest.mark.parametrize("kwargs,match", [
    ({"epsilon": 0.0}, "epsilon"), ({"epsilon": -1.0}, "epsilon"), ({"epsilon": math.inf}, "epsilon"),
    ({"sensitivity": 0.0}, "sensitivity"), ({"sensitivity": math.nan}, "sensitivity"),
    ({"value": math.nan}, "finite"), ({"value": [1.0, math.inf]}, "finite"),
])
def test_laplace_rejects_bad_input(kwargs, match):
    args = {"value": 1.0, "sensitivity": 1.0, "epsilon": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        laplace_mechanism(args.pop("value"), rng=np.random.default_rng(0), **args)


def test_randomized_response_follows_its_definition():
    bits = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1])
    reports, estimate = randomized_response(bits, epsilon=1.2, rng=np.random.default_rng(7))
    p = math.exp(1.2) / (1 + math.exp(1.2))
    keep = np.random.default_rng(7).random(10) < p
    np.testing.assert_array_equal(reports, np.where(keep, bits, 1 - bits))
    assert reports.dtype == np.int64
    assert estimate == pytest.approx((reports.mean() - (1 - p)) / (2 * p - 1))
    assert rr_truth_probability(1.2) == pytest.approx(p)


def test_randomized_response_is_unbiased_with_the_variance_of_the_formula():
    rng = np.random.default_rng(0)
    bits = (np.random.default_rng(1).random(500) < 0.3).astype(int)
    for eps in (0.5, 2.0):
        estimates = np.array([randomized_response(bits, epsilon=eps, rng=rng)[1] for _ in range(3000)])
        sd = math.sqrt(rr_variance(eps, 500))
        assert abs(estimates.mean() - bits.mean()) < 4 * sd / math.sqrt(3000)
        assert estimates.var() == pytest.approx(sd ** 2, rel=0.1)
    assert rr_variance(0.5, 500) > rr_variance(2.0, 500)  # less privacy, less noise


@pytest.mark.parametrize("bits,eps,match", [
    ([], 1.0, "non-empty"), ([0, 2, 1], 1.0, "0 or 1"), ([0.5], 1.0, "0 or 1"), (["a"], 1.0, "0 or 1"),
    ([0, 1], 0.0, "epsilon"), ([0, 1], math.nan, "epsilon"),
])
def test_randomized_response_rejects_bad_input(bits, eps, match):
    with pytest.raises(ValueError, match=match):
        randomized_response(bits, epsilon=eps, rng=np.random.default_rng(0))
