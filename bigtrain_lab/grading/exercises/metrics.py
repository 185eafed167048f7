"""Exercises of the metrics lesson; references are scikit-learn's own metrics."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    roc_auc_score,
)

from bigtrain_lab.grading.compare import integers, real, reals
from bigtrain_lab.grading.registry import Case, Exercise, register

# ---- references -------------------------------------------------------------------------------

def _confusion_counts(y_true, y_pred) -> tuple[int, int, int, int]:
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return int(tp), int(fp), int(fn), int(tn)


def _precision_recall_f1(y_true, y_pred) -> tuple[float, float, float]:
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", pos_label=1,
                                                 labels=[0, 1], zero_division=0)
    return float(p), float(r), float(f)


def _roc_auc(y_true, y_score) -> float:
    if len(np.unique(np.asarray(y_true))) < 2:
        raise ValueError("ROC AUC is undefined when only one class is present in y_true")
    return float(roc_auc_score(y_true, y_score))


def _regression_errors(y_true, y_pred) -> tuple[float, float]:
    return math.sqrt(mean_squared_error(y_true, y_pred)), float(mean_absolute_error(y_true, y_pred))


def _expected_calibration_error(y_true, y_prob, n_bins: int = 10) -> float:
    # The checker's own copy of the definition in the exercise text (no library implements ECE).
    y_true = np.asarray(y_true, dtype=float)
    y_prob = np.asarray(y_prob, dtype=float)
    bins = np.minimum(np.floor(y_prob * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(y_true[in_bin].mean() - y_prob[in_bin].mean())
    return float(ece)


# ---- case generators ----------------------------------------------------------------------------

def _random_labels(rng: np.random.Generator, n: int, p: float | None = None) -> np.ndarray:
    p = rng.uniform(0.05, 0.95) if p is None else p
    return (rng.random(n) < p).astype(np.int64)


def _label_pair_cases(rng: np.random.Generator) -> list[Case]:
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    cases = [
        Case("small example", (y, np.array([1, 0, 0, 1, 1, 0, 1, 0]))),
        Case("perfect predictions", (y, y.copy())),
        Case("every prediction wrong", (y, 1 - y)),
        Case("model predicts no positives (zero denominator)", (y, np.zeros(8, dtype=np.int64))),
        Case("no positives in y_true", (np.zeros(6, dtype=np.int64), np.array([0, 1, 0, 0, 1, 0]))),
        Case("all positives everywhere", (np.ones(5, dtype=np.int64), np.ones(5, dtype=np.int64))),
        Case("a single sample", (np.array([1]), np.array([0]))),
        Case("plain Python lists", ([0, 1, 1, 0, 1], [0, 1, 0, 0, 1])),
        Case("imbalanced 1:20", (_random_labels(rng, 420, 0.05), _random_labels(rng, 420, 0.1))),
    ]
    for i in range(12):
        n = int(rng.integers(2, 300))
        cases.append(Case(f"random #{i + 1} (n={n})", (_random_labels(rng, n), _random_labels(rng, n))))
    return cases


def _roc_cases(rng: np.random.Generator) -> list[Case]:
    y = np.array([0, 0, 1, 1])
    cases = [
        Case("sklearn's doc example", (y, np.array([0.1, 0.4, 0.35, 0.8]))),
        Case("perfect ranking", (y, np.array([0.1, 0.2, 0.8, 0.9]))),
        Case("reversed ranking", (y, np.array([0.9, 0.8, 0.2, 0.1]))),
        Case("all scores tied", (np.array([0, 1, 0, 1, 1]), np.full(5, 0.5))),
        Case("ties across classes", (np.array([0, 1, 1, 0, 1, 0]), np.array([0.3, 0.3, 0.7, 0.7, 0.5, 0.1]))),
        Case("raw logits (not probabilities)", (np.array([1, 0, 1, 0, 0]), np.array([2.5, -1.0, 0.3, 0.3, -7.2]))),
        Case("plain Python lists", ([1, 0, 0, 1], [0.9, 0.1, 0.6, 0.4])),
        Case("only one class present", (np.ones(4, dtype=np.int64), np.array([0.1, 0.2, 0.3, 0.4])),
             raises=ValueError),
        Case("only negatives present", (np.zeros(3, dtype=np.int64), np.array([0.5, 0.2, 0.9])),
             raises=ValueError),
    ]
    for i in range(12):
        n = int(rng.integers(4, 400))
        y_true = _random_labels(rng, n)
        y_true[:2] = [0, 1]  # both classes present
        if i % 3 == 0:  # heavily tied, discretised scores
            score = rng.integers(0, 5, n) / 4.0
        else:
            score = np.clip(0.5 * y_true + rng.normal(0.25, 0.3, n), 0, 1)
        cases.append(Case(f"random #{i + 1} (n={n}{', tied scores' if i % 3 == 0 else ''})", (y_true, score)))
    return cases


def _regression_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("small example", (np.array([3.0, -0.5, 2.0, 7.0]), np.array([2.5, 0.0, 2.0, 8.0]))),
        Case("perfect predictions", (np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))),
        Case("one outlier", (np.zeros(10), np.r_[np.zeros(9), 100.0])),
        Case("errors of both signs cancel in the mean", (np.array([0.0, 0.0]), np.array([1.0, -1.0]))),
        Case("a single sample", (np.array([2.0]), np.array([-1.0]))),
        Case("plain Python lists", ([1, 2, 3, 4], [2, 2, 2, 2])),
    ]
    for i in range(10):
        n = int(rng.integers(1, 500))
        y = rng.normal(0, 10, n)
        cases.append(Case(f"random #{i + 1} (n={n})", (y, y + rng.standard_t(3, n))))
    return cases


def _ece_cases(rng: np.random.Generator) -> list[Case]:
    y = np.array([1, 0, 1, 1, 0])
    p = np.array([0.9, 0.1, 0.8, 0.35, 0.6])
    cases = [
        Case("small example", (y, p)),
        Case("probability exactly 1.0 goes to the last bin",
             (np.array([0, 1, 1, 0]), np.array([1.0, 0.95, 0.9, 0.0]))),
        Case("perfectly calibrated bins", (np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5]))),
        Case("n_bins=5", (y, p), {"n_bins": 5}),
        Case("n_bins=1 (one bin: |mean(y) - mean(p)|)", (y, p), {"n_bins": 1}),
        Case("all predictions in one bin", (np.array([1, 0, 0, 0]), np.array([0.71, 0.72, 0.75, 0.79]))),
        Case("plain Python lists", ([1, 0, 1], [0.2, 0.4, 0.99])),
    ]
    for i in range(10):
        n = int(rng.integers(1, 600))
        prob = rng.beta(0.7, 0.7, n)
        truth = (rng.random(n) < prob ** rng.uniform(0.5, 2.0)).astype(np.int64)
        kwargs = {"n_bins": int(rng.choice([5, 10, 15, 20]))} if i % 2 else {}
        cases.append(Case(f"random #{i + 1} (n={n})", (truth, prob), kwargs))
    return cases


register(Exercise(
    id="metrics.confusion_counts",
    reference=_confusion_counts,
    make_cases=_label_pair_cases,
    compare=integers(("tp", "fp", "fn", "tn")),
    hint="tp: predicted 1 and truly 1; fp: predicted 1 but truly 0; fn: predicted 0 but truly 1; "
         "tn: predicted 0 and truly 0. Return them in the order (tp, fp, fn, tn).",
    section="confusion-matrix",
))

register(Exercise(
    id="metrics.precision_recall_f1",
    reference=_precision_recall_f1,
    make_cases=_label_pair_cases,
    compare=reals(("precision", "recall", "f1"), rtol=1e-9, atol=1e-12),
    hint="precision = tp / (tp + fp) (of what you flagged, how much was right); recall = tp / (tp + fn) "
         "(of what was there, how much you found); F1 is their HARMONIC mean; a 0/0 gives 0.0 "
         "(sklearn's zero_division=0).",
    section="precision-recall-f1",
))

register(Exercise(
    id="metrics.roc_auc",
    reference=_roc_auc,
    make_cases=_roc_cases,
    compare=real(rtol=1e-9, atol=1e-12),
    hint="ROC AUC is the probability that a random positive gets a higher score than a random negative, "
         "counting ties as 1/2 (Mann-Whitney U / (n_pos * n_neg)). Use the scores, never thresholded "
         "labels; raise ValueError when y_true has only one class.",
    section="roc-and-pr-curves",
))

register(Exercise(
    id="metrics.regression_errors",
    reference=_regression_errors,
    make_cases=_regression_cases,
    compare=reals(("rmse", "mae"), rtol=1e-9, atol=1e-12),
    hint="RMSE = sqrt(mean((y_pred - y_true)**2)); MAE = mean(|y_pred - y_true|). Square (or take |.|) "
         "BEFORE averaging, and take the square root after.",
    section="regression-errors",
))

register(Exercise(
    id="metrics.expected_calibration_error",
    reference=_expected_calibration_error,
    make_cases=_ece_cases,
    compare=real(rtol=1e-9, atol=1e-12),
    hint="bin = min(floor(p * n_bins), n_bins - 1); ECE = sum over NON-EMPTY bins of "
         "(bin size / N) * |mean(y_true in bin) - mean(y_prob in bin)| (a weighted, not a plain, mean).",
    section="calibration",
))
