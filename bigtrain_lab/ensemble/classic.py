"""Classic ensembles (lesson 11): what bagging, boosting, stacking and voting do, measured.

* ``bootstrap_predictions`` + ``bias_variance_01``: retrain a model on bootstrap replicas of its training set
  and split its 0-1 error into bias and variance (Domingos 2000): bagging lowers the variance term.
* ``accuracy_by_ensemble_size``: a fitted forest / bagging ensemble's accuracy using its first k members.
* ``staged_errors``: a boosted model's error after each round (``staged_predict``): boosting lowers the bias.
* ``stacking_features``: the meta-model's inputs, out-of-fold (``out_of_fold_predictions``) or in-fold (the
  leak).
* ``hard_vote``, ``disagreement_matrix``, ``ensemble_report``: majority voting as scikit-learn's
  ``VotingClassifier(voting="hard")`` does it, members' pairwise disagreement (diversity), and the numbers
  the ensemble builder widget shows.

Soft voting, out-of-fold predictions and weight averaging are ``bigtrain_lab.ensemble.fusion``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bigtrain_lab.ensemble.fusion import normalized_weights, out_of_fold_predictions, soft_vote

__all__ = ["BiasVariance", "accuracy_by_ensemble_size", "bias_variance_01", "bootstrap_predictions",
           "disagreement_matrix", "ensemble_report", "hard_vote", "stacking_features", "staged_errors"]


@dataclass(frozen=True)
class BiasVariance:
    """0-1 loss of predictions from models trained on resampled training sets, split as Domingos (2000) does.

    error: mean over replicas and samples of ``prediction != y``; bias: share of samples whose main
    prediction (the most frequent over replicas) is wrong; variance: mean share of replicas disagreeing with
    the main prediction (what averaging the replicas removes); main: the main prediction per sample.
    """

    error: float
    bias: float
    variance: float
    main: np.ndarray


def bootstrap_predictions(make_model: Callable[[], Any], X_train: np.ndarray, y_train: np.ndarray,
                          X_test: np.ndarray, *, n_replicas: int, seed: int = 0) -> np.ndarray:
    """Predictions on ``X_test`` of ``make_model()`` fitted on ``n_replicas`` bootstrap resamples of the
    training set (drawn with replacement, same size), shape ``(n_replicas, len(X_test))``.

    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X = np.arange(20.0).reshape(-1, 1); y = (X[:, 0] > 9).astype(int)
    >>> bootstrap_predictions(DecisionTreeClassifier, X, y, X[:3], n_replicas=4).shape
    (4, 3)
    """
    if n_replicas < 1:
        raise ValueError(f"n_replicas must be >= 1, got {n_replicas}")
    X_train, y_train = np.asarray(X_train), np.asarray(y_train)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_replicas):
        rows = rng.integers(0, len(X_train), len(X_train))
        out.append(np.asarray(make_model().fit(X_train[rows], y_train[rows]).predict(X_test)))
    return np.stack(out)


def _mode(labels: np.ndarray) -> np.ndarray:
    """Most frequent value of each column of ``labels`` (n_rows, n_cols); ties to the smallest value."""
    values, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(labels.shape)
    counts = np.stack([(codes == k).sum(0) for k in range(len(values))])
    return values[counts.argmax(0)]


def bias_variance_01(predictions: np.ndarray, y: np.ndarray) -> BiasVariance:
    """Domingos' decomposition of the 0-1 loss of ``predictions`` (n_replicas, n_samples) against ``y``.

    >>> r = bias_variance_01(np.array([[0, 1, 1], [0, 1, 0], [0, 0, 1]]), np.array([0, 1, 0]))
    >>> round(r.error, 3), round(r.bias, 3), round(r.variance, 3), r.main.tolist()
    (0.333, 0.333, 0.222, [0, 1, 1])
    """
    predictions, y = np.asarray(predictions), np.asarray(y)
    if predictions.ndim != 2 or predictions.shape[1] != len(y):
        raise ValueError(f"predictions must be (n_replicas, {len(y)}), got {predictions.shape}")
    main = _mode(predictions)
    return BiasVariance(float((predictions != y).mean()), float((main != y).mean()),
                        float((predictions != main).mean()), main)


def accuracy_by_ensemble_size(ensemble: Any, X: np.ndarray, y: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Accuracy on ``(X, y)`` of a fitted ``RandomForestClassifier`` / ``ExtraTreesClassifier`` /
    ``BaggingClassifier`` using only its first k members, for each k in ``sizes``: their averaged
    ``predict_proba``, as the ensemble itself predicts with all of them (no refitting)."""
    members = ensemble.estimators_
    features = getattr(ensemble, "estimators_features_", None)
    n_classes = len(ensemble.classes_)
    if any(not 1 <= k <= len(members) for k in sizes):
        raise ValueError(f"sizes must be in [1, {len(members)}], got {list(sizes)}")
    X, y = np.asarray(X), np.asarray(y)
    total = np.zeros((len(X), n_classes))
    cumulative = []
    for i, member in enumerate(members):
        proba = member.predict_proba(X if features is None else X[:, features[i]])
        total[:, np.asarray(member.classes_).astype(int)] += proba  # members see encoded labels 0..n-1
        cumulative.append(total.argmax(1))
    return np.array([float(np.mean(ensemble.classes_[cumulative[k - 1]] == y)) for k in sizes])


