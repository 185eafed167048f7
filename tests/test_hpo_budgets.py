"""bigtrain_lab.hpo.budgets: successive halving and Hyperband's brackets vs Li et al. (2018)'s table,
the log-uniform sampler vs scipy.stats.loguniform (KS test)."""

import numpy as np
import pytest
from scipy import stats

from bigtrain_lab.hpo import Rung, hyperband_brackets, sample_log_uniform, successive_halving


def test_hyperband_brackets_match_the_papers_table():
    # Li et al. 2018, Table 1: R = 81, eta = 3; (n_i, r_i) per bracket s = 4..0
    table = [[(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
             [(34, 3), (11, 9), (3, 27), (1, 81)],
             [(15, 9), (5, 27), (1, 81)],
             [(8, 27), (2, 81)],
             [(5, 81)]]
    assert hyperband_brackets(81, 3) == table
    assert hyperband_brackets(810, 3, min_budget=10) == [[(n, 10 * r) for n, r in b] for b in table]


def test_successive_halving_formulas():
    assert successive_halving(81, 1, 81, 3) == [Rung(81, 1), Rung(27, 3), Rung(9, 9), Rung(3, 27), Rung(1, 81)]
    assert successive_halving(100, 1, 81, 3) == [(100, 1), (33, 3), (11, 9), (3, 27), (1, 81)]
    assert successive_halving(20, 2, 100, 3) == [(20, 2), (6, 6), (2, 18)]  # 54 <= 100 but 0 configs there
    assert successive_halving(8, 1, 50, 2) == [(8, 1), (4, 2), (2, 4), (1, 8)]
    assert successive_halving(5, 3, 3, 2) == [(5, 3)]  # min == max: one rung
    assert successive_halving(1, 1, 100, 3) == [(1, 1)]
    r = successive_halving(27, 1, 27, 3)[2]
    assert isinstance(r, Rung) and r.n_configs == 3 and r.budget == 9 and isinstance(r.n_configs, int)


def test_successive_halving_is_float_robust():
    assert 0.1 * 3 > 0.3 and 1.1 * 3**4 > 89.1  # in floating point
    assert [n for n, _ in successive_halving(9, 0.1, 0.3, 3)] == [9, 3]
    assert [n for n, _ in successive_halving(81, 1.1, 89.1, 3)] == [81, 27, 9, 3, 1]
    assert [n for n, _ in successive_halving(243, 1, 243, 3)] == [243, 81, 27, 9, 3, 1]  # log ratio 4.999...
    rungs = successive_halving(50, 1, 50, 2.5)
    assert [n for n, _ in rungs] == [50, 20, 8, 3, 1]  # floor(50 / 2.5**i); 2.5**4 = 39.06 <= 50
    np.testing.assert_allclose([r for _, r in rungs], [1, 2.5, 6.25, 15.625, 39.0625])


@pytest.mark.parametrize("args", [(0, 1, 9, 3), (9, 0, 9, 3), (9, -1, 9, 3), (9, 3, 2, 3), (9, 1, 9, 1),
                                  (9, 1, 9, 0.5), (2.5, 1, 9, 3)])
def test_successive_halving_rejects(args):
    with pytest.raises(ValueError):
        successive_halving(*args)


def test_sample_log_uniform_has_the_log_uniform_distribution():
    low, high = 1e-5, 1e-1
    x = sample_log_uniform(low, high, 5000, np.random.default_rng(0))
    assert x.shape == (5000,) and x.dtype == np.float64 and low <= x.min() and x.max() <= high
    assert stats.kstest(x, stats.loguniform(low, high).cdf).pvalue > 0.01
    # the circulating mistakes are rejected by the same test
    rng = np.random.default_rng(0)
    uniform = rng.uniform(low, high, 5000)
    log10_with_exp = np.exp(rng.uniform(np.log10(low), np.log10(high), 5000))
    for wrong in (uniform, log10_with_exp):
        assert stats.kstest(wrong, stats.loguniform(low, high).cdf).pvalue < 1e-6


def test_sample_log_uniform_uses_the_generator():
    a = sample_log_uniform(1e-3, 1.0, 10, np.random.default_rng(3))
    np.testing.assert_array_equal(a, sample_log_uniform(1e-3, 1.0, 10, np.random.default_rng(3)))
    rng = np.random.default_rng(3)
    assert not np.array_equal(sample_log_uniform(1e-3, 1.0, 10, rng), sample_log_uniform(1e-3, 1.0, 10, rng))
    assert sample_log_uniform(1, 2, 0, rng).shape == (0,)
    with pytest.raises(TypeError):
        sample_log_uniform(1, 2, 3, 0)


@pytest.mark.parametrize("args", [(0, 1, 5), (-1, 1, 5), (1, 1, 5), (2, 1, 5), (1, 2, -1)])
def test_sample_log_uniform_rejects(args):
    with pytest.raises(ValueError):
        sample_log_uniform(*args, np.random.default_rng(0))
