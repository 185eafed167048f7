"""bigtrain_lab.metrics against scikit-learn on random and edge cases, and its error messages."""

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from bigtrain_lab.metrics import (
    best_threshold,
    confusion_counts,
    expected_calibration_error,
    f1_as_arithmetic_mean,
    precision_recall_f1,
    regression_errors,
    reliability_curve,
    roc_auc,
    swapped_precision_recall,
    threshold_metrics,
)

SEEDS = range(25)


def random_labels(rng, n, p=None):
    p = rng.uniform(0.05, 0.95) if p is None else p
    return (rng.random(n) < p).astype(int)


def label_pairs():
    """Named edge cases, then random pairs (y_true, y_pred)."""
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    cases = {
        "small": (y, np.array([1, 0, 0, 1, 1, 0, 1, 0])),
        "perfect": (y, y.copy()),
        "all wrong": (y, 1 - y),
        "nothing predicted positive": (y, np.zeros(8, int)),
        "everything predicted positive": (y, np.ones(8, int)),
        "no positives in y_true": (np.zeros(6, int), np.array([0, 1, 0, 0, 1, 0])),
        "no positives anywhere": (np.zeros(4, int), np.zeros(4, int)),
        "all positives everywhere": (np.ones(5, int), np.ones(5, int)),
        "single sample": (np.array([1]), np.array([0])),
        "lists": ([0, 1, 1, 0, 1], [0, 1, 0, 0, 1]),
        "booleans": (np.array([True, False, True]), np.array([True, True, False])),
        "float labels": (np.array([1.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0])),
    }
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 400))
        cases[f"random {seed}"] = (random_labels(rng, n), random_labels(rng, n))
    return cases


LABEL_PAIRS = label_pairs()


def sklearn_prf(y_true, y_pred):
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", labels=[0, 1],
                                                 zero_division=0)
    return p, r, f


@pytest.mark.parametrize("name", LABEL_PAIRS)
def test_confusion_counts_matches_sklearn(name):
    y_true, y_pred = LABEL_PAIRS[name]
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    got = confusion_counts(y_true, y_pred)
    assert got == (tp, fp, fn, tn)
    assert all(type(v) is int for v in got)


@pytest.mark.parametrize("name", LABEL_PAIRS)
def test_precision_recall_f1_matches_sklearn(name):
    y_true, y_pred = LABEL_PAIRS[name]
    got = precision_recall_f1(y_true, y_pred)
    np.testing.assert_allclose(got, sklearn_prf(y_true, y_pred), rtol=1e-12, atol=0)
    assert got[2] == pytest.approx(f1_score(y_true, y_pred, zero_division=0), abs=1e-12)
    assert all(type(v) is float for v in got)


def test_zero_denominators_give_zero_like_sklearn():
    y = np.array([1, 0, 1, 0])
    assert precision_recall_f1(y, np.zeros(4, int)) == (0.0, 0.0, 0.0)  # nothing flagged
    assert precision_recall_f1(np.zeros(4, int), np.zeros(4, int)) == (0.0, 0.0, 0.0)
    assert precision_recall_f1(np.zeros(4, int), y) == (0.0, 0.0, 0.0)  # no positives at all


@pytest.mark.parametrize("name", LABEL_PAIRS)
def test_the_circulating_wrong_versions_are_wrong(name):
    y_true, y_pred = LABEL_PAIRS[name]
    p, r, f = sklearn_prf(y_true, y_pred)
    assert swapped_precision_recall(y_true, y_pred) == pytest.approx((r, p))
    assert f1_as_arithmetic_mean(y_true, y_pred) == pytest.approx((p + r) / 2)
    if p != r:  # the swap and the plain mean only show when precision and recall differ
        assert swapped_precision_recall(y_true, y_pred)[0] != pytest.approx(p)
        assert f1_as_arithmetic_mean(y_true, y_pred) > f  # AM > HM


