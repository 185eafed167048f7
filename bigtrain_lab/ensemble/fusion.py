"""The small functions every fusion rests on: soft voting over the members' predicted probabilities
(:func:`soft_vote`, what ``VotingClassifier(voting="soft")`` computes), out-of-fold predicted probabilities
for stacking (:func:`out_of_fold_predictions`, what ``cross_val_predict(method="predict_proba")`` computes),
and the weighted average of state dicts (:func:`average_weights`, the core of SWA, model soups and FedAvg).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.model_selection import StratifiedKFold

__all__ = ["average_weights", "normalized_weights", "out_of_fold_predictions", "soft_vote"]


def normalized_weights(weights: ArrayLike | None, n: int) -> np.ndarray:
    """``n`` non-negative weights scaled to sum to one (``None``: all equal).

    ``ValueError`` when there are not ``n`` of them, when one is negative or not finite, or when all are 0.

    >>> normalized_weights([2, 1, 1], 3).tolist()
    [0.5, 0.25, 0.25]
    """
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"expected {n} weights (one per member), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be finite and non-negative, got {w.tolist()}")
    total = w.sum()
    if total <= 0:
        raise ValueError("weights must not all be zero")
    return w / total


def soft_vote(probas: ArrayLike, weights: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Soft voting: the weighted average of the members' predicted probabilities and its argmax.

    ``probas`` has shape ``(n_members, n_samples, n_classes)``; ``weights`` (one per member, default equal)
    are normalised to sum to one, so ``[2, 1]`` and ``[0.4, 0.2]`` vote alike. Returns ``(avg_proba, labels)``:
    float64 ``(n_samples, n_classes)`` and int64 ``(n_samples,)`` class indices, a tie going to the lowest
    index (``np.argmax``). Equal to ``VotingClassifier(voting="soft", weights=weights)``'s ``predict_proba``
    and (as class indices) ``predict`` when its members predict these probabilities.

    ``ValueError`` when ``probas`` is not 3-D (or its members' arrays differ in shape) or empty, or for bad
    weights (see :func:`normalized_weights`).

    >>> avg, labels = soft_vote([[[0.9, 0.1], [0.4, 0.6]], [[0.3, 0.7], [0.4, 0.6]]], weights=[1, 3])
    >>> avg.round(2).tolist(), labels.tolist()
    ([[0.45, 0.55], [0.4, 0.6]], [1, 1])
    """
    if isinstance(probas, (list, tuple)):
        shapes = {np.shape(p) for p in probas}
        if len(shapes) > 1:
            raise ValueError(f"the members' probabilities differ in shape: {sorted(shapes)}")
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"probas must be (n_members, n_samples, n_classes), got shape {p.shape}")
    if p.shape[0] == 0 or p.shape[2] == 0:
        raise ValueError(f"need at least one member and one class, got shape {p.shape}")
    w = normalized_weights(weights, p.shape[0])
    avg = np.tensordot(w, p, axes=1)
    return avg, avg.argmax(axis=1).astype(np.int64)


def out_of_fold_predictions(make_model: Callable[[], Any], X: ArrayLike, y: ArrayLike, *, n_splits: int,
                            seed: int) -> np.ndarray:
    """Out-of-fold predicted probabilities: every row predicted by a model that never saw it.

    The folds are ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)``; for each fold a fresh
    ``make_model()`` is fitted on the other folds and its ``predict_proba`` fills the held-out rows. Returns
    ``(n_samples, n_classes)`` float64, one column per class of ``y`` in sorted order (a class missing from a
    fold's training rows gets probability 0 there). Equal to ``cross_val_predict(make_model(), X, y,
    cv=StratifiedKFold(n_splits, shuffle=True, random_state=seed), method="predict_proba")``; these are the
    features a stacking meta-model may be trained on.

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.arange(12.0).reshape(-1, 1); y = (X[:, 0] > 5).astype(int)
    >>> out_of_fold_predictions(LogisticRegression, X, y, n_splits=3, seed=0).shape
    (12, 2)
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y differ in length: {len(X)} vs {len(y)}")
    classes = np.unique(y)
    out = np.zeros((len(y), len(classes)))
    for train, test in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y):
        model = make_model()
        model.fit(X[train], y[train])
        cols = np.searchsorted(classes, model.classes_)
        out[np.ix_(test, cols)] = model.predict_proba(X[test])
    return out


def average_weights(state_dicts: Sequence[Mapping[str, torch.Tensor]],
                    weights: ArrayLike | None = None) -> dict[str, torch.Tensor]:
    """The weighted average of state dicts (weights normalised, default equal): SWA, model soups, FedAvg.

    Floating-point tensors are averaged (in float64, then cast back to their dtype); integer and bool tensors
    -- counters such as BatchNorm's ``num_batches_tracked`` -- have no meaningful average and are taken
    from the first state dict (``torch.optim.swa_utils.AveragedModel`` does not average buffers either: it
    copies them from the model it was last updated with). Every tensor keeps its dtype, device and shape;
    the key order is the first dict's. For equal weights the averaged parameters equal ``AveragedModel``'s
    after ``update_parameters`` with each model; BatchNorm's running statistics, averaged here like the
    weights, are best recomputed afterwards (``torch.optim.swa_utils.update_bn``).

    ``ValueError`` on an empty list, keys, shapes or dtypes that differ between the dicts, or bad weights
    (see :func:`normalized_weights`).

    >>> a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    >>> b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    >>> avg = average_weights([a, b], weights=[3, 1])
    >>> avg["w"].tolist(), avg["n"].item()
    ([1.5, 3.0], 3)
    """
    if len(state_dicts) == 0:
        raise ValueError("need at least one state dict")
    first = state_dicts[0]
    for i, sd in enumerate(state_dicts[1:], 1):
        if set(sd) != set(first):
            diff = sorted(set(sd) ^ set(first))
            raise ValueError(f"state dict {i} has different keys than state dict 0: {diff}")
        for k, v in first.items():
            if sd[k].shape != v.shape or sd[k].dtype != v.dtype:
                raise ValueError(f"{k!r}: state dict {i} has {sd[k].dtype} {tuple(sd[k].shape)}, "
                                 f"state dict 0 has {v.dtype} {tuple(v.shape)}")
    w = normalized_weights(weights, len(state_dicts))
    out: dict[str, torch.Tensor] = {}
    for k, v in first.items():
        if v.is_floating_point() or v.is_complex():
            wide = torch.complex128 if v.is_complex() else torch.float64
            acc = sum(float(wi) * sd[k].detach().to(device=v.device, dtype=wide)
                      for wi, sd in zip(w, state_dicts, strict=True))
            out[k] = acc.to(v.dtype)
        else:
            out[k] = v.detach().clone()
    return out
