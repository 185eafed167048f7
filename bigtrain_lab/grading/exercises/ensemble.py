"""Exercises of the ensembles topic (lesson 11). The references are ``bigtrain_lab.ensemble``'s functions, which
``tests/test_ensemble_fusion.py`` checks against scikit-learn and torch:

- ``ensemble.soft_vote``: ``VotingClassifier(voting="soft", weights=...)``'s ``predict_proba`` / ``predict``
  for the members' probabilities (weights normalised; a tie goes to the lowest class index).
- ``ensemble.out_of_fold_predictions``: ``cross_val_predict(make_model(), X, y, cv=StratifiedKFold(n_splits,
  shuffle=True, random_state=seed), method="predict_proba")``. Among the models handed to the candidate is
  one that memorises its training rows (one-hot of the label for a row it saw): a row predicted by a model
  that saw it shows as a one-hot row, and for rows it did not see it predicts its training fold's class
  frequencies, so folds that are not stratified, not shuffled or shuffled with another seed show too.
- ``ensemble.average_weights``: the weighted average of state dicts (weights normalised); floating-point
  tensors averaged, integer tensors (BatchNorm's ``num_batches_tracked``) taken from the first state dict;
  dtypes kept. For equal weights the parameters equal ``torch.optim.swa_utils.AveragedModel``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from bigtrain_lab.ensemble import average_weights, out_of_fold_predictions, soft_vote
from bigtrain_lab.grading.compare import _array_reason, rounding_bound
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe

# ---- ensemble.soft_vote ---------------------------------------------------------------------------


def _vote_compare(got: Any, expected: tuple[np.ndarray, np.ndarray]) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"expected a tuple (avg_proba, labels), got {type(got).__name__}: {describe(got, 80)}"
    if reason := _array_reason(got[0], expected[0], "avg_proba", rtol=1e-9, atol=1e-12):
        return reason
    if reason := _array_reason(got[1], expected[1], "labels", rtol=0, atol=0, integer=True):
        return reason + " (the argmax of avg_proba; a tie goes to the LOWEST class index)"
    return None


def _probas(rng: np.random.Generator, m: int, n: int, k: int, alpha: float = 1.0) -> np.ndarray:
    return rng.dirichlet(np.full(k, alpha), size=(m, n))


def _vote_cases(rng: np.random.Generator) -> list[Case]:
    # ties use multiples of 1/8 and power-of-two weights: exact in any order of summation
    half = np.array([[[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]], [[0.25, 0.5, 0.25], [0.25, 0.5, 0.25]]])
    mirror = np.array([[[0.75, 0.25], [0.125, 0.875]], [[0.25, 0.75], [0.875, 0.125]]])
    p3 = _probas(rng, 3, 6, 4)
    cases = [
        Case("equal weights (weights=None)", (_probas(rng, 3, 8, 3),)),
        Case("weights that do not sum to one ([2, 1, 1]): normalise them", (p3, [2, 1, 1])),
        Case("weights already normalised give the same vote", (p3, [0.5, 0.25, 0.25])),
        Case("exact ties: the lowest class index wins", (half,)),
        Case("two members that mirror each other: every sample a tie", (mirror,)),
        Case("weights [1, 3] break the mirror", (mirror, [1, 3])),
        Case("a member with weight 0 does not vote", (_probas(rng, 3, 5, 3), np.array([1.0, 0.0, 2.0]))),
        Case("one member: its own probabilities and argmax", (_probas(rng, 1, 7, 5),)),
        Case("where averaging matters: a confident member outvotes two lukewarm ones",
             (np.array([[[0.45, 0.55]], [[0.45, 0.55]], [[0.99, 0.01]]]),)),
        Case("a list of per-member arrays", ([np.array([[0.2, 0.8], [0.6, 0.4]]), np.array([[0.7, 0.3], [0.5, 0.5]])],)),
        Case("weights as a tuple of floats", (_probas(rng, 2, 6, 3), (0.3, 1.2))),
        Case("2-D probas (a single member's (n_samples, n_classes)): ValueError",
             (np.array([[0.5, 0.5], [0.1, 0.9]]),), raises=ValueError),
        Case("members with different numbers of samples: ValueError",
             ([np.full((3, 2), 0.5), np.full((4, 2), 0.5)],), raises=ValueError),
        Case("a negative weight: ValueError", (_probas(rng, 2, 4, 3), [1.0, -0.5]), raises=ValueError),
        Case("weights that cancel ([1, -1]): ValueError", (_probas(rng, 2, 4, 3), [1.0, -1.0]), raises=ValueError),
        Case("all weights zero: ValueError", (_probas(rng, 2, 4, 3), [0, 0]), raises=ValueError),
        Case("three weights for two members: ValueError", (_probas(rng, 2, 4, 3), [1, 1, 1]), raises=ValueError),
    ]
    for i in range(5):
        m, n, k = int(rng.integers(2, 7)), int(rng.integers(1, 60)), int(rng.integers(2, 8))
        w = np.round(rng.uniform(0, 3, m), 2) if rng.random() < 0.7 else None
        if w is not None and w.sum() == 0:
            w[0] = 1.0
        label = f"random #{i + 1} ({m} members, {n} samples, {k} classes, " + \
            ("equal weights)" if w is None else f"weights {w.tolist()})")
        cases.append(Case(label, (_probas(rng, m, n, k, float(rng.choice([0.3, 1.0, 3.0]))),) +
                          (() if w is None else (w,))))
    return cases


register(Exercise(
    id="ensemble.soft_vote",
    reference=soft_vote,
    make_cases=_vote_cases,
    compare=_vote_compare,
    hint="Stack probas as an array (n_members, n_samples, n_classes); ValueError if it is not 3-D. Weights: "
         "default all equal; ValueError if there is not one per member, if one is negative or if they sum "
         "to 0; then divide by their sum so that the average is still a probability. avg = sum over members "
         "of w_m * probas[m] (np.tensordot(w, probas, axes=1)); labels = avg.argmax(axis=1), which gives the "
         "first (lowest) class of a tie. Average the PROBABILITIES (not their logs, not the members' votes).",
    section="soft-voting",
))


# ---- ensemble.out_of_fold_predictions -------------------------------------------------------------


class MemorisingModel(ClassifierMixin, BaseEstimator):
    """For a row it was fitted on: the one-hot of that row's label. For any other row: the class
    frequencies of its training labels. A model that has seen a row gives it away."""

    def fit(self, X, y):
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        self.classes_, counts = np.unique(y, return_counts=True)
        self.prior_ = counts / counts.sum()
        self.seen_ = {row.tobytes(): int(np.searchsorted(self.classes_, label)) for row, label in zip(X, y, strict=True)}
        return self

    def predict_proba(self, X):
        X = np.asarray(X, dtype=np.float64)
        out = np.tile(self.prior_, (len(X), 1))
        for i, row in enumerate(X):
            if (j := self.seen_.get(row.tobytes())) is not None:
                out[i] = 0.0
                out[i, j] = 1.0
        return out

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


_MODELS: dict[str, Callable[[], Any]] = {
    "MemorisingModel()": MemorisingModel,
    "KNeighborsClassifier(n_neighbors=1)": lambda: KNeighborsClassifier(n_neighbors=1),
    "KNeighborsClassifier(n_neighbors=5)": lambda: KNeighborsClassifier(n_neighbors=5),
    "LogisticRegression(max_iter=1000)": lambda: LogisticRegression(max_iter=1000),
    "GaussianNB()": GaussianNB,
    "DecisionTreeClassifier(max_depth=3, random_state=0)": lambda: DecisionTreeClassifier(max_depth=3, random_state=0),
}


class MakeModel:
    """``make_model`` handed to the candidate: each call returns a fresh, unfitted model."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self) -> Any:
        return _MODELS[self.name]()

    def __deepcopy__(self, memo: dict) -> MakeModel:
        return self  # stateless: the checker's copies of the inputs may share it

    def __repr__(self) -> str:
        return f"make_model = lambda: {self.name}"


