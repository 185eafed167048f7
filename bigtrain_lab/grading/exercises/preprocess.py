"""Exercises of the preprocessing topic (lesson 07).

``preprocess.standardize``: the reference is ``sklearn.preprocessing.StandardScaler`` fitted on the training
split only, then applied to both splits (fitting on everything leaks the test set's statistics).
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler

from bigtrain_lab.grading.compare import array_pair
from bigtrain_lab.grading.registry import Case, Exercise, register


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
    id="preprocess.standardize",
    reference=_standardize,
    make_cases=_standardize_cases,
    compare=array_pair(("train_z", "test_z")),
    hint="mean and std per COLUMN (axis=0) computed on train ONLY, population std (ddof=0, numpy's "
         "default); apply the same mean and std to both splits; where a column's std is 0 divide by 1 "
         "instead (StandardScaler's rule), so a constant training column becomes 0 rather than NaN.",
    section="preprocessing-and-leakage",
))
