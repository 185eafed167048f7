"""Getting and cleaning labels: label noise, crowd labels (majority vote vs Dawid-Skene), pseudo-labelling
(self-training), active learning by uncertainty sampling, likely label errors from out-of-fold predicted
probabilities, and duplicates.

Crowd labels are an ``(items, annotators)`` integer array with ``-1`` where an annotator gave no label.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict

__all__ = ["DawidSkene", "active_learning_curve", "add_label_noise", "dawid_skene", "exact_duplicates",
           "find_label_issues", "majority_vote", "out_of_fold_proba", "self_training",
           "simulate_annotators", "uncertainty"]

MISSING = -1


def _crowd(labels: ArrayLike) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 2-D integer array (items, annotators), got {labels.dtype} "
                         f"{labels.shape}")
    if (labels < MISSING).any():
        raise ValueError("labels must be class ids >= 0, or -1 for missing")
    return labels


def majority_vote(labels: ArrayLike) -> np.ndarray:
    """The most frequent label of each item; ties go to the smallest label; an item nobody labelled
    gets -1. (``scipy.stats.mode`` with the missing entries as NaN and ``nan_policy="omit"`` agrees.)"""
    labels = _crowd(labels)
    out = np.full(len(labels), MISSING, dtype=np.int64)
    if labels.size == 0:
        return out
    k = int(labels.max()) + 1
    for i, row in enumerate(labels):
        given = row[row != MISSING]
        if len(given):
            out[i] = int(np.argmax(np.bincount(given, minlength=k)))  # argmax: first (smallest) of ties
    return out


@dataclass(frozen=True)
class DawidSkene:
    """Result of :func:`dawid_skene`."""

    posterior: np.ndarray  # (items, K): P(true class | labels)
    confusion: np.ndarray  # (annotators, K, K): P(annotator says l | true class k), rows sum to 1
    prior: np.ndarray  # (K,)
    n_iter: int

    @property
    def labels(self) -> np.ndarray:
        """The most probable true class of each item."""
        return self.posterior.argmax(1)


def dawid_skene(labels: ArrayLike, n_classes: int | None = None, *, max_iter: int = 100, tol: float = 1e-6,
                smoothing: float = 0.01) -> DawidSkene:
    """Dawid & Skene (1979) EM: estimate each annotator's confusion matrix and the true-class posteriors.

    Initialised from the (soft) majority vote. ``smoothing`` is a pseudo-count added to every confusion
    cell so that an annotator who never used a label does not get probability 0 for it.
    """
    labels = _crowd(labels)
    n, m = labels.shape
    k = n_classes or int(labels.max()) + 1
    given = labels != MISSING
    onehot = np.zeros((n, m, k))
    ii, jj = np.nonzero(given)
    onehot[ii, jj, labels[ii, jj]] = 1.0
    counts = onehot.sum(1)  # (n, k) votes per class
    post = np.where(counts.sum(1, keepdims=True) > 0, counts, 1.0)
    post = post / post.sum(1, keepdims=True)
    n_done = 0
    for step in range(1, max_iter + 1):
        n_done = step
        prior = post.mean(0)
        conf = np.einsum("ik,ijl->jkl", post, onehot) + smoothing  # (m, k, l)
        conf /= conf.sum(2, keepdims=True)
        log_like = np.log(prior + 1e-300)[None] + np.einsum("ijl,jkl->ik", onehot, np.log(conf))
        new = np.exp(log_like - log_like.max(1, keepdims=True))
        new /= new.sum(1, keepdims=True)
        done = np.abs(new - post).max() < tol
        post = new
        if done:
            break
    return DawidSkene(post, conf, prior, n_done)


def simulate_annotators(y_true: ArrayLike, accuracies: Sequence[float], n_classes: int, *,
                        label_rate: float = 1.0, seed: int = 0) -> np.ndarray:
    """Crowd labels: annotator ``j`` gives the true class with probability ``accuracies[j]``, otherwise a
    uniformly random OTHER class; each (item, annotator) pair is labelled with probability ``label_rate``
    (else -1)."""
    y = np.asarray(y_true)
    rng = np.random.default_rng(seed)
    out = np.empty((len(y), len(accuracies)), dtype=np.int64)
    for j, acc in enumerate(accuracies):
        wrong = (y + rng.integers(1, n_classes, len(y))) % n_classes
        out[:, j] = np.where(rng.random(len(y)) < acc, y, wrong)
    out[rng.random(out.shape) >= label_rate] = MISSING
    return out


def add_label_noise(y: ArrayLike, rate: float, n_classes: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Flip a ``rate`` fraction of the labels (chosen at random) to a different random class.

    Returns ``(noisy_labels, flipped_mask)``.
    """
    y = np.asarray(y).copy()
    rng = np.random.default_rng(seed)
    flipped = np.zeros(len(y), dtype=bool)
    flipped[rng.choice(len(y), int(round(rate * len(y))), replace=False)] = True
    y[flipped] = (y[flipped] + rng.integers(1, n_classes, int(flipped.sum()))) % n_classes
    return y, flipped


