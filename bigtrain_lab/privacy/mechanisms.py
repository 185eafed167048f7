"""The two textbook mechanisms of differential privacy, on numbers rather than on gradients.

* ``laplace_mechanism``: answer a numeric query ``f`` with ``f(D) + Laplace(0, sensitivity / epsilon)``.
  The sensitivity is how much ``f`` can change when one person's record is added or removed (a count: 1; a mean
  of ``n`` values clipped to ``[lo, hi]``: ``(hi - lo) / n``). The densities of the answer on two neighbouring
  data sets differ by a factor of at most ``e^epsilon`` everywhere: that is epsilon-DP (Dwork et al., 2006).
* ``randomized_response``: each respondent tells the truth with probability ``p = e^eps / (1 + e^eps)`` and
  lies otherwise (Warner, 1965). ``P(report | bit) / P(report | other bit) = p / (1 - p) = e^eps``: epsilon-DP
  for every respondent, *locally* (no trusted curator). The share of ones is still estimated without bias by
  ``(mean(reports) - (1 - p)) / (2p - 1)``, with variance ``p (1 - p) / (n (2p - 1)^2)`` over the coin flips.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> isinstance(laplace_mechanism(120, sensitivity=1.0, epsilon=0.5, rng=rng), float)
True
>>> reports, estimate = randomized_response([1, 0, 1, 1], epsilon=1.0, rng=rng)
>>> reports.dtype.name, reports.shape
('int64', (4,))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["laplace_mechanism", "laplace_scale", "mean_sensitivity", "randomized_response", "rr_truth_probability",
           "rr_variance"]


def _positive_finite(name: str, x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not math.isfinite(x) \
            or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    return float(x)


def laplace_scale(*, sensitivity: float, epsilon: float) -> float:
    """The Laplace mechanism's scale ``b = sensitivity / epsilon`` (its noise has std ``sqrt(2) b``)."""
    return _positive_finite("sensitivity", sensitivity) / _positive_finite("epsilon", epsilon)


def mean_sensitivity(lower: float, upper: float, n: int) -> float:
    """Sensitivity of the mean of ``n`` values clipped to ``[lower, upper]`` when one value is replaced:
    ``(upper - lower) / n`` (``n`` is public)."""
    if not (math.isfinite(lower) and math.isfinite(upper) and upper > lower):
        raise ValueError(f"need finite lower < upper, got {lower!r}, {upper!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return (upper - lower) / n


def laplace_mechanism(value: Any, *, sensitivity: float, epsilon: float, rng: np.random.Generator) -> Any:
    """``value + rng.laplace(0.0, sensitivity / epsilon, size=np.shape(value))``: a Python float for a scalar
    ``value``, a float64 ndarray for an array-like one. ValueError: ``epsilon`` or ``sensitivity`` <= 0 or not
    finite, or a non-finite value."""
    scale = laplace_scale(sensitivity=sensitivity, epsilon=epsilon)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as why:
        raise ValueError(f"value must be a number or an array of numbers, got {value!r}") from why
    if not np.all(np.isfinite(array)):
        raise ValueError("value must be finite (no NaN or inf)")
    noise = rng.laplace(0.0, scale, size=np.shape(value))
    if array.ndim == 0:
        return float(array + noise)
    return array + noise


def rr_truth_probability(epsilon: float) -> float:
    """``p = e^eps / (1 + e^eps)``: randomized response's chance of reporting the true bit at ``epsilon``."""
    eps = _positive_finite("epsilon", epsilon)
    if eps > 700:  # e^eps overflows; p is 1 to double precision long before
        return 1.0
    e = math.exp(eps)
    return e / (1.0 + e)


def rr_variance(epsilon: float, n: int) -> float:
    """Variance of the randomized-response estimate over the coin flips, the true bits fixed:
    ``p (1 - p) / (n (2p - 1)^2)``. (Sampling the respondents too adds ``pi (1 - pi) / n``.)"""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    p = rr_truth_probability(epsilon)
    return p * (1 - p) / (n * (2 * p - 1) ** 2)


def randomized_response(bits: Any, *, epsilon: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Each bit kept with probability ``p = e^eps / (1 + e^eps)`` (``rng.random(n) < p``), flipped otherwise.

    Returns ``(reports, estimate)``: the int64 reports and ``(mean(reports) - (1 - p)) / (2p - 1)``, the unbiased
    estimate of the true share of ones (it may fall outside [0, 1]). ValueError: no bits, a bit not 0 or 1, or
    ``epsilon`` <= 0 or not finite."""
    p = rr_truth_probability(epsilon)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    array = np.asarray(bits)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"bits must be a non-empty 1-D sequence of 0/1, got shape {array.shape}")
    if array.dtype.kind not in "biuf" or not np.all((array == 0) | (array == 1)):
        raise ValueError("bits must all be 0 or 1")
    truth = array.astype(np.int64)
    keep = rng.random(truth.size) < p
    reports = np.where(keep, truth, 1 - truth).astype(np.int64)
    estimate = (reports.mean() - (1 - p)) / (2 * p - 1)
    return reports, float(estimate)