def _data(rng: np.random.Generator, n: int, d: int, k: int, *, weights: list | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=n, n_features=d, n_informative=min(d, 2), n_redundant=0,
                               n_repeated=0, n_classes=k, n_clusters_per_class=1, weights=weights,
                               class_sep=1.0, flip_y=0.05, random_state=int(rng.integers(2**31)))
    return np.round(X, 4), y


def _oof_cases(rng: np.random.Generator) -> list[Case]:
    def case(label: str, model: str, X: Any, y: Any, n_splits: int, seed: int, **kw: Any) -> Case:
        return Case(label, (MakeModel(model), X, y), {"n_splits": n_splits, "seed": seed}, **kw)

    X, y = _data(rng, 60, 4, 3)
    Xi, yi = _data(rng, 90, 3, 2, weights=[0.85])
    Xr, yr = _data(rng, 40, 3, 2)
    yr = np.where(yr == 1, 2, yr)
    yr[0] = 1  # one row of class 1 (a middle column): the fold that holds it was fitted without it
    Xs, ys = _data(rng, 45, 3, 3)
    seed = int(rng.integers(1000))
    cases = [
        case("a memorising model: a row predicted by a model that saw it is one-hot", "MemorisingModel()",
             X, y, 5, 0),
        case("1-nearest neighbour: in-fold it would be always right", "KNeighborsClassifier(n_neighbors=1)",
             X, y, 5, 0),
        case(f"logistic regression, seed {seed}", "LogisticRegression(max_iter=1000)", X, y, 4, seed),
        case("imbalanced classes (85 % / 15 %): the folds must be stratified", "MemorisingModel()", Xi, yi, 5, 3),
        case("shuffled with the given seed (not in the data's order)", "GaussianNB()", Xi, yi, 3, 11),
        case("labels 2, 5, 9: one column per class, in sorted order", "MemorisingModel()", Xs, ys * 3 + 2 + (ys > 1),
             3, 1),
        case("string labels", "LogisticRegression(max_iter=1000)", Xs,
             np.array(["setosa", "versicolor", "virginica"])[ys], 3, 2),
        case("a class with one row: the fold that holds it never saw it (probability 0 in that column)",
             "MemorisingModel()", Xr, yr, 3, 4),
        case("two folds", "DecisionTreeClassifier(max_depth=3, random_state=0)", X, y, 2, 5),
        case("ten folds", "KNeighborsClassifier(n_neighbors=5)", Xi, yi, 10, 6),
        case("y as a Python list", "GaussianNB()", X, y.tolist(), 3, 7),
        case("3 folds but 2 rows of each class: StratifiedKFold refuses (ValueError)", "GaussianNB()",
             X[:6], np.array([0, 1, 2, 0, 1, 2]), 3, 0, raises=ValueError),
    ]
    for i in range(4):
        n, d, k = int(rng.integers(30, 120)), int(rng.integers(2, 6)), int(rng.integers(2, 5))
        name = str(rng.choice([m for m in _MODELS if not m.startswith("Logistic")]))  # lbfgs: the slow one
        Xn, yn = _data(rng, n, d, k)
        n_splits = int(rng.integers(2, min(6, int(np.bincount(yn).min())) + 1))
        cases.append(case(f"random #{i + 1} ({n} rows, {k} classes, {n_splits} folds, {name})", name, Xn, yn,
                          n_splits, int(rng.integers(10_000))))
    return cases