def self_training(estimator: BaseEstimator, X_labeled: np.ndarray, y_labeled: np.ndarray,
                  X_unlabeled: np.ndarray, *, threshold: float = 0.75, max_iter: int = 10
                  ) -> tuple[BaseEstimator, np.ndarray]:
    """Pseudo-labelling: fit, label the unlabeled points predicted with probability > ``threshold``, add
    them, refit; stop when nothing new passes or after ``max_iter`` rounds (the algorithm of scikit-learn's
    ``SelfTrainingClassifier(criterion="threshold")``).

    Returns the final fitted estimator and the pseudo-labels of ``X_unlabeled`` (-1 where never added).
    """
    X_all = np.concatenate([X_labeled, X_unlabeled])
    y_all = np.concatenate([np.asarray(y_labeled), np.full(len(X_unlabeled), MISSING)])
    model = clone(estimator)
    for _ in range(max_iter):
        known = y_all != MISSING
        if known.all():
            break
        model.fit(X_all[known], y_all[known])
        proba = model.predict_proba(X_all[~known])
        confident = proba.max(1) > threshold
        if not confident.any():
            break
        idx = np.flatnonzero(~known)[confident]
        y_all[idx] = model.classes_[proba[confident].argmax(1)]
    known = y_all != MISSING
    model.fit(X_all[known], y_all[known])
    return model, y_all[len(X_labeled):]


def uncertainty(proba: np.ndarray, method: str = "entropy") -> np.ndarray:
    """How unsure each prediction is (higher = ask a human first): ``"entropy"``, ``"margin"`` (1 minus
    the gap between the top two probabilities) or ``"least_confident"`` (1 - max probability)."""
    p = np.asarray(proba, dtype=float)
    if method == "entropy":
        return -(p * np.log(np.clip(p, 1e-12, 1))).sum(1)
    if method == "least_confident":
        return 1 - p.max(1)
    if method == "margin":
        top2 = np.sort(p, 1)[:, -2:]
        return 1 - (top2[:, 1] - top2[:, 0])
    raise ValueError(f"method must be 'entropy', 'margin' or 'least_confident', got {method!r}")


def active_learning_curve(make_model: Callable[[], BaseEstimator], X_pool: np.ndarray, y_pool: np.ndarray,
                          X_test: np.ndarray, y_test: np.ndarray, *, n_initial: int = 20, batch: int = 10,
                          rounds: int = 10, strategy: str = "entropy", seed: int = 0
                          ) -> tuple[list[int], list[float]]:
    """Pool-based active learning: start from ``n_initial`` random labels, then ``rounds`` times label
    the ``batch`` pool points the current model is most unsure of (``strategy`` as in :func:`uncertainty`,
    or ``"random"``). Returns (number of labels, test accuracy) after each fit."""
    rng = np.random.default_rng(seed)
    labeled = np.zeros(len(y_pool), dtype=bool)
    labeled[rng.choice(len(y_pool), n_initial, replace=False)] = True
    sizes, accuracies = [], []
    for r in range(rounds + 1):
        model = make_model().fit(X_pool[labeled], y_pool[labeled])
        sizes.append(int(labeled.sum()))
        accuracies.append(float((model.predict(X_test) == y_test).mean()))
        if r == rounds:
            break
        pool = np.flatnonzero(~labeled)
        if strategy == "random":
            pick = rng.choice(pool, min(batch, len(pool)), replace=False)
        else:
            proba = np.zeros((len(pool), int(y_pool.max()) + 1))
            proba[:, model.classes_] = model.predict_proba(X_pool[pool])
            pick = pool[np.argsort(-uncertainty(proba, strategy), kind="stable")[:batch]]
        labeled[pick] = True
    return sizes, accuracies


def out_of_fold_proba(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, *, folds: int = 5,
                      seed: int = 0) -> np.ndarray:
    """Predicted probabilities for every row from a model that did NOT train on that row (k-fold)."""
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(estimator, X, y, cv=cv, method="predict_proba")


def find_label_issues(y: ArrayLike, proba: np.ndarray) -> np.ndarray:
    """Indices of likely label errors, most suspicious first (a simplified confident learning,
    Northcutt et al. 2021): a row is flagged when its given label's out-of-fold probability is below that
    class's average self-confidence AND some other class's probability reaches ITS average
    self-confidence; flagged rows are ranked by the given label's probability (lowest first)."""
    y = np.asarray(y)
    p = np.asarray(proba, dtype=float)
    k = p.shape[1]
    thresholds = np.array([p[y == c, c].mean() if (y == c).any() else 1.0 for c in range(k)])
    given = p[np.arange(len(y)), y]
    other = p >= thresholds[None]
    other[np.arange(len(y)), y] = False
    flagged = np.flatnonzero((given < thresholds[y]) & other.any(1))
    return flagged[np.argsort(given[flagged], kind="stable")]


def exact_duplicates(X: np.ndarray) -> list[np.ndarray]:
    """Groups (arrays of row indices, each of size >= 2) of identical rows."""
    X = np.ascontiguousarray(X)
    _, inverse, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    return [np.flatnonzero(inverse == g) for g in np.flatnonzero(counts > 1)]
