"""Monitoring a deployed model: input drift, prediction drift, agreement with a shadow model.

Lesson 13 (``notebooks/13_saving_and_export.ipynb``), "after deployment". Labels arrive late or never, so a
service watches what it can see at once: its INPUTS (does this window look like the training data?), its
PREDICTIONS (does it predict the classes it used to, as confidently?) and a SHADOW model run on the same
requests (how often do the two disagree?).

- ``psi``: the Population Stability Index, ``sum_i (c_i - r_i) ln(c_i / r_i)`` over bins of the REFERENCE
  distribution (quantile bins: each holds about 1 / bins of the reference), with the fractions floored at
  ``eps`` so that an empty bin gives a large but finite term. Rules of thumb from credit scoring: below 0.1
  no significant shift, 0.1 to 0.25 a moderate shift worth a look, above 0.25 a major shift.
- ``ks_drift``: the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``): the largest gap between
  the two empirical CDFs and its p-value.
- ``drift_report``: both, per feature, with a drift flag at a Bonferroni-corrected level (``alpha / d`` for
  ``d`` features: with 64 features tested at 0.05 each, about 3 would be flagged on unshifted data).
- ``shifted_stream``: the measured example: windows of digits test images under a shift that grows over
  time, with each window's drift statistics next to the deployed model's accuracy (known offline).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

__all__ = ["PSI_MAJOR", "PSI_MODERATE", "SHIFTS", "apply_shift", "drift_report", "ks_drift", "prediction_drift",
           "psi", "psi_categorical", "shadow_agreement", "shifted_stream"]

#: PSI rules of thumb: < 0.1 stable, 0.1 - 0.25 moderate shift, > 0.25 major shift.
PSI_MODERATE = 0.1
PSI_MAJOR = 0.25


def _as_1d(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds inf or NaN")
    return a


def _psi_from_fractions(ref: np.ndarray, cur: np.ndarray, eps: float) -> float:
    ref, cur = np.maximum(ref, eps), np.maximum(cur, eps)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi(reference: Any, current: Any, *, bins: int = 10, eps: float = 1e-4) -> float:
    """Population Stability Index of ``current`` against ``reference`` (1-D samples of one feature).

    Bin edges are the reference's quantiles at ``1/bins, 2/bins, ...`` (duplicates merged: a feature that is
    0 for half the reference gets fewer, wider bins), the outer bins open to +-inf so every current value
    falls in one; a value equal to an edge goes to the bin on its right. Fractions below ``eps`` count as
    ``eps``. Symmetric in its two terms' sign: every term ``(c - r) ln(c / r)`` is >= 0.

    >>> ref = np.arange(100)  # quartile edges 24.75, 49.5, 74.25: 25 % of the reference in each bin
    >>> cur = np.r_[np.zeros(10), np.full(20, 30), np.full(30, 60), np.full(40, 90)]  # 10/20/30/40 %
    >>> round(psi(ref, cur, bins=4), 4)
    0.2282
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    ref, cur = _as_1d(reference, "reference"), _as_1d(current, "current")
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    n = len(inner) + 1
    ref_frac = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=n) / ref.size
    cur_frac = np.bincount(np.searchsorted(inner, cur, side="right"), minlength=n) / cur.size
    return _psi_from_fractions(ref_frac, cur_frac, eps)


def psi_categorical(reference: Any, current: Any, *, categories: int | None = None, eps: float = 1e-4) -> float:
    """PSI over categories (e.g. predicted classes ``0 .. categories - 1``): one bin per category.

    >>> round(psi_categorical([0, 0, 1, 1], [0, 0, 0, 1]), 4)
    0.2747
    """
    ref = np.asarray(reference).astype(np.int64).ravel()
    cur = np.asarray(current).astype(np.int64).ravel()
    if ref.size == 0 or cur.size == 0:
        raise ValueError("reference and current must be non-empty")
    if min(ref.min(), cur.min()) < 0:
        raise ValueError("categories must be integers >= 0")
    n = max(int(ref.max()), int(cur.max())) + 1 if categories is None else int(categories)
    return _psi_from_fractions(np.bincount(ref, minlength=n) / ref.size, np.bincount(cur, minlength=n) / cur.size,
                               eps)


