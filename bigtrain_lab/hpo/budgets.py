"""Search spaces and budgets: log-uniform sampling (:func:`sample_log_uniform`) and the rungs of successive
halving (:func:`successive_halving`) and Hyperband's brackets (:func:`hyperband_brackets`), the formulas of
Li et al. (2018), "Hyperband: a novel bandit-based approach to hyperparameter optimization", Algorithm 1.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np

__all__ = ["Rung", "hyperband_brackets", "sample_log_uniform", "successive_halving"]

_REL = 1e-9  # relative slack for budgets computed in floating point (81 ** (1/4) ** 4 is not exactly 81)


class Rung(NamedTuple):
    """One rung of successive halving: ``n_configs`` configurations each trained with ``budget``
    (epochs, steps, samples...). A plain tuple, so ``Rung(9, 3) == (9, 3)``."""

    n_configs: int
    budget: float


def _check_eta(eta: float) -> None:
    if not eta > 1:
        raise ValueError(f"eta must be > 1, got {eta}")


def _n_rungs(min_budget: float, max_budget: float, eta: float) -> int:
    """The largest integer ``s`` with ``min_budget * eta**s <= max_budget`` (up to rounding)."""
    s = 0
    while min_budget * eta ** (s + 1) <= max_budget * (1 + _REL):
        s += 1
    return s


def _floor_div_power(n: int, eta: float, i: int) -> int:
    """``floor(n * eta**-i)``, exact for an integer ``eta``."""
    if float(eta).is_integer():
        return n // int(eta) ** i
    return math.floor(n / eta ** i * (1 + _REL))


def successive_halving(n_configs: int, min_budget: float, max_budget: float, eta: float) -> list[Rung]:
    """The rungs of one successive-halving bracket (the inner loop of Li et al.'s Hyperband).

    ``s`` is the largest integer with ``min_budget * eta**s <= max_budget``; rung ``i = 0..s`` trains
    ``n_i = floor(n_configs * eta**-i)`` configurations with budget ``r_i = min_budget * eta**i`` each (the
    best ``1/eta`` of a rung go on to the next). The list stops before a rung that would have no
    configuration. ``ValueError`` for ``n_configs < 1``, ``min_budget <= 0``, ``max_budget < min_budget`` or
    ``eta <= 1``.

    >>> successive_halving(27, 1, 27, 3)
    [Rung(n_configs=27, budget=1.0), Rung(n_configs=9, budget=3.0), Rung(n_configs=3, budget=9.0), Rung(n_configs=1, budget=27.0)]
    >>> [tuple(r) for r in successive_halving(10, 1, 100, 2)]
    [(10, 1.0), (5, 2.0), (2, 4.0), (1, 8.0)]
    """
    if isinstance(n_configs, bool) or int(n_configs) != n_configs or n_configs < 1:
        raise ValueError(f"n_configs must be an integer >= 1, got {n_configs}")
    if not min_budget > 0:
        raise ValueError(f"min_budget must be > 0, got {min_budget}")
    if not max_budget >= min_budget:
        raise ValueError(f"max_budget ({max_budget}) must be >= min_budget ({min_budget})")
    _check_eta(eta)
    rungs = []
    for i in range(_n_rungs(min_budget, max_budget, eta) + 1):
        n_i = _floor_div_power(int(n_configs), eta, i)
        if n_i == 0:
            break
        rungs.append(Rung(n_i, float(min_budget * eta ** i)))
    return rungs


def hyperband_brackets(max_budget: float, eta: float, min_budget: float = 1) -> list[list[Rung]]:
    """Hyperband's brackets (Li et al. 2018, Algorithm 1), most exploratory first.

    With ``R = max_budget / min_budget`` and ``s_max`` the largest integer with ``eta**s_max <= R``, bracket
    ``s = s_max..0`` starts ``n = ceil((s_max + 1) / (s + 1) * eta**s)`` configurations at budget
    ``max_budget * eta**-s`` and runs :func:`successive_halving` up to ``max_budget``. Every bracket spends
    about the same total budget. ``ValueError`` for ``min_budget <= 0``, ``max_budget < min_budget`` or
    ``eta <= 1``.

    >>> [b[0] for b in hyperband_brackets(9, 3)]
    [Rung(n_configs=9, budget=1.0), Rung(n_configs=5, budget=3.0), Rung(n_configs=3, budget=9.0)]
    """
    if not min_budget > 0:
        raise ValueError(f"min_budget must be > 0, got {min_budget}")
    if not max_budget >= min_budget:
        raise ValueError(f"max_budget ({max_budget}) must be >= min_budget ({min_budget})")
    _check_eta(eta)
    s_max = _n_rungs(min_budget, max_budget, eta)
    brackets = []
    for s in range(s_max, -1, -1):
        if float(eta).is_integer():
            n = math.ceil(Fraction(s_max + 1, s + 1) * int(eta) ** s)
        else:
            n = math.ceil((s_max + 1) / (s + 1) * eta ** s * (1 - _REL))
        r = max_budget * eta ** -s
        brackets.append(successive_halving(n, r, max_budget, eta))
    return brackets


def sample_log_uniform(low: float, high: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from the log-uniform distribution on ``[low, high]``: ``exp(U(log low, log high))``.

    Every decade (1e-4..1e-3, 1e-3..1e-2, ...) gets the same share of the draws, the right prior for a
    learning rate or a weight decay; a uniform draw on ``[low, high]`` would put 90 % of them in the top
    decade. Same as ``scipy.stats.loguniform(low, high)`` in distribution. Draws from ``rng`` (so the same
    seed gives the same draws); returns float64 of shape ``(n,)``. ``ValueError`` for ``low <= 0``,
    ``high <= low`` or ``n < 0``.

    >>> x = sample_log_uniform(1e-4, 1e-1, 1000, np.random.default_rng(0))
    >>> bool(x.min() >= 1e-4 and x.max() <= 1e-1), x.shape
    (True, (1000,))
    >>> np.histogram(np.log10(x), bins=3, range=(-4, -1))[0].tolist()  # about a third per decade
    [302, 340, 358]
    """
    if not low > 0:
        raise ValueError(f"low must be > 0, got {low}")
    if not high > low:
        raise ValueError(f"high ({high}) must be > low ({low})")
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng)}")
    # exp(log(x)) can round a hair outside [low, high]
    return np.clip(np.exp(rng.uniform(math.log(low), math.log(high), size=int(n))), low, high)
