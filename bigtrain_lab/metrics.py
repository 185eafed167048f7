"""Evaluation metrics for the lesson ``notebooks/01_metrics.ipynb``, written out so they can be read.

Binary classification metrics take ``y_true`` with labels in {0, 1} (1 is the positive class) and either
hard predictions ``y_pred`` in {0, 1}, real-valued scores ``y_score`` (any monotone score: probabilities,
logits, margins) or probabilities ``y_prob`` in [0, 1]. Every function checks its input and raises a
``ValueError`` that names the offending argument. scikit-learn is the reference the unit tests compare
against; its conventions are kept (zero_division=0, "predict positive when score >= threshold").

The module also holds the wrong versions that circulate in interview answers (``swapped_precision_recall``,
``f1_as_arithmetic_mean``), so that the lesson can run them and refute them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

__all__ = [
    "ReliabilityCurve",
    "best_threshold",
    "confusion_counts",
    "expected_calibration_error",
    "f1_as_arithmetic_mean",
    "fit_temperature",
    "precision_recall_f1",
    "regression_errors",
    "reliability_curve",
    "roc_auc",
    "swapped_precision_recall",
    "threshold_metrics",
    "top_label_ece",
]

THRESHOLD_CRITERIA = ("f1", "recall", "youden")


# ---- input checks -------------------------------------------------------------------------------

def _as_1d(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (n_samples,), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    return array


def _same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} have different lengths: {len(a)} != {len(b)}")


def _as_binary_labels(values: ArrayLike, name: str) -> np.ndarray:
    """Labels as an int64 array of 0 and 1; anything else (2, -1, 0.5, "yes", NaN) is a ValueError."""
    array = _as_1d(values, name)
    if array.dtype == bool:
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must hold binary labels 0 and 1, got dtype {array.dtype}")
    bad = np.unique(array[(array != 0) & (array != 1)])
    if bad.size:
        raise ValueError(f"{name} must hold binary labels 0 and 1 only, got also {bad[:5].tolist()}")
    return array.astype(np.int64)


def _as_reals(values: ArrayLike, name: str) -> np.ndarray:
    array = _as_1d(values, name)
    try:
        array = array.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}") from None
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN")
    return array


def _as_probabilities(values: ArrayLike, name: str) -> np.ndarray:
    array = _as_reals(values, name)
    if array.min() < 0 or array.max() > 1:
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values in "
                         f"[{array.min():.4g}, {array.max():.4g}]")
    return array


def _labels_and_predictions(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    truth, pred = _as_binary_labels(y_true, "y_true"), _as_binary_labels(y_pred, "y_pred")
    _same_length(truth, pred, "y_true", "y_pred")
    return truth, pred


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, and 0.0 for 0 / 0 (scikit-learn's ``zero_division=0``)."""
    return float(numerator / denominator) if denominator else 0.0


# ---- from hard predictions ----------------------------------------------------------------------

