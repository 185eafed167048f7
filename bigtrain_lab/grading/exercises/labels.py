"""Exercises of the labelling topic (lesson 07).

``labels.majority_vote``: the reference is ``scipy.stats.mode`` over the given labels (``-1`` as NaN,
``nan_policy="omit"``), which returns the smallest of tied modes; an item with no label gets -1.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from bigtrain_lab.grading.compare import array
from bigtrain_lab.grading.registry import Case, Exercise, register


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
    id="labels.majority_vote",
    reference=_majority_vote,
    make_cases=_vote_cases,
    compare=array("the voted labels", integer=True),
    hint="For each row (item) count the labels that are not -1 (np.bincount on the row without the -1s); "
         "the winner is the most frequent, the SMALLEST label among ties (np.argmax returns the first "
         "maximum); a row with no labels at all gets -1. Return one integer per item.",
    section="crowd-labels",
))
