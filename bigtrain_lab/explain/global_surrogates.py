"""Global explanations: permutation importance, a surrogate decision tree with its fidelity, rules.

- ``permutation_importance``: drop in score when one column is shuffled (scikit-learn's
  ``sklearn.inspection.permutation_importance``, which the unit tests compare against, does the same).
- ``fit_surrogate_tree``: a shallow tree trained on the *model's* predictions, not the labels.
  Its ``fidelity`` (agreement with the model on held-out rows) says how far its rules can be trusted as
  a description of the model; its accuracy on the labels is a different number.
- ``extract_rules``: every root-to-leaf path of a fitted tree as an IF ... THEN rule with its support.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.tree import DecisionTreeClassifier

__all__ = ["Rule", "Surrogate", "extract_rules", "fidelity", "fit_surrogate_tree", "permutation_importance",
           "rules_predict"]


def permutation_importance(score: Callable[[np.ndarray, np.ndarray], float], X: ArrayLike, y: ArrayLike, *,
                           n_repeats: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over ``n_repeats`` of score(X, y) - score(X with column j shuffled, y), per column.

    ``score(X, y)`` is higher-is-better (e.g. ``model.score``). Shuffling breaks the column's link with
    the target and with the other columns: correlated features share (and can hide) their importance.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (n, d) with n = len(y); got {X.shape} and {y.shape}")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats!r}")
    rng = np.random.default_rng(seed)
    base = float(score(X, y))
    drops = np.zeros((X.shape[1], n_repeats))
    for j in range(X.shape[1]):
        shuffled = X.copy()
        for r in range(n_repeats):
            shuffled[:, j] = X[rng.permutation(len(X)), j]
            drops[j, r] = base - float(score(shuffled, y))
    return drops.mean(axis=1), drops.std(axis=1)


@dataclass(frozen=True)
class Surrogate:
    """A tree fitted to a model's predictions; ``fidelity``: its agreement with the model on held-out rows."""

    tree: DecisionTreeClassifier
    fidelity: float
    train_fidelity: float


def fidelity(tree, predict: Callable[[np.ndarray], np.ndarray], X: ArrayLike) -> float:
    """Fraction of rows of ``X`` on which ``tree`` predicts what the model (``predict``) predicts."""
    X = np.asarray(X, dtype=np.float64)
    return float(np.mean(tree.predict(X) == np.asarray(predict(X))))


def fit_surrogate_tree(predict: Callable[[np.ndarray], np.ndarray], X_train: ArrayLike, X_holdout: ArrayLike, *,
                       max_depth: int = 3, seed: int = 0) -> Surrogate:
    """A ``DecisionTreeClassifier(max_depth)`` mimicking ``predict`` (the black box's labels) on X_train.

    Fidelity is measured on ``X_holdout``, rows the tree did not see.
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    tree = DecisionTreeClassifier(max_depth=max_depth, random_state=seed).fit(X_train, predict(X_train))
    return Surrogate(tree, fidelity(tree, predict, X_holdout), fidelity(tree, predict, X_train))


@dataclass(frozen=True)
class Rule:
    """IF all ``conditions`` (feature, "<=" or ">", threshold) THEN ``prediction``.

    ``support``: training rows reaching the leaf; ``confidence``: the share of them of the predicted class.
    """

    conditions: tuple[tuple[int, str, float], ...]
    prediction: int
    support: int
    confidence: float

    def matches(self, X: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows of X that satisfy every condition."""
        mask = np.ones(len(X), dtype=bool)
        for feature, op, threshold in self.conditions:
            mask &= X[:, feature] <= threshold if op == "<=" else X[:, feature] > threshold
        return mask

    def text(self, feature_names: Sequence[str] | None = None, class_names: Sequence[str] | None = None) -> str:
        """E.g. ``IF worst radius <= 16.8 AND worst concave points <= 0.136 THEN benign (n=180, 97%)``."""
        def name(j: int) -> str:
            return feature_names[j] if feature_names is not None else f"x[{j}]"

        parts = [f"{name(f)} {op} {t:.4g}" for f, op, t in self.conditions] or ["always"]
        label = class_names[self.prediction] if class_names is not None else str(self.prediction)
        return f"IF {' AND '.join(parts)} THEN {label} (n={self.support}, {self.confidence:.0%})"


def extract_rules(tree: DecisionTreeClassifier) -> list[Rule]:
    """Every leaf of a fitted tree as a ``Rule``, sorted by decreasing support.

    The rules partition the input space: exactly one matches each row, and it predicts what the tree does.
    """
    t = tree.tree_
    rules: list[Rule] = []

    def walk(node: int, conditions: tuple[tuple[int, str, float], ...]) -> None:
        if t.children_left[node] == -1:  # a leaf
            counts = t.value[node][0]
            k = int(np.argmax(counts))
            rules.append(Rule(conditions, int(tree.classes_[k]), int(t.n_node_samples[node]),
                              float(counts[k] / counts.sum())))
            return
        feature, threshold = int(t.feature[node]), float(t.threshold[node])
        walk(t.children_left[node], (*conditions, (feature, "<=", threshold)))
        walk(t.children_right[node], (*conditions, (feature, ">", threshold)))

    walk(0, ())
    return sorted(rules, key=lambda r: -r.support)


def rules_predict(rules: Sequence[Rule], X: ArrayLike) -> np.ndarray:
    """Apply a rule list: each row gets the prediction of the (single) rule it matches."""
    X = np.asarray(X, dtype=np.float64)
    out = np.full(len(X), -1, dtype=np.int64)
    for rule in rules:
        out[rule.matches(X)] = rule.prediction
    if (out < 0).any():
        raise ValueError("some rows match no rule: the rules do not come from one tree")
    return out