def staged_errors(model: Any, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Error rate of a fitted boosted model (AdaBoost, gradient boosting) after each round, from its
    ``staged_predict``."""
    y = np.asarray(y)
    return np.array([float(np.mean(pred != y)) for pred in model.staged_predict(X)])


def hard_vote(labels: np.ndarray, weights: Sequence[float] | None = None, *, n_classes: int | None = None
              ) -> np.ndarray:
    """Majority vote of ``labels`` (n_members, n_samples) of class indices 0..n_classes-1, each member's vote
    counted with its weight: ``VotingClassifier(voting="hard")``'s rule, ties to the lowest class index.

    >>> votes = np.array([[0, 2, 0], [1, 2, 2], [1, 0, 1]])  # 3 members, 3 samples; the last: a three-way tie
    >>> hard_vote(votes).tolist()
    [1, 2, 0]
    >>> hard_vote(votes, weights=[1, 3, 1]).tolist()
    [1, 2, 2]
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[0] == 0:
        raise ValueError(f"labels must be (n_members, n_samples), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0:
        raise ValueError("labels must be non-negative integer class indices")
    w = normalized_weights(weights, labels.shape[0])  # scaling the weights moves no argmax
    n = int(labels.max(initial=0)) + 1 if n_classes is None else n_classes
    counts = np.zeros((n, labels.shape[1]))
    for member, weight in zip(labels, w, strict=True):
        np.add.at(counts, (member, np.arange(labels.shape[1])), weight)
    return counts.argmax(0)


def disagreement_matrix(labels: np.ndarray) -> np.ndarray:
    """Share of samples on which members i and j predict different labels, ``labels`` (n_members, n_samples).

    >>> disagreement_matrix(np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 0, 0, 1]])).tolist()
    [[0.0, 0.25, 1.0], [0.25, 0.0, 0.75], [1.0, 0.75, 0.0]]
    """
    labels = np.asarray(labels)
    return (labels[:, None, :] != labels[None, :, :]).mean(-1)


def ensemble_report(member_probas: Mapping[str, np.ndarray], y: np.ndarray, selected: Sequence[str]
                    ) -> dict[str, Any]:
    """What an ensemble of the ``selected`` members achieves: ``member_probas[name]`` is a member's
    ``predict_proba`` (n_samples, n_classes) on the same samples, ``y`` their class indices.

    Returns ``{"selected": [...], "members": {name: accuracy}, "hard": accuracy of the majority vote
    (``hard_vote``), "soft": of the averaged probabilities (``soft_vote``), "oracle": share of samples at
    least one member gets right, "disagreement": ``disagreement_matrix`` of the selected members,
    "mean_disagreement": its mean over pairs (0.0 for one member)}``. ValueError on an empty selection, an
    unknown name or mismatched shapes.
    """
    selected = list(selected)
    if not selected:
        raise ValueError("select at least one member")
    unknown = [name for name in selected if name not in member_probas]
    if unknown:
        raise ValueError(f"unknown members {unknown}; known: {list(member_probas)}")
    y = np.asarray(y)
    probas = np.stack([np.asarray(member_probas[name], dtype=float) for name in selected])
    if probas.ndim != 3 or probas.shape[1] != len(y):
        raise ValueError(f"each member's probabilities must be (n_samples={len(y)}, n_classes), "
                         f"got {probas.shape[1:]}")
    labels = probas.argmax(-1)
    _, soft = soft_vote(probas)
    matrix = disagreement_matrix(labels)
    k = len(selected)
    pairs = matrix[np.triu_indices(k, 1)]
    return {"selected": selected,
            "members": {name: float(np.mean(lab == y)) for name, lab in zip(selected, labels, strict=True)},
            "hard": float(np.mean(hard_vote(labels, n_classes=probas.shape[2]) == y)),
            "soft": float(np.mean(np.asarray(soft) == y)),
            "oracle": float(np.mean((labels == y).any(0))),
            "disagreement": matrix,
            "mean_disagreement": float(pairs.mean()) if k > 1 else 0.0}


def stacking_features(make_models: Mapping[str, Callable[[], Any]], X_train: np.ndarray, y_train: np.ndarray,
                      X_test: np.ndarray, *, n_splits: int = 5, seed: int = 0, in_fold: bool = False
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The meta-model's inputs: each member's class probabilities, side by side (the first column dropped
    for two classes, as ``StackingClassifier`` does), for the training rows and for ``X_test``.

    Training rows get out-of-fold predictions (``out_of_fold_predictions``: every row predicted by a model
    that did not see it), unless ``in_fold``: then the member fitted on all training rows predicts the rows
    it was fitted on (the leak). Test rows are always predicted by the member fitted on all training rows.
    """
    y_train = np.asarray(y_train)
    keep = slice(1, None) if len(np.unique(y_train)) == 2 else slice(None)
    train_cols, test_cols = [], []
    for make_model in make_models.values():
        model = make_model().fit(X_train, y_train)
        if in_fold:
            train_cols.append(model.predict_proba(X_train)[:, keep])
        else:
            train_cols.append(np.asarray(out_of_fold_predictions(make_model, X_train, y_train, n_splits=n_splits,
                                                                 seed=seed))[:, keep])
        test_cols.append(model.predict_proba(X_test)[:, keep])
    return np.hstack(train_cols), np.hstack(test_cols)
