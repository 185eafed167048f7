"""Split a labelled data set among federated clients: IID, or non-IID by a Dirichlet prior over labels.

Real clients do not hold random samples of one distribution: a phone's photos, a hospital's patients, a
keyboard's language. The usual benchmark (Hsu, Qi and Brown 2019, "Measuring the effects of non-identical
data distribution") draws, for every class ``c``, the shares of its examples that go to each client from
``Dirichlet(alpha, ..., alpha)``: a large ``alpha`` (100) gives every client nearly the global label mix
(IID); a small one (0.1) gives most clients one or two classes.

>>> import numpy as np
>>> labels = np.repeat(np.arange(3), 4)
>>> parts = dirichlet_split(labels, 2, alpha=100.0, seed=0)
>>> sorted(np.concatenate(parts).tolist()) == list(range(12))
True
>>> label_histogram(labels, parts, n_classes=3).sum(axis=1).tolist() == [len(p) for p in parts]
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["dirichlet_split", "iid_split", "label_histogram"]


def _labels(labels: object) -> np.ndarray:
    array = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"labels must be a non-empty 1-d array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {array.dtype}")
    return array


def _check_clients(n_clients: int, n: int) -> None:
    if n_clients < 1:
        raise ValueError(f"n_clients must be >= 1, got {n_clients}")
    if n_clients > n:
        raise ValueError(f"{n_clients} clients but only {n} examples: some client would be empty")


def iid_split(n: int, n_clients: int, seed: int) -> list[np.ndarray]:
    """``n`` indices shuffled by ``seed`` and cut into ``n_clients`` parts of near-equal size (sorted within)."""
    _check_clients(n_clients, n)
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, n_clients)]


def dirichlet_split(labels: object, n_clients: int, alpha: float, seed: int, *, min_size: int = 1,
                    max_tries: int = 1000) -> list[np.ndarray]:
    """Indices of each client's examples: for each class, its (shuffled) examples are cut among the clients in
    proportions drawn from ``Dirichlet(alpha * ones(n_clients))``. Every index goes to exactly one client.

    A draw that leaves a client with fewer than ``min_size`` examples is redrawn (the same rule as the
    NIID-Bench code), at most ``max_tries`` times, then ValueError. Deterministic given ``seed``.
    Returns ``n_clients`` sorted int64 arrays."""
    y = _labels(labels)
    _check_clients(n_clients, len(y))
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if min_size < 0 or min_size * n_clients > len(y):
        raise ValueError(f"min_size must be in [0, n / n_clients], got {min_size}")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            shares = rng.dirichlet(np.full(n_clients, float(alpha)))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for k, piece in enumerate(np.split(idx, cuts)):
                parts[k].append(piece)
        out = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise ValueError(f"no Dirichlet({alpha}) draw in {max_tries} tries gave every one of {n_clients} clients "
                     f">= {min_size} examples: raise alpha or lower n_clients / min_size")


def label_histogram(labels: object, parts: Sequence[Sequence[int]], n_classes: int | None = None) -> np.ndarray:
    """``(n_clients, n_classes)`` counts: how many examples of each class every client holds."""
    y = _labels(labels)
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    if n_classes < 1 or y.max() >= n_classes or y.min() < 0:
        raise ValueError(f"labels must lie in [0, {n_classes})")
    return np.stack([np.bincount(y[np.asarray(p, dtype=np.int64)], minlength=n_classes) for p in parts])