def confusion_counts(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[int, int, int, int]:
    """Counts of the binary confusion matrix.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels in {0, 1}; 1 is the positive class.

    Returns
    -------
    (tp, fp, fn, tn) : tuple of int
        True positives (predicted 1, truly 1), false positives (predicted 1, truly 0), false negatives
        (predicted 0, truly 1) and true negatives. Note the order differs from
        ``sklearn.metrics.confusion_matrix(...).ravel()``, which gives (tn, fp, fn, tp).
    """
    truth, pred = _labels_and_predictions(y_true, y_pred)
    tp = int(np.sum((pred == 1) & (truth == 1)))
    fp = int(np.sum((pred == 1) & (truth == 0)))
    fn = int(np.sum((pred == 0) & (truth == 1)))
    return tp, fp, fn, len(truth) - tp - fp - fn


def precision_recall_f1(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[float, float, float]:
    """Precision, recall and F1 of the positive class, with 0 / 0 taken as 0 (like scikit-learn).

    precision = tp / (tp + fp): of the samples flagged positive, the fraction that are positive.
    recall = tp / (tp + fn): of the positive samples, the fraction that were flagged.
    F1 = 2 * precision * recall / (precision + recall), their harmonic mean, = 2tp / (2tp + fp + fn).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels in {0, 1}.

    Returns
    -------
    (precision, recall, f1) : tuple of float, each in [0, 1]
    """
    tp, fp, fn, _ = confusion_counts(y_true, y_pred)
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def swapped_precision_recall(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[float, float]:
    """WRONG on purpose: the swapped definitions that circulate online, kept to be refuted.

    Returns (tp / (tp + fn), tp / (tp + fp)) labelled as (precision, recall): that is (recall, precision).
    """
    tp, fp, fn, _ = confusion_counts(y_true, y_pred)
    return _ratio(tp, tp + fn), _ratio(tp, tp + fp)


def f1_as_arithmetic_mean(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """WRONG on purpose: F1 taken as the plain mean (p + r) / 2 instead of the harmonic mean."""
    precision, recall, _ = precision_recall_f1(y_true, y_pred)
    return (precision + recall) / 2


# ---- from scores --------------------------------------------------------------------------------

def roc_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve, from the ranks of the scores (the Mann-Whitney U statistic).

    AUC = P(score of a random positive > score of a random negative), ties counting 1/2:
    with average ranks r (1-based) over all samples, AUC = (sum of r over positives - n_pos (n_pos + 1) / 2)
    / (n_pos * n_neg). Equal to ``sklearn.metrics.roc_auc_score``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels in {0, 1}; both classes must be present.
    y_score : array-like of shape (n_samples,)
        Scores, higher meaning "more positive" (probabilities, logits, ...). Hard 0/1 predictions are
        accepted but give the AUC of a single threshold, which is not the model's AUC.

    Returns
    -------
    float in [0, 1]; 0.5 is chance level.
    """
    truth = _as_binary_labels(y_true, "y_true")
    score = _as_reals(y_score, "y_score")
    _same_length(truth, score, "y_true", "y_score")
    n_pos = int(truth.sum())
    n_neg = len(truth) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC is undefined when only one class is present in y_true")
    ranks = rankdata(score)  # ties get their average rank: a tied pair counts 1/2
    u_statistic = ranks[truth == 1].sum() - n_pos * (n_pos + 1) / 2
    return float(u_statistic / (n_pos * n_neg))


def _counts_per_threshold(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                          np.ndarray]:
    """Distinct thresholds (descending) and the tp, fp counts when predicting ``score >= threshold``."""
    order = np.argsort(-score, kind="mergesort")
    score, truth = score[order], truth[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]  # end of each tied run
    tp = np.cumsum(truth)[last_of_run]
    fp = (last_of_run + 1) - tp
    return score[last_of_run], tp, fp


def threshold_metrics(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> dict[str, Any]:
    """Every count and rate at one decision threshold, predicting positive when ``score >= threshold``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels in {0, 1}.
    y_score : array-like of shape (n_samples,)
        Scores or probabilities.
    threshold : float
        Decision threshold, in the units of ``y_score``.

    Returns
    -------
    dict
        ``threshold``, ``tp``, ``fp``, ``fn``, ``tn`` (int) and ``precision``, ``recall``, ``f1``,
        ``fpr`` = fp / (fp + tn), ``tpr`` (= recall), ``accuracy`` (float, 0 / 0 taken as 0).
    """
    truth = _as_binary_labels(y_true, "y_true")
    score = _as_reals(y_score, "y_score")
    _same_length(truth, score, "y_true", "y_score")
    if not isinstance(threshold, int | float | np.number) or math.isnan(threshold):
        raise ValueError(f"threshold must be a real number, got {threshold!r}")
    pred = (score >= threshold).astype(np.int64)
    tp, fp, fn, tn = confusion_counts(truth, pred)
    precision, recall, f1 = precision_recall_f1(truth, pred)
    return {"threshold": float(threshold), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": precision, "recall": recall, "f1": f1, "fpr": _ratio(fp, fp + tn),
            "tpr": recall, "accuracy": (tp + tn) / len(truth)}


def best_threshold(y_true: ArrayLike, y_score: ArrayLike, criterion: str = "f1", *,
                   target_recall: float = 0.9) -> float:
    """The decision threshold that is best on the data given: pass the VALIDATION split, never the test.

    Only the distinct score values are candidates (metrics change only there); the rule is
    "predict positive when score >= threshold". Ties between candidates go to the highest threshold.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Validation labels in {0, 1}, both classes present.
    y_score : array-like of shape (n_samples,)
        Validation scores.
    criterion : {"f1", "recall", "youden"}
        ``"f1"``: maximise F1. ``"recall"``: the highest precision among thresholds whose recall is at
        least ``target_recall``. ``"youden"``: maximise TPR - FPR (Youden's J).
    target_recall : float in (0, 1]
        Used by ``criterion="recall"`` only.

    Returns
    -------
    float, one of the values in ``y_score``.
    """
    truth = _as_binary_labels(y_true, "y_true")
    score = _as_reals(y_score, "y_score")
    _same_length(truth, score, "y_true", "y_score")
    if criterion not in THRESHOLD_CRITERIA:
        raise ValueError(f"criterion must be one of {THRESHOLD_CRITERIA}, got {criterion!r}")
    n_pos = int(truth.sum())
    n_neg = len(truth) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("choosing a threshold needs both classes in y_true")
    thresholds, tp, fp = _counts_per_threshold(truth, score)
    fn = n_pos - tp
    if criterion == "f1":
        objective = 2 * tp / (2 * tp + fp + fn)
    elif criterion == "youden":
        objective = tp / n_pos - fp / n_neg
    else:
        if not 0 < target_recall <= 1:
            raise ValueError(f"target_recall must be in (0, 1], got {target_recall!r}")
        precision = tp / (tp + fp)  # tp + fp >= 1 at every candidate threshold
        objective = np.where(tp / n_pos >= target_recall, precision, -1.0)
    return float(thresholds[int(np.argmax(objective))])  # argmax: first, i.e. highest, threshold


# ---- calibration ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReliabilityCurve:
    """Per-bin statistics of a reliability diagram; every array has shape (n_bins,).

    ``confidence`` is the mean predicted probability in the bin and ``accuracy`` the fraction of
    positives in it (both NaN for an empty bin); ``count`` the number of samples; ``edges`` has shape
    (n_bins + 1,).
    """

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    edges: np.ndarray

    @property
    def nonempty(self) -> np.ndarray:
        """Boolean mask of the bins that hold at least one sample."""
        return self.count > 0


def _check_n_bins(n_bins: int) -> None:
    if not isinstance(n_bins, int | np.integer) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")


def reliability_curve(y_true: ArrayLike, y_prob: ArrayLike, n_bins: int = 10) -> ReliabilityCurve:
    """Bin predicted probabilities into ``n_bins`` equal-width bins on [0, 1].

    A sample goes to bin ``min(floor(p * n_bins), n_bins - 1)``, so p = 1.0 lands in the last bin.
    Over the non-empty bins this equals ``sklearn.calibration.calibration_curve(strategy="uniform")``,
    except for a probability exactly on an inner bin edge, which scikit-learn puts in the lower bin.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels in {0, 1}.
    y_prob : array-like of shape (n_samples,)
        Predicted probabilities of class 1, in [0, 1].
    n_bins : int
        Number of equal-width bins.
    """
    _check_n_bins(n_bins)
    truth = _as_binary_labels(y_true, "y_true")
    prob = _as_probabilities(y_prob, "y_prob")
    _same_length(truth, prob, "y_true", "y_prob")
    bins = np.minimum(np.floor(prob * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(bins, weights=prob, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=truth, minlength=n_bins) / count
    return ReliabilityCurve(confidence=confidence, accuracy=accuracy, count=count,
                            edges=np.linspace(0.0, 1.0, n_bins + 1))


def expected_calibration_error(y_true: ArrayLike, y_prob: ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error (ECE) with ``n_bins`` equal-width bins.

    ECE = sum over non-empty bins b of (n_b / N) * |accuracy_b - confidence_b|, where accuracy_b is the
    fraction of positives and confidence_b the mean predicted probability in bin b (binning as in
    ``reliability_curve``). 0 is perfectly calibrated; the unit is probability.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Labels in {0, 1}.
    y_prob : array-like of shape (n_samples,)
        Predicted probabilities of class 1, in [0, 1].
    n_bins : int
        Number of equal-width bins.
    """
    curve = reliability_curve(y_true, y_prob, n_bins)
    used = curve.nonempty
    weights = curve.count[used] / curve.count.sum()
    return float(np.sum(weights * np.abs(curve.accuracy[used] - curve.confidence[used])))


def _as_probability_matrix(y_prob: ArrayLike, name: str) -> np.ndarray:
    """(n, K) class probabilities; a 1-D array is read as P(class 1) of a binary problem: [1 - p, p]."""
    array = np.asarray(y_prob)
    if array.ndim == 1:
        p = _as_probabilities(array, name)
        return np.column_stack([1.0 - p, p])
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n_samples,) or (n_samples, n_classes >= 2), "
                         f"got shape {array.shape}")
    matrix = _as_probabilities(array.ravel(), name).reshape(array.shape)
    if not np.allclose(matrix.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError(f"the rows of {name} must sum to 1 (class probabilities)")
    return matrix


def top_label_ece(y_true: ArrayLike, y_prob: ArrayLike, n_bins: int = 10) -> float:
    """Top-label expected calibration error: the ECE of the model's confidence in its own prediction.

    confidence = max_k p_k (the predicted class's probability) and correct = [argmax_k p_k == y]; then
    ECE = sum over non-empty equal-width bins b of confidence of (n_b / N) * |accuracy_b - confidence_b|.
    This is the ECE of Guo et al. (2017) and of most deep-learning papers. It differs from
    ``expected_calibration_error`` (the positive-class ECE: bins of P(class 1) against the fraction of
    positives), even on binary problems, where the confidence max(p, 1 - p) lies in [0.5, 1].

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Class labels 0 .. K - 1.
    y_prob : array-like of shape (n_samples, K), or (n_samples,) for P(class 1) of a binary problem
        Predicted class probabilities, rows summing to 1.
    n_bins : int
        Number of equal-width bins on [0, 1].

    >>> round(top_label_ece([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), 6)  # (0.1 + 0.2 + 0.6) / 3
    0.3
    """
    _check_n_bins(n_bins)
    matrix = _as_probability_matrix(y_prob, "y_prob")
    labels = _as_1d(y_true, "y_true")
    _same_length(labels, matrix, "y_true", "y_prob")
    if not np.issubdtype(labels.dtype, np.number) or np.any(labels != np.round(labels)) or labels.min() < 0 \
            or labels.max() >= matrix.shape[1]:
        raise ValueError(f"y_true must hold class labels 0 .. {matrix.shape[1] - 1}")
    correct = (matrix.argmax(axis=1) == labels).astype(np.int64)
    return expected_calibration_error(correct, matrix.max(axis=1), n_bins)


def fit_temperature(logits: Any, y_true: Any, *, max_iter: int = 100) -> float:
    """The temperature T > 0 that minimises the cross-entropy of ``softmax(logits / T)`` on ``y_true``.

    Temperature scaling (Guo et al., 2017): one scalar, fitted on a held-out (validation) split by
    L-BFGS on log T. Dividing every logit by the same T > 0 keeps each row's argmax, so the accuracy is
    unchanged; T > 1 softens an over-confident model.

    Parameters
    ----------
    logits : array-like or torch.Tensor of shape (n_samples, K)
        The model's logits on the validation split.
    y_true : array-like or torch.Tensor of shape (n_samples,)
        Class labels 0 .. K - 1.
    max_iter : int
        L-BFGS iterations.
    """
    import torch  # the metrics module stays importable without torch's start-up cost
    import torch.nn.functional as F

    z = torch.as_tensor(logits).detach().double()
    y = torch.as_tensor(y_true).long()
    if z.ndim != 2 or z.shape[0] != y.shape[0] or z.shape[1] < 2:
        raise ValueError(f"logits must have shape (n_samples, K >= 2) matching y_true, got {tuple(z.shape)} "
                         f"and {tuple(y.shape)}")
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


# ---- regression ---------------------------------------------------------------------------------

def regression_errors(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[float, float]:
    """Root mean squared error and mean absolute error, in the units of ``y``.

    RMSE = sqrt(mean((y_pred - y_true)^2)) weighs large errors more (an outlier dominates it);
    MAE = mean(|y_pred - y_true|) weighs every unit of error the same. Always RMSE >= MAE.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Real targets and predictions.

    Returns
    -------
    (rmse, mae) : tuple of float
    """
    truth, pred = _as_reals(y_true, "y_true"), _as_reals(y_pred, "y_pred")
    _same_length(truth, pred, "y_true", "y_pred")
    error = pred - truth
    return float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error)))