def score_cases():
    y = np.array([0, 0, 1, 1])
    cases = {
        "sklearn doc example": (y, np.array([0.1, 0.4, 0.35, 0.8])),
        "perfect": (y, np.array([0.1, 0.2, 0.8, 0.9])),
        "reversed": (y, np.array([0.9, 0.8, 0.2, 0.1])),
        "constant scores": (np.array([0, 1, 0, 1, 1]), np.full(5, 0.5)),
        "ties across classes": (np.array([0, 1, 1, 0, 1, 0]), np.array([0.3, 0.3, 0.7, 0.7, 0.5, 0.1])),
        "logits": (np.array([1, 0, 1, 0, 0]), np.array([2.5, -1.0, 0.3, 0.3, -7.2])),
        "hard labels as scores": (np.array([1, 0, 1, 1, 0, 0]), np.array([1, 0, 0, 1, 1, 0])),
        "lists": ([1, 0, 0, 1], [0.9, 0.1, 0.6, 0.4]),
        "two samples": (np.array([1, 0]), np.array([0.2, 0.7])),
    }
    for seed in SEEDS:
        rng = np.random.default_rng(100 + seed)
        n = int(rng.integers(2, 500))
        y_true = random_labels(rng, n)
        y_true[:2] = [0, 1]
        kind = seed % 3
        if kind == 0:  # heavy ties: 3 to 5 distinct score values
            score = rng.integers(0, int(rng.integers(3, 6)), n) / 4.0
        elif kind == 1:
            score = np.clip(0.4 * y_true + rng.normal(0.3, 0.25, n), 0, 1)
        else:
            score = rng.normal(size=n) + y_true
        cases[f"random {seed}"] = (y_true, score)
    return cases


SCORE_CASES = score_cases()


@pytest.mark.parametrize("name", SCORE_CASES)
def test_roc_auc_matches_sklearn(name):
    y_true, y_score = SCORE_CASES[name]
    got = roc_auc(y_true, y_score)
    assert type(got) is float
    assert got == pytest.approx(roc_auc_score(y_true, y_score), rel=1e-10, abs=1e-12)


def test_roc_auc_of_constant_scores_is_one_half():
    assert roc_auc([0, 1, 1, 0, 1], [0.3] * 5) == 0.5


@pytest.mark.parametrize("name", [k for k in SCORE_CASES if k.startswith("random")])
def test_threshold_metrics_match_sklearn_curves(name):
    y_true, y_score = SCORE_CASES[name]
    fpr, tpr, roc_thresholds = roc_curve(y_true, y_score, drop_intermediate=False)
    for t, f, r in list(zip(roc_thresholds, fpr, tpr, strict=True))[1:]:  # [0] is +inf
        got = threshold_metrics(y_true, y_score, float(t))
        assert got["fpr"] == pytest.approx(f) and got["tpr"] == pytest.approx(r)
    precision, recall, pr_thresholds = precision_recall_curve(y_true, y_score)
    for t, p, r in zip(pr_thresholds, precision, recall, strict=False):
        got = threshold_metrics(y_true, y_score, float(t))
        assert got["precision"] == pytest.approx(p) and got["recall"] == pytest.approx(r)