def ks_drift(reference: Any, current: Any) -> tuple[float, float]:
    """``(statistic, p_value)`` of ``scipy.stats.ks_2samp``: the largest vertical gap between the two
    empirical CDFs, and how likely a gap that large is when both samples come from one distribution."""
    from scipy import stats  # imported here: scipy.stats takes most of a second to import

    result = stats.ks_2samp(_as_1d(reference, "reference"), _as_1d(current, "current"))
    return float(result.statistic), float(result.pvalue)


def _as_2d(X: Any, name: str) -> np.ndarray:
    a = np.asarray(X.detach().cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or len(a) == 0:
        raise ValueError(f"{name} must be a non-empty (n_samples, n_features) array, got shape {a.shape}")
    return a


def drift_report(ref_X: Any, cur_X: Any, *, feature_names: Sequence[str] | None = None, alpha: float = 0.05,
                 bins: int = 10) -> list[dict[str, Any]]:
    """One row per feature: ``feature``, ``psi``, ``ks``, ``p_value``, ``drifted`` (``p_value < alpha / d``,
    Bonferroni over the ``d`` features), ``psi_level`` ("stable" / "moderate" / "major")."""
    ref, cur = _as_2d(ref_X, "ref_X"), _as_2d(cur_X, "cur_X")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"ref_X has {ref.shape[1]} features, cur_X {cur.shape[1]}")
    d = ref.shape[1]
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
    if len(names) != d:
        raise ValueError(f"{len(names)} feature names for {d} features")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    rows = []
    for j, name in enumerate(names):
        value = psi(ref[:, j], cur[:, j], bins=bins)
        ks, p = ks_drift(ref[:, j], cur[:, j])
        level = "major" if value > PSI_MAJOR else "moderate" if value > PSI_MODERATE else "stable"
        rows.append({"feature": name, "psi": value, "ks": ks, "p_value": p, "drifted": bool(p < alpha / d),
                     "psi_level": level})
    return rows


def _probs(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if a.ndim != 2 or len(a) == 0:
        raise ValueError(f"{name} must be a non-empty (n_samples, n_classes) array of probabilities, "
                         f"got shape {a.shape}")
    return a


def prediction_drift(ref_probs: Any, cur_probs: Any, *, bins: int = 10) -> dict[str, float]:
    """Drift of a model's OUTPUTS (no labels needed): ``psi_class`` (PSI of the predicted-class frequencies),
    ``psi_confidence`` (PSI of the max probability), ``ks_confidence`` and ``p_confidence``, and the mean
    confidence of each window (``ref_confidence``, ``cur_confidence``)."""
    ref, cur = _probs(ref_probs, "ref_probs"), _probs(cur_probs, "cur_probs")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"ref_probs has {ref.shape[1]} classes, cur_probs {cur.shape[1]}")
    ref_conf, cur_conf = ref.max(axis=1), cur.max(axis=1)
    ks, p = ks_drift(ref_conf, cur_conf)
    return {"psi_class": psi_categorical(ref.argmax(1), cur.argmax(1), categories=ref.shape[1]),
            "psi_confidence": psi(ref_conf, cur_conf, bins=bins), "ks_confidence": ks, "p_confidence": p,
            "ref_confidence": float(ref_conf.mean()), "cur_confidence": float(cur_conf.mean())}


def _labels(x: Any) -> np.ndarray:
    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
    return a.argmax(axis=-1) if a.ndim == 2 else a.ravel()


def shadow_agreement(primary_preds: Any, shadow_preds: Any) -> float:
    """Fraction of requests on which the deployed and the shadow model predict the same class (labels, or
    ``(n, classes)`` scores / probabilities, reduced by argmax)."""
    a, b = _labels(primary_preds), _labels(shadow_preds)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two non-empty prediction arrays of one length, got {a.shape} and {b.shape}")
    return float((a == b).mean())


# ----------------------------------------------------------------------------------------------------
# The measured example: a shift growing over time

#: The shifts ``apply_shift`` knows, on images scaled to [0, 1], at severity ``s`` in [0, 1].
SHIFTS = {
    "brightness": "every pixel + 0.5 s, clipped to [0, 1] (a brighter sensor: the background lights up)",
    "contrast": "pixels pulled towards their image's mean by a factor 1 - 0.8 s (a washed-out camera)",
    "noise": "Gaussian noise of standard deviation 0.4 s, clipped to [0, 1]",
    "translate": "each image moved right by 1 pixel with probability s, and by 2 with probability s^2",
}