def _oof_compare(got: Any, expected: np.ndarray) -> str | None:
    reason = _array_reason(got, expected, "the out-of-fold probabilities", rtol=1e-7, atol=1e-9)
    if reason and isinstance(got, np.ndarray) and got.shape == expected.shape and got.ndim == 2:
        bad = ~np.isclose(np.asarray(got, dtype=np.float64), expected, rtol=1e-7, atol=1e-9).all(axis=1)
        onehot = np.isclose(got, 1.0).sum(axis=1) == 1
        leaked = bad & onehot & ~np.isclose(expected, 1.0).any(axis=1)
        if leaked.any():
            reason += (f"; {int(leaked.sum())} rows came back one-hot from a model that memorises its training "
                       "rows: they were predicted by a model that had seen them (a leak)")
    return reason


register(Exercise(
    id="ensemble.out_of_fold_predictions",
    reference=out_of_fold_predictions,
    make_cases=_oof_cases,
    compare=_oof_compare,
    hint="folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y) (stratified, "
         "shuffled, that seed: the folds must be the same as the reference's). For each (train, test): "
         "model = make_model(); model.fit(X[train], y[train]); out[test] = model.predict_proba(X[test]) -- "
         "only the held-out rows, never the training rows, never a model fitted on all of X. out has one "
         "column per class of np.unique(y); a fold's model knows only model.classes_: put its columns at "
         "np.searchsorted(np.unique(y), model.classes_) (a class it never saw stays 0).",
    section="stacking",
))


