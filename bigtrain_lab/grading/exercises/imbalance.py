"""Exercises of the class-imbalance topic (lesson 07).

``imbalance.balanced_class_weights``: the reference is ``sklearn.utils.class_weight.compute_class_weight(
"balanced", ...)``, ``n_samples / (n_classes * count)`` per class present, in sorted class order.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from bigtrain_lab.grading.compare import array
from bigtrain_lab.grading.registry import Case, Exercise, register


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
    id="imbalance.balanced_class_weights",
    reference=_balanced_class_weights,
    make_cases=_weights_cases,
    compare=array("the weights"),
    hint="One weight per class in np.unique(y) order (sorted): n_samples / (n_classes * count(class)), "
         "with n_classes = the number of DISTINCT labels present. Return an array, not a dict, and not "
         "indexed by label value (labels need not be 0..K-1).",
    section="class-weights",
))
