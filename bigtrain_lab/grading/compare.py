"""Comparators: ``compare(got, expected) -> None`` when the candidate's value is right, else a reason.

Each comparator first checks the *kind* of value (a number, a tuple of n numbers, a tensor of a shape)
so that a wrong type, a NaN or a wrong shape gets its own clear message rather than a crash.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bigtrain_lab.grading.registry import Comparator
from bigtrain_lab.grading.sandbox import describe


class WrongKind(Exception):
    """The value is not of the kind the exercise returns; the message says what was expected."""


def as_real(value: Any, what: str = "a number") -> float:
    """Convert a Python / NumPy / 0-d torch scalar to float; anything else raises ``WrongKind``."""
    if isinstance(value, bool | np.bool_):
        raise WrongKind(f"expected {what}, got a bool ({value!r})")
    if isinstance(value, numbers.Real | np.integer | np.floating):
        return float(value)
    if isinstance(value, np.ndarray | torch.Tensor) and value.ndim == 0 and value.dtype != torch.bool:
        return float(value.item())
    raise WrongKind(f"expected {what}, got {type(value).__name__}: {describe(value, 80)}")


def _as_tuple(value: Any, n: int, names: Sequence[str]) -> tuple:
    what = f"a tuple of {n} values ({', '.join(names)})"
    if isinstance(value, np.ndarray | torch.Tensor):
        if value.ndim != 1:
            raise WrongKind(f"expected {what}, got an array of shape {tuple(value.shape)}")
        value = list(value)
    if not isinstance(value, tuple | list):
        raise WrongKind(f"expected {what}, got {type(value).__name__}: {describe(value, 80)}")
    if len(value) != n:
        raise WrongKind(f"expected {what}, got {len(value)} values: {describe(value, 120)}")
    return tuple(value)


def _close(got: float, expected: float, rtol: float, atol: float) -> bool:
    return math.isclose(got, expected, rel_tol=rtol, abs_tol=atol)


def real(*, rtol: float = 1e-7, atol: float = 1e-9) -> Comparator:
    """A single real number, NaN never accepted, equal within ``rtol`` / ``atol``."""

    def compare(got: Any, expected: Any) -> str | None:
        try:
            value = as_real(got)
        except WrongKind as e:
            return str(e)
        if math.isnan(value):
            return "returned NaN (a 0/0 somewhere? check the empty and single-class cases)"
        if not _close(value, float(expected), rtol, atol):
            return f"value differs: expected {float(expected)!r}, got {value!r}"
        return None

    return compare


def reals(names: Sequence[str], *, rtol: float = 1e-7, atol: float = 1e-9) -> Comparator:
    """A tuple of ``len(names)`` real numbers, each compared like ``real``."""

    def compare(got: Any, expected: Any) -> str | None:
        try:
            values = _as_tuple(got, len(names), names)
            numbers_ = [as_real(v, f"a number for {name}") for v, name in zip(values, names, strict=True)]
        except WrongKind as e:
            return str(e)
        wrong = []
        for name, value, exp in zip(names, numbers_, expected, strict=True):
            if math.isnan(value):
                wrong.append(f"{name} is NaN (expected {float(exp)!r})")
            elif not _close(value, float(exp), rtol, atol):
                wrong.append(f"{name}: expected {float(exp)!r}, got {value!r}")
        return "; ".join(wrong) or None

    return compare


def integers(names: Sequence[str]) -> Comparator:
    """A tuple of ``len(names)`` integers (floats with an integral value are accepted), compared exactly."""

    def compare(got: Any, expected: Any) -> str | None:
        try:
            values = _as_tuple(got, len(names), names)
            numbers_ = [as_real(v, f"an integer for {name}") for v, name in zip(values, names, strict=True)]
        except WrongKind as e:
            return str(e)
        wrong = []
        for name, value, exp in zip(names, numbers_, expected, strict=True):
            if math.isnan(value) or value != int(value):
                wrong.append(f"{name} should be a whole count, got {value!r}")
            elif int(value) != int(exp):
                wrong.append(f"{name}: expected {int(exp)}, got {int(value)}")
        return "; ".join(wrong) or None

    return compare


def _array_reason(got: Any, expected: np.ndarray, what: str, *, rtol: float, atol: float,
                  integer: bool = False) -> str | None:
    if isinstance(got, list | tuple):
        got = np.asarray(got)
    if not isinstance(got, np.ndarray):
        return f"expected {what} as a numpy array of shape {expected.shape}, got {type(got).__name__}: " \
               f"{describe(got, 80)}"
    if got.shape != expected.shape:
        return f"{what} has shape {got.shape}, expected {expected.shape}"
    if got.dtype.kind not in "iufb" or got.dtype.kind == "b":
        return f"{what} must hold numbers, got dtype {got.dtype}"
    got = got.astype(np.float64)
    if np.isnan(got).any():
        return f"{what} contains NaN (a 0/0? check constant columns / unlabelled items)"
    bad = got != expected if integer else ~np.isclose(got, expected, rtol=rtol, atol=atol)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return (f"{int(bad.sum())} of {bad.size} values of {what} differ; first at index {idx}: expected "
                f"{expected[idx]!r}, got {got[idx]!r}")
    return None


def array(what: str, *, rtol: float = 1e-9, atol: float = 1e-12, integer: bool = False) -> Comparator:
    """Compare with a numpy array (``integer``: exactly; else ``np.isclose``), naming the first difference."""

    def compare(got: Any, expected: np.ndarray) -> str | None:
        return _array_reason(got, np.asarray(expected), what, rtol=rtol, atol=atol, integer=integer)
    return compare


def array_pair(names: tuple[str, str], *, rtol: float = 1e-9, atol: float = 1e-9) -> Comparator:
    """Compare a pair of arrays named ``names`` (e.g. the transformed train and test splits)."""

    def compare(got: Any, expected: tuple[np.ndarray, np.ndarray]) -> str | None:
        if not isinstance(got, tuple | list) or len(got) != 2:
            return f"expected a tuple ({', '.join(names)}), got {type(got).__name__}: {describe(got, 80)}"
        for name, value, exp in zip(names, got, expected, strict=True):
            if reason := _array_reason(value, exp, name, rtol=rtol, atol=atol):
                return reason
        return None
    return compare


# ---- tolerances derived from the floating-point format and the size of the case ---------------------
# Two correct implementations of the same formula differ only by rounding, and how much depends on the
# format (its machine epsilon), on how many roundings feed each result (a sum of n terms, a product with
# inner dimension k) and on the magnitude of what was rounded -- not on one implementation's luck. The
# bounds below are the classical a-priori ones (Higham, "Accuracy and Stability of Numerical Algorithms",
# ch. 3-4): each floating-point operation is exact up to a relative error of at most eps (unit roundoff
# eps / 2, rounded up), so n of them in a chain are within gamma_n = n eps / (1 - n eps) ~ n eps. Two
# correct implementations are each within the bound of the exact value, hence within twice the bound of
# each other; ``SAFETY`` (2) covers that. They are norm-wise: an entry near 0 may carry the absolute error
# of the large terms it came from, so the error allowed is measured against the largest magnitude in the
# case, not against each entry (an element-wise relative test rejects right answers on such entries).

#: Two correct results are each within the a-priori bound of the exact value: within twice it of each other.
SAFETY = 2.0


def eps(dtype: Any) -> float:
    """Machine epsilon (the gap between 1.0 and the next float) of a torch or NumPy dtype; float64's for
    integer or bool dtypes (their values are exact; they are compared as float64)."""
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps) if dtype.is_floating_point else float(np.finfo(np.float64).eps)
    kind = np.dtype(dtype)
    return float(np.finfo(kind).eps) if kind.kind in "fc" else float(np.finfo(np.float64).eps)


def rounding_bound(steps: float, scale: float, dtype: Any) -> float:
    """``SAFETY * steps * eps(dtype) * scale``: how far apart two correct results may be when each went
    through at most ``steps`` roundings (a chain of ``steps`` operations, each exact up to eps relative)
    of quantities no larger than ``scale`` in magnitude."""
    return SAFETY * steps * eps(dtype) * scale


def sum_bound(n: int, abs_sum: float, dtype: Any) -> float:
    """The error allowed on a sum of ``n`` terms whose magnitudes add up to ``abs_sum``: recursive
    summation in any order gives |fl(sum x) - sum x| <= (n - 1) eps sum |x| (Higham, 4.2), so two correct
    sums are within ``rounding_bound(n - 1, abs_sum, dtype)`` of each other. Note the ``sum |x|``: with
    cancellation the error is relative to the terms, not to the (possibly tiny) result."""
    return rounding_bound(max(n - 1, 1), abs_sum, dtype)


def matmul_bound(k: int, norm_a: float, norm_b: float, dtype: Any) -> float:
    """The error allowed on each entry of a product A @ B with inner dimension ``k``: every entry is a
    k-term dot product, so |fl(AB) - AB| <= k eps |A| |B| entry-wise, and in the max-row-sum norm
    ||fl(AB) - AB|| <= k eps ||A|| ||B|| (Higham, 3.5). ``norm_a`` and ``norm_b`` are those norms (any
    consistent upper bounds will do: max-abs entry times the dimension summed over)."""
    return rounding_bound(k, norm_a * norm_b, dtype)


def max_abs(value: Any) -> float:
    """The largest magnitude in a tensor or array (0.0 when empty), in float64."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().double().abs().max()) if value.numel() else 0.0
    array = np.asarray(value, dtype=np.float64)
    return float(np.abs(array).max()) if array.size else 0.0


def normwise_reason(got: torch.Tensor, expected: torch.Tensor, what: str, allowed: float) -> str | None:
    """None when max |got - expected| <= ``allowed`` (NaN where expected is NaN accepted), else the reason."""
    got64, exp64 = got.detach().double(), expected.detach().double()
    both_nan = torch.isnan(got64) & torch.isnan(exp64)
    diff = (got64 - exp64).abs().masked_fill(both_nan, 0.0)
    err = float(diff.max()) if diff.numel() else 0.0
    if not err <= allowed:  # also catches a NaN error
        return (f"{what} differs: max |got - expected| = {err:.3g}, more than rounding explains "
                f"(allowed {allowed:.3g} for {expected.dtype})")
    return None