# ---- ensemble.average_weights ---------------------------------------------------------------------


def _weights_compare(got: Any, expected: dict[str, torch.Tensor]) -> str | None:
    if not isinstance(got, dict):
        return f"expected a dict of tensors (a state dict), got {type(got).__name__}: {describe(got, 80)}"
    if set(got) != set(expected):
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        return f"the keys differ: missing {missing}, unexpected {extra}"
    for key, exp in expected.items():
        value = got[key]
        if not isinstance(value, torch.Tensor):
            return f"{key!r}: expected a tensor, got {type(value).__name__}: {describe(value, 80)}"
        if value.dtype != exp.dtype:
            why = (" (an integer buffer such as BatchNorm's num_batches_tracked is not averaged: take the first "
                   "state dict's)" if not exp.is_floating_point() else " (keep each tensor's dtype)")
            return f"{key!r} has dtype {value.dtype}, expected {exp.dtype}{why}"
        if tuple(value.shape) != tuple(exp.shape):
            return f"{key!r} has shape {tuple(value.shape)}, expected {tuple(exp.shape)}"
        if exp.is_floating_point():
            scale = float(exp.double().abs().max()) if exp.numel() else 0.0
            allowed = rounding_bound(8, max(scale, 1e-30), exp.dtype)
            err = float((value.double() - exp.double()).abs().max()) if exp.numel() else 0.0
            if not err <= allowed:
                return (f"{key!r} differs: max |got - expected| = {err:.3g} (allowed {allowed:.3g}); "
                        f"expected {describe(exp.flatten()[:6], 100)}..., got {describe(value.flatten()[:6], 100)}...")
        elif not torch.equal(value, exp):
            return (f"{key!r}: expected {describe(exp, 80)}, got {describe(value, 80)} (an integer buffer is "
                    "taken from the FIRST state dict, not averaged)")
    return None


def _tensor(rng: np.random.Generator, *shape: int, dtype: torch.dtype = torch.float32, scale: float = 1.0
            ) -> torch.Tensor:
    return torch.from_numpy(rng.normal(0, scale, shape)).to(dtype)