def apply_shift(X: torch.Tensor, kind: str, severity: float, *, generator: torch.Generator | None = None,
                side: int = 8) -> torch.Tensor:
    """``X`` (``(n, side * side)`` images in [0, 1]) under one of ``SHIFTS`` at ``severity`` in [0, 1]
    (0: unchanged)."""
    if kind not in SHIFTS:
        raise ValueError(f"kind must be one of {sorted(SHIFTS)}, got {kind!r}")
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity must be in [0, 1], got {severity!r}")
    if severity == 0:
        return X.clone()
    if kind == "brightness":
        return (X + 0.5 * severity).clamp(0, 1)
    if kind == "contrast":
        mean = X.mean(dim=1, keepdim=True)
        return mean + (X - mean) * (1 - 0.8 * severity)
    if kind == "noise":
        return (X + 0.4 * severity * torch.randn(X.shape, generator=generator)).clamp(0, 1)
    images = X.reshape(-1, side, side)
    u = torch.rand(len(X), generator=generator)
    steps = (u < severity).long() + (u < severity ** 2).long()
    out = torch.zeros_like(images)
    for k in (0, 1, 2):
        rows = steps == k
        out[rows, :, k:] = images[rows, :, : side - k]
    return out.reshape(X.shape)


@torch.no_grad()
def _predict_probs(model: nn.Module, X: torch.Tensor) -> np.ndarray:
    was_training = model.training
    model.eval()
    try:
        return torch.softmax(model(X), dim=1).numpy()
    finally:
        model.train(was_training)


def shifted_stream(model: nn.Module, shadow: nn.Module, X_ref: torch.Tensor, X_pool: torch.Tensor,
                   y_pool: torch.Tensor, *, kind: str = "brightness", windows: int = 8, window_size: int = 200,
                   max_severity: float = 1.0, features: Sequence[int] = (19, 27, 36, 44), alpha: float = 0.05,
                   seed: int = 0) -> list[dict[str, Any]]:
    """Deployment as a stream of ``windows`` windows of ``window_size`` requests drawn (with replacement)
    from ``X_pool`` / ``y_pool`` (e.g. digits test images), the shift ``kind`` growing linearly from 0 in the
    first window to ``max_severity`` in the last. ``X_ref`` is the reference (e.g. the validation split).

    Per window: ``window``, ``severity``, ``psi`` (``{feature index: PSI}`` for ``features``),
    ``mean_psi`` (over all features), ``fraction_drifted`` (features flagged by ``drift_report``),
    ``psi_class`` and ``psi_confidence`` (``prediction_drift`` of ``model``), ``accuracy`` (of ``model``, the
    labels known offline) and ``shadow_agreement`` (``model`` vs ``shadow``)."""
    if windows < 2 or window_size < 10:
        raise ValueError(f"need windows >= 2 and window_size >= 10, got {windows}, {window_size}")
    if len(X_pool) != len(y_pool):
        raise ValueError(f"X_pool has {len(X_pool)} rows, y_pool {len(y_pool)}")
    g = torch.Generator().manual_seed(seed)
    ref_np = X_ref.detach().numpy()
    ref_probs = _predict_probs(model, X_ref)
    rows = []
    for w in range(windows):
        severity = max_severity * w / (windows - 1)
        index = torch.randint(0, len(X_pool), (window_size,), generator=g)
        X = apply_shift(X_pool[index], kind, severity, generator=g)
        y = y_pool[index].numpy()
        report = drift_report(ref_np, X.numpy(), alpha=alpha)
        probs, shadow_probs = _predict_probs(model, X), _predict_probs(shadow, X)
        outputs = prediction_drift(ref_probs, probs)
        rows.append({"window": w, "severity": severity,
                     "psi": {int(j): report[j]["psi"] for j in features},
                     "mean_psi": float(np.mean([r["psi"] for r in report])),
                     "fraction_drifted": float(np.mean([r["drifted"] for r in report])),
                     "psi_class": outputs["psi_class"], "psi_confidence": outputs["psi_confidence"],
                     "accuracy": float((probs.argmax(1) == y).mean()),
                     "shadow_agreement": shadow_agreement(probs, shadow_probs)})
    return rows