@pytest.mark.parametrize("threshold", [-1.0, 0.0, 0.25, 0.5, 0.5000001, 0.75, 1.0, 2.0])
def test_threshold_metrics_against_sklearn_on_thresholded_predictions(threshold):
    rng = np.random.default_rng(7)
    y_true = random_labels(rng, 300, 0.3)
    y_score = np.round(rng.random(300), 2)
    y_score[:5] = 0.5  # ties exactly at a threshold: ">=" predicts them positive
    got = threshold_metrics(y_true, y_score, threshold)
    y_pred = (y_score >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    assert (got["tp"], got["fp"], got["fn"], got["tn"]) == (tp, fp, fn, tn)
    np.testing.assert_allclose([got["precision"], got["recall"], got["f1"]], sklearn_prf(y_true, y_pred))
    assert got["accuracy"] == pytest.approx((tp + tn) / 300)
    assert got["fpr"] == pytest.approx(fp / (fp + tn)) and got["tpr"] == got["recall"]
    assert got["threshold"] == threshold


def test_threshold_metrics_predicts_positive_at_equality():
    got = threshold_metrics([1, 0], [0.5, 0.5], 0.5)
    assert (got["tp"], got["fp"]) == (1, 1)


def brute_force_best(y_true, y_score, objective):
    best_t, best_v = None, -np.inf
    for t in sorted(set(np.asarray(y_score).tolist()), reverse=True):
        value = objective(threshold_metrics(y_true, y_score, t))
        if value > best_v + 1e-12:
            best_t, best_v = t, value
    return best_t


@pytest.mark.parametrize("name", [k for k in SCORE_CASES if k.startswith("random")])
def test_best_threshold_matches_a_brute_force_search(name):
    y_true, y_score = SCORE_CASES[name]
    assert best_threshold(y_true, y_score) == brute_force_best(y_true, y_score, lambda m: m["f1"])
    assert best_threshold(y_true, y_score, "youden") == brute_force_best(
        y_true, y_score, lambda m: m["tpr"] - m["fpr"])
    for target in (0.5, 0.8, 0.95, 1.0):
        t = best_threshold(y_true, y_score, "recall", target_recall=target)
        assert t == brute_force_best(
            y_true, y_score, lambda m, target=target: m["precision"] if m["recall"] >= target else -1.0)
        assert threshold_metrics(y_true, y_score, t)["recall"] >= target


def test_best_threshold_f1_agrees_with_sklearn_pr_curve():
    rng = np.random.default_rng(3)
    y_true = random_labels(rng, 1000, 0.1)
    y_score = np.clip(0.3 * y_true + rng.normal(0.3, 0.2, 1000), 0, 1)
    precision, recall, thresholds = precision_recall_curve(y_true, y_score)
    with np.errstate(invalid="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    assert best_threshold(y_true, y_score) == pytest.approx(thresholds[np.argmax(f1)])


def probability_cases():
    cases = {
        "p = 1.0 goes to the last bin": (np.array([0, 1, 1, 0]), np.array([1.0, 0.95, 0.9, 0.0])),
        "one bin used": (np.array([1, 0, 0, 0]), np.array([0.71, 0.72, 0.75, 0.79])),
        "constant": (np.array([0, 1, 0, 1]), np.full(4, 0.55)),
        "single sample": (np.array([1]), np.array([0.33])),
    }
    for seed in SEEDS:
        rng = np.random.default_rng(200 + seed)
        n = int(rng.integers(1, 800))
        prob = rng.beta(0.7, 0.7, n)
        truth = (rng.random(n) < prob ** rng.uniform(0.5, 2.0)).astype(int)
        cases[f"random {seed}"] = (truth, prob)
    return cases


PROBABILITY_CASES = probability_cases()


def ece_from_definition(y_true, y_prob, n_bins):
    y_true, y_prob = np.asarray(y_true, float), np.asarray(y_prob, float)
    bins = np.minimum(np.floor(y_prob * n_bins).astype(int), n_bins - 1)
    return sum((bins == b).mean() * abs(y_true[bins == b].mean() - y_prob[bins == b].mean())
               for b in np.unique(bins))


def away_from_edges(y_prob, n_bins):
    """True when no probability sits within 1e-9 of an inner bin edge (where sklearn bins differently)."""
    inner = np.linspace(0, 1, n_bins + 1)[1:-1]
    return inner.size == 0 or np.min(np.abs(np.asarray(y_prob)[:, None] - inner[None, :])) > 1e-9


@pytest.mark.parametrize("n_bins", [1, 5, 10, 15])
@pytest.mark.parametrize("name", PROBABILITY_CASES)
def test_reliability_curve_matches_sklearn_calibration_curve(name, n_bins):
    y_true, y_prob = PROBABILITY_CASES[name]
    curve = reliability_curve(y_true, y_prob, n_bins)
    assert curve.count.shape == curve.confidence.shape == curve.accuracy.shape == (n_bins,)
    assert curve.count.sum() == len(y_true)
    assert np.isnan(curve.accuracy[~curve.nonempty]).all()
    np.testing.assert_allclose(curve.edges, np.linspace(0, 1, n_bins + 1))
    if away_from_edges(y_prob, n_bins):
        prob_true, prob_pred = calibration_curve(y_true, y_prob, n_bins=n_bins, strategy="uniform")
        np.testing.assert_allclose(curve.accuracy[curve.nonempty], prob_true, rtol=1e-12)
        np.testing.assert_allclose(curve.confidence[curve.nonempty], prob_pred, rtol=1e-12)


@pytest.mark.parametrize("n_bins", [1, 5, 10, 20])
@pytest.mark.parametrize("name", PROBABILITY_CASES)
def test_ece_matches_its_definition_and_sklearn_bins(name, n_bins):
    y_true, y_prob = PROBABILITY_CASES[name]
    got = expected_calibration_error(y_true, y_prob, n_bins)
    assert type(got) is float and 0 <= got <= 1
    assert got == pytest.approx(ece_from_definition(y_true, y_prob, n_bins), rel=1e-10, abs=1e-14)
    if away_from_edges(y_prob, n_bins) and len(y_true) > 1:
        prob_true, prob_pred = calibration_curve(y_true, y_prob, n_bins=n_bins)
        counts = np.bincount(np.minimum((np.asarray(y_prob) * n_bins).astype(int), n_bins - 1))
        weights = counts[counts > 0] / len(y_true)
        assert got == pytest.approx(np.sum(weights * np.abs(prob_true - prob_pred)), rel=1e-10, abs=1e-14)


def test_ece_small_cases_by_hand():
    assert expected_calibration_error([0, 1, 0, 1], [0.5] * 4) == 0.0  # accuracy 0.5, confidence 0.5
    assert expected_calibration_error([1, 1], [0.0, 0.0]) == 1.0
    # one bin: |mean(y) - mean(p)| = |0.6 - 0.55|
    assert expected_calibration_error([1, 0, 1, 1, 0], [0.9, 0.1, 0.8, 0.35, 0.6], n_bins=1) == pytest.approx(0.05)


def regression_cases():
    cases = {
        "small": (np.array([3.0, -0.5, 2.0, 7.0]), np.array([2.5, 0.0, 2.0, 8.0])),
        "perfect": (np.arange(5.0), np.arange(5.0)),
        "one outlier": (np.zeros(10), np.r_[np.zeros(9), 100.0]),
        "signs cancel in the mean": (np.zeros(2), np.array([1.0, -1.0])),
        "single sample": (np.array([2.0]), np.array([-1.0])),
        "integer lists": ([1, 2, 3, 4], [2, 2, 2, 2]),
    }
    for seed in SEEDS:
        rng = np.random.default_rng(300 + seed)
        n = int(rng.integers(1, 500))
        y = rng.normal(0, 10, n)
        cases[f"random {seed}"] = (y, y + rng.standard_t(3, n))
    return cases


REGRESSION_CASES = regression_cases()


@pytest.mark.parametrize("name", REGRESSION_CASES)
def test_regression_errors_match_sklearn(name):
    y_true, y_pred = REGRESSION_CASES[name]
    rmse, mae = regression_errors(y_true, y_pred)
    assert rmse == pytest.approx(math.sqrt(mean_squared_error(y_true, y_pred)), rel=1e-12, abs=1e-15)
    assert mae == pytest.approx(mean_absolute_error(y_true, y_pred), rel=1e-12, abs=1e-15)
    assert rmse >= mae - 1e-12


def test_inputs_are_not_modified():
    y_true, y_score = SCORE_CASES["random 1"]
    saved = y_true.copy(), y_score.copy()
    roc_auc(y_true, y_score)
    best_threshold(y_true, y_score)
    threshold_metrics(y_true, y_score, 0.5)
    np.testing.assert_array_equal(y_true, saved[0])
    np.testing.assert_array_equal(y_score, saved[1])


# ---- error messages ---------------------------------------------------------------------------

LABEL_FUNCTIONS = [confusion_counts, precision_recall_f1, swapped_precision_recall, f1_as_arithmetic_mean]


@pytest.mark.parametrize("func", LABEL_FUNCTIONS)
def test_label_functions_reject_bad_input(func):
    with pytest.raises(ValueError, match=r"different lengths: 3 != 2"):
        func([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"y_true must hold binary labels 0 and 1 only, got also \[2\]"):
        func([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match=r"y_pred must hold binary labels .*\[-1\]"):
        func([0, 1, 1], [0, -1, 1])
    with pytest.raises(ValueError, match=r"y_pred must hold binary labels .*0.7"):
        func([0, 1, 1], [0, 0.7, 1])
    with pytest.raises(ValueError, match="y_true must hold binary labels 0 and 1, got dtype"):
        func(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="y_true is empty"):
        func([], [])
    with pytest.raises(ValueError, match=r"must be 1-D of shape \(n_samples,\), got shape \(2, 2\)"):
        func([[0, 1], [1, 0]], [[0, 1], [1, 0]])


def test_roc_auc_errors():
    with pytest.raises(ValueError, match="only one class is present"):
        roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="only one class is present"):
        roc_auc([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="different lengths: 2 != 3"):
        roc_auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="y_score contains NaN"):
        roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="y_score must hold real numbers"):
        roc_auc([0, 1], ["low", "high"])
    with pytest.raises(ValueError, match="y_true must hold binary labels"):
        roc_auc([0, 3], [0.1, 0.2])


@pytest.mark.parametrize("func", [expected_calibration_error, reliability_curve])
def test_calibration_errors(func):
    with pytest.raises(ValueError, match=r"y_prob must hold probabilities in \[0, 1\], got values in \[0, 1.2\]"):
        func([0, 1], [0.0, 1.2])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*\[-0.1, "):
        func([0, 1], [-0.1, 0.5])
    with pytest.raises(ValueError, match="y_prob contains NaN"):
        func([0, 1], [np.nan, 0.5])
    with pytest.raises(ValueError, match="different lengths"):
        func([0, 1, 0], [0.5, 0.5])
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_bins must be a positive integer"):
            func([0, 1], [0.2, 0.5], n_bins=bad)


def test_threshold_errors():
    with pytest.raises(ValueError, match="criterion must be one of"):
        best_threshold([0, 1], [0.2, 0.5], criterion="accuracy")
    with pytest.raises(ValueError, match="needs both classes"):
        best_threshold([1, 1], [0.2, 0.5])
    with pytest.raises(ValueError, match=r"target_recall must be in \(0, 1\]"):
        best_threshold([0, 1], [0.2, 0.5], "recall", target_recall=1.5)
    with pytest.raises(ValueError, match="threshold must be a real number"):
        threshold_metrics([0, 1], [0.2, 0.5], "0.5")
    with pytest.raises(ValueError, match="threshold must be a real number"):
        threshold_metrics([0, 1], [0.2, 0.5], float("nan"))


def test_regression_errors_reject_bad_input():
    with pytest.raises(ValueError, match="different lengths: 2 != 1"):
        regression_errors([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        regression_errors([1.0, 2.0], [1.0, np.nan])
    with pytest.raises(ValueError, match="y_true is empty"):
        regression_errors([], [])


@pytest.mark.parametrize("name", ["confusion_counts", "precision_recall_f1", "roc_auc", "regression_errors",
                                  "expected_calibration_error"])
def test_the_lesson_functions_pass_the_graded_exercise_checks(name):
    from bigtrain_lab import metrics
    from bigtrain_lab.grading import check

    result = check(f"metrics.{name}", getattr(metrics, name), seed=0)
    assert result.passed, result.feedback


# ---- top-label ECE and temperature scaling ---------------------------------------------------------

def top_label_ece_from_definition(y_true, probs, n_bins):
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    bins = np.minimum(np.floor(confidence * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            total += in_bin.mean() * abs((predicted[in_bin] == y_true[in_bin]).mean() - confidence[in_bin].mean())
    return total


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_top_label_ece_matches_its_definition(seed, n_bins):
    from bigtrain_lab.metrics import top_label_ece

    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(5, 300)), int(rng.integers(2, 8))
    logits = rng.normal(0, 2, (n, k))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, k, n)
    assert top_label_ece(y, probs, n_bins) == pytest.approx(top_label_ece_from_definition(y, probs, n_bins))


def test_top_label_ece_is_not_the_positive_class_ece():
    from bigtrain_lab.metrics import top_label_ece

    y = np.array([1, 0, 0, 1])
    p = np.array([0.3, 0.3, 0.8, 0.8])  # P(class 1)
    # positive class: bin 3 holds 0.3, 0.3 (1 positive of 2: gap 0.2); bin 8 holds 0.8, 0.8 (gap 0.3)
    assert expected_calibration_error(y, p, 10) == pytest.approx(0.25)
    # top label: confidences 0.7, 0.7 (right once: gap 0.2) and 0.8, 0.8 (gap 0.3): the same here
    assert top_label_ece(y, p, 10) == pytest.approx(0.25)
    # Not in general: two negatives at P(1) = 0.2 and 0.8 sit in two positive-class bins (gaps 0.2, 0.8)
    # but in one top-label bin, confidence 0.8, where the model is right once in two (gap 0.3)
    y3 = np.array([0, 0])
    p3 = np.array([0.2, 0.8])
    assert expected_calibration_error(y3, p3) == pytest.approx(0.5)
    assert top_label_ece(y3, p3) == pytest.approx(0.3)
    assert top_label_ece(y3, p3) == pytest.approx(top_label_ece(y3, np.column_stack([1 - p3, p3])))


def test_top_label_ece_errors():
    from bigtrain_lab.metrics import top_label_ece

    with pytest.raises(ValueError, match="rows of y_prob must sum to 1"):
        top_label_ece([0, 1], [[0.5, 0.6], [0.2, 0.8]])
    with pytest.raises(ValueError, match="class labels 0 .. 1"):
        top_label_ece([0, 2], [[0.5, 0.5], [0.2, 0.8]])
    with pytest.raises(ValueError, match="shape"):
        top_label_ece([0, 1], np.ones((2, 1)))
    with pytest.raises(ValueError, match="different lengths"):
        top_label_ece([0, 1, 1], [[0.5, 0.5], [0.2, 0.8]])


def test_fit_temperature_recovers_the_temperature_and_keeps_the_argmax():
    import torch
    import torch.nn.functional as F

    from bigtrain_lab.metrics import fit_temperature

    generator = torch.Generator().manual_seed(0)
    calibrated = 1.5 * torch.randn(20_000, 5, generator=generator, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(calibrated, dim=1), 1, generator=generator).squeeze(1)
    overconfident = 3.0 * calibrated  # the labels were drawn from softmax(overconfident / 3)
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(3.0, rel=0.05)
    assert F.cross_entropy(overconfident / t, y) < F.cross_entropy(overconfident, y)
    assert torch.equal((overconfident / t).argmax(1), overconfident.argmax(1))
    assert fit_temperature(calibrated, y) == pytest.approx(1.0, rel=0.05)
    with pytest.raises(ValueError, match="shape"):
        fit_temperature(torch.zeros(4), torch.zeros(4))