def _bn_state(rng: np.random.Generator, d_in: int = 4, hidden: int = 5, d_out: int = 3,
              dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The state dict of ``Sequential(Linear(d_in, hidden), BatchNorm1d(hidden), ReLU(), Linear(hidden, d_out))``."""
    return {"0.weight": _tensor(rng, hidden, d_in, dtype=dtype), "0.bias": _tensor(rng, hidden, dtype=dtype),
            "1.weight": 1 + _tensor(rng, hidden, dtype=dtype, scale=0.1), "1.bias": _tensor(rng, hidden, dtype=dtype, scale=0.1),
            "1.running_mean": _tensor(rng, hidden, dtype=dtype),
            "1.running_var": torch.from_numpy(rng.uniform(0.5, 2.0, hidden)).to(dtype),
            "1.num_batches_tracked": torch.tensor(int(rng.integers(1, 500)), dtype=torch.int64),
            "3.weight": _tensor(rng, d_out, hidden, dtype=dtype), "3.bias": _tensor(rng, d_out, dtype=dtype)}


def _conv_state(rng: np.random.Generator) -> dict[str, torch.Tensor]:
    return {"conv.weight": _tensor(rng, 4, 1, 3, 3), "bn.weight": 1 + _tensor(rng, 4, scale=0.1),
            "bn.bias": _tensor(rng, 4, scale=0.1), "bn.running_mean": _tensor(rng, 4),
            "bn.running_var": torch.from_numpy(rng.uniform(0.5, 2.0, 4)).float(),
            "bn.num_batches_tracked": torch.tensor(int(rng.integers(1, 500))), "fc.weight": _tensor(rng, 10, 36)}


def _avg_cases(rng: np.random.Generator) -> list[Case]:
    two = [_bn_state(rng) for _ in range(2)]
    three = [_bn_state(rng) for _ in range(3)]
    plain = [{"w": _tensor(rng, 3, 2), "b": _tensor(rng, 2)} for _ in range(2)]
    shuffled = dict(reversed(list(_bn_state(rng).items())))
    small = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    cases = [
        Case("two plain state dicts, equal weights", (plain,)),
        Case("two models with BatchNorm: num_batches_tracked stays an integer (the first's)", (two,)),
        Case("three models, weights [1, 1, 2] (normalise them)", (three, [1, 1, 2])),
        Case("weights that already sum to one", (three, [0.25, 0.25, 0.5])),
        Case("weights [3, 1]", ([small, {"w": torch.tensor([5.0, 6.0]), "n": torch.tensor(7)}], [3, 1])),
        Case("a weight of 0 drops that model", (three, np.array([0.0, 1.0, 1.0]))),
        Case("a single state dict: a copy of itself", ([two[0]],)),
        Case("a conv net with BatchNorm2d", ([_conv_state(rng) for _ in range(4)],)),
        Case("float64 tensors stay float64", ([_bn_state(rng, dtype=torch.float64) for _ in range(2)], [0.7, 0.3])),
        Case("float16 tensors stay float16", ([_bn_state(rng, dtype=torch.float16) for _ in range(2)],)),
        Case("the same keys in another order", ([_bn_state(rng), shuffled],)),
        Case("an empty list: ValueError", ([],), raises=ValueError),
        Case("a key missing from the second state dict: ValueError",
             ([plain[0], {"w": plain[1]["w"]}],), raises=ValueError),
        Case("different keys: ValueError", ([{"w": torch.ones(2)}, {"v": torch.ones(2)}],), raises=ValueError),
        Case("shapes (2, 3) and (3,) broadcast, but they are different models: ValueError",
             ([{"w": torch.ones(2, 3)}, {"w": torch.ones(3)}],), raises=ValueError),
        Case("shapes (4,) and (5,): ValueError", ([{"w": torch.ones(4)}, {"w": torch.ones(5)}],), raises=ValueError),
        Case("a negative weight: ValueError", (plain, [1.0, -1.0]), raises=ValueError),
        Case("all weights zero: ValueError", (plain, [0.0, 0.0]), raises=ValueError),
        Case("one weight for two state dicts: ValueError", (plain, [1.0]), raises=ValueError),
    ]
    for i in range(3):
        m = int(rng.integers(2, 6))
        d_in, hidden = int(rng.integers(2, 8)), int(rng.integers(2, 8))
        sds = [_bn_state(rng, d_in, hidden) for _ in range(m)]
        w = np.round(rng.uniform(0.1, 3, m), 2)
        cases.append(Case(f"random #{i + 1} ({m} models with BatchNorm, weights {w.tolist()})", (sds, w)))
    return cases


register(Exercise(
    id="ensemble.average_weights",
    reference=average_weights,
    make_cases=_avg_cases,
    compare=_weights_compare,
    hint="ValueError for an empty list, for a state dict whose keys differ from the first's (compare the key "
         "SETS) or whose tensor has another shape (check it: torch broadcasts (2, 3) with (3,) silently), and "
         "for bad weights (not one per state dict, negative, all zero). Normalise the weights to sum to one "
         "(default: equal). For each key: a floating-point tensor becomes sum_i w_i * sd_i[key] in its own "
         "dtype; an integer tensor (BatchNorm's num_batches_tracked) is copied from the first state dict. "
         "Build a NEW dict: do not add into the first state dict's tensors.",
    section="weight-averaging",
))
