"""Exercises of the data lesson (imbalance, preprocessing, labelling); references are library code:

* ``data.balanced_class_weights``: ``sklearn.utils.class_weight.compute_class_weight("balanced", ...)``;
* ``data.standardize``: ``sklearn.preprocessing.StandardScaler`` fitted on the training split;
* ``data.majority_vote``: ``scipy.stats.mode`` over the given labels (``-1`` as NaN,
  ``nan_policy="omit"``), which returns the smallest of tied modes; an item with no label gets -1.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_class_weight

from bigtrain_lab.grading.registry import Case, Comparator, Exercise, register
from bigtrain_lab.grading.sandbox import describe

LESSON_IMBALANCE = "notebooks/07_data_imbalance_labels.ipynb"


# ---- comparators --------------------------------------------------------------------------------

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


def _array(what: str, *, rtol: float = 1e-9, atol: float = 1e-12, integer: bool = False) -> Comparator:
    def compare(got: Any, expected: np.ndarray) -> str | None:
        return _array_reason(got, np.asarray(expected), what, rtol=rtol, atol=atol, integer=integer)
    return compare


def _array_pair(names: tuple[str, str], *, rtol: float = 1e-9, atol: float = 1e-9) -> Comparator:
    def compare(got: Any, expected: tuple[np.ndarray, np.ndarray]) -> str | None:
        if not isinstance(got, tuple | list) or len(got) != 2:
            return f"expected a tuple ({', '.join(names)}), got {type(got).__name__}: {describe(got, 80)}"
        for name, value, exp in zip(names, got, expected, strict=True):
            if reason := _array_reason(value, exp, name, rtol=rtol, atol=atol):
                return reason
        return None
    return compare


# ---- data.balanced_class_weights ----------------------------------------------------------------

def _balanced_class_weights(y) -> np.ndarray:
    y = np.asarray(y)
    return compute_class_weight("balanced", classes=np.unique(y), y=y)


def _weights_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("binary 1:20", (np.r_[np.zeros(200, int), np.ones(10, int)],)),
        Case("three classes", (np.array([0, 0, 0, 1, 1, 2]),)),
        Case("already balanced: all weights 1", (np.array([0, 1, 2, 0, 1, 2]),)),
        Case("labels that are not 0..K-1 (2, 5, 9)", (np.array([5, 9, 9, 2, 2, 2, 9]),)),
        Case("a single class", (np.array([3, 3, 3]),)),
        Case("string labels", (np.array(["cat", "dog", "dog", "dog", "bird"]),)),
        Case("plain Python list", ([1, 0, 0, 0],)),
        Case("unsorted input", (np.array([2, 0, 2, 1, 2, 2]),)),
    ]
    for i in range(10):
        k = int(rng.integers(2, 8))
        p = rng.dirichlet(np.full(k, 0.5))
        n = int(rng.integers(k, 500))
        y = rng.choice(k, n, p=p) * int(rng.integers(1, 4))
        cases.append(Case(f"random #{i + 1} (n={n}, {len(np.unique(y))} classes)", (y,)))
    return cases


register(Exercise(
    id="data.balanced_class_weights",
    title="Balanced class weights",
    signature="balanced_class_weights(y) -> np.ndarray",
    reference=_balanced_class_weights,
    make_cases=_weights_cases,
    compare=_array("the weights"),
    hint="One weight per class in np.unique(y) order (sorted): n_samples / (n_classes * count(class)), "
         "with n_classes = the number of DISTINCT labels present. Return an array, not a dict, and not "
         "indexed by label value (labels need not be 0..K-1).",
    lesson=f"{LESSON_IMBALANCE}#class-weights",
))


# ---- data.standardize -----------------------------------------------------------------------------

def _standardize(train, test) -> tuple[np.ndarray, np.ndarray]:
    scaler = StandardScaler().fit(np.asarray(train, dtype=np.float64))
    return scaler.transform(np.asarray(train, dtype=np.float64)), scaler.transform(np.asarray(test, np.float64))


def _standardize_cases(rng: np.random.Generator) -> list[Case]:
    def table(n, d, shift=0.0):
        return rng.normal(rng.uniform(-5, 5, d), rng.uniform(0.1, 10, d), size=(n, d)) + shift

    const = table(30, 4)
    const[:, 2] = 3.0
    cases = [
        Case("small example", (np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 60.0]]), np.array([[2.0, 30.0]]))),
        Case("test shifted from train: use the TRAIN statistics", (table(50, 3), table(20, 3, shift=4.0))),
        Case("a constant column (std 0) must not give NaN", (const, table(10, 4))),
        Case("a single test row", (table(40, 5), table(1, 5))),
        Case("one feature", (table(25, 1), table(8, 1))),
        Case("integer input", (rng.integers(0, 17, (30, 6)), rng.integers(0, 17, (5, 6)))),
        Case("two training rows (population std, ddof=0)", (np.array([[0.0, 1.0], [2.0, 5.0]]),
                                                             np.array([[1.0, 1.0]]))),
        Case("very different scales per column", (table(60, 3) * np.array([1e-3, 1.0, 1e4]), table(6, 3))),
    ]
    for i in range(8):
        n, m, d = int(rng.integers(3, 300)), int(rng.integers(1, 100)), int(rng.integers(1, 12))
        cases.append(Case(f"random #{i + 1} (train {n} x {d}, test {m} x {d})", (table(n, d), table(m, d))))
    return cases


register(Exercise(
    id="data.standardize",
    title="Standardize with training statistics",
    signature="standardize(train, test) -> (train_z, test_z)",
    reference=_standardize,
    make_cases=_standardize_cases,
    compare=_array_pair(("train_z", "test_z")),
    hint="mean and std per COLUMN (axis=0) computed on train ONLY, population std (ddof=0, numpy's "
         "default); apply the same mean and std to both splits; where a column's std is 0 divide by 1 "
         "instead (StandardScaler's rule), so a constant training column becomes 0 rather than NaN.",
    lesson=f"{LESSON_IMBALANCE}#preprocessing-and-leakage",
))


# ---- data.majority_vote ---------------------------------------------------------------------------

def _majority_vote(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    as_float = np.where(labels == -1, np.nan, labels.astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mode = stats.mode(as_float, axis=1, nan_policy="omit", keepdims=False).mode
    return np.where(np.isnan(mode), -1, mode).astype(np.int64)


def _votes(rng: np.random.Generator, n: int, m: int, k: int, missing: float) -> np.ndarray:
    truth = rng.integers(0, k, n)
    votes = np.where(rng.random((n, m)) < 0.7, truth[:, None], rng.integers(0, k, (n, m)))
    votes[rng.random((n, m)) < missing] = -1
    return votes


def _vote_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("three annotators agree or 2-to-1", (np.array([[1, 1, 0], [2, 0, 2], [0, 0, 0]]),)),
        Case("a tie goes to the smallest label", (np.array([[3, 1], [0, 2], [1, 1]]),)),
        Case("missing labels (-1) are not votes", (np.array([[-1, 2, 2], [1, -1, 0], [-1, -1, 4]]),)),
        Case("an item nobody labelled gets -1", (np.array([[-1, -1, -1], [0, 1, 1]]),)),
        Case("-1 must not win even when most labels are missing", (np.array([[-1, -1, 5, -1]]),)),
        Case("one annotator", (np.array([[3], [0], [-1]]),)),
        Case("three-way tie", (np.array([[2, 0, 1]]),)),
        Case("large label ids", (np.array([[17, 17, 3], [9, 3, 9]]),)),
        Case("plain Python lists", ([[0, 1, 1], [2, 2, -1]],)),
    ]
    for i in range(8):
        n, m, k = int(rng.integers(1, 200)), int(rng.integers(1, 9)), int(rng.integers(2, 6))
        missing = float(rng.choice([0.0, 0.3, 0.6]))
        cases.append(Case(f"random #{i + 1} ({n} items, {m} annotators, {k} classes, {missing:.0%} missing)",
                          (_votes(rng, n, m, k, missing),)))
    return cases


register(Exercise(
    id="data.majority_vote",
    title="Majority vote over crowd labels",
    signature="majority_vote(labels: np.ndarray) -> np.ndarray",
    reference=_majority_vote,
    make_cases=_vote_cases,
    compare=_array("the voted labels", integer=True),
    hint="For each row (item) count the labels that are not -1 (np.bincount on the row without the -1s); "
         "the winner is the most frequent, the SMALLEST label among ties (np.argmax returns the first "
         "maximum); a row with no labels at all gets -1. Return one integer per item.",
    lesson=f"{LESSON_IMBALANCE}#crowd-labels",
))


