"""Plausible WRONG implementations of the metrics exercises (each must be rejected by ``check``),
and several different CORRECT ones (each must be accepted). Many of the wrong ones circulate online."""

import numpy as np
from scipy.stats import rankdata

# ---- metrics.confusion_counts ---------------------------------------------------------------------


def cc_fp_fn_swapped(y_true, y_pred):
    y, p = np.asarray(y_true), np.asarray(y_pred)
    return int(((y == 1) & (p == 1)).sum()), int(((y == 1) & (p == 0)).sum()), \
        int(((y == 0) & (p == 1)).sum()), int(((y == 0) & (p == 0)).sum())


def cc_sklearn_ravel_order(y_true, y_pred):
    # sklearn's confusion_matrix(...).ravel() is (tn, fp, fn, tp): returned as if it were (tp, fp, fn, tn)
    from sklearn.metrics import confusion_matrix
    return tuple(int(v) for v in confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel())


def cc_tn_from_total(y_true, y_pred):
    y, p = np.asarray(y_true), np.asarray(y_pred)
    tp = int(((y == 1) & (p == 1)).sum())
    fp = int(((y == 0) & (p == 1)).sum())
    fn = int(((y == 1) & (p == 0)).sum())
    return tp, fp, fn, len(y) - tp  # forgets fp and fn


def cc_sklearn_without_labels(y_true, y_pred):
    # breaks when only one class occurs (the matrix is 1x1)
    from sklearn.metrics import confusion_matrix
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred).ravel()
    return int(tp), int(fp), int(fn), int(tn)


def cc_hard_coded(y_true, y_pred):
    return 3, 1, 1, 3  # the answer of the first example only


CONFUSION_WRONG = [cc_fp_fn_swapped, cc_sklearn_ravel_order, cc_tn_from_total, cc_sklearn_without_labels,
                   cc_hard_coded]


def cc_loop(y_true, y_pred):
    tp = fp = fn = tn = 0
    for t, p in zip(y_true, y_pred):
        if p == 1 and t == 1:
            tp += 1
        elif p == 1:
            fp += 1
        elif t == 1:
            fn += 1
        else:
            tn += 1
    return tp, fp, fn, tn


def cc_bincount(y_true, y_pred):
    codes = 2 * np.asarray(y_true, dtype=int) + np.asarray(y_pred, dtype=int)  # 0 tn, 1 fp, 2 fn, 3 tp
    tn, fp, fn, tp = np.bincount(codes, minlength=4)
    return [tp, fp, fn, tn]  # a list of numpy ints is fine too


CONFUSION_RIGHT = [cc_loop, cc_bincount]

# ---- metrics.precision_recall_f1 ------------------------------------------------------------------


def _counts(y_true, y_pred):
    return cc_loop(y_true, y_pred)


def prf_swapped(y_true, y_pred):
    # the definition that circulates: precision = tp / (tp + fn), recall = tp / (tp + fp)
    tp, fp, fn, _ = _counts(y_true, y_pred)
    p = tp / (tp + fn) if tp + fn else 0.0
    r = tp / (tp + fp) if tp + fp else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def prf_arithmetic_mean(y_true, y_pred):
    tp, fp, fn, _ = _counts(y_true, y_pred)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (p + r) / 2


def prf_nan_on_zero(y_true, y_pred):
    tp, fp, fn, _ = _counts(y_true, y_pred)
    with np.errstate(all="ignore"):
        p = np.float64(tp) / np.float64(tp + fp)
        r = np.float64(tp) / np.float64(tp + fn)
        return p, r, 2 * p * r / (p + r)


def prf_raises_on_zero(y_true, y_pred):
    tp, fp, fn, _ = _counts(y_true, y_pred)
    p, r = tp / (tp + fp), tp / (tp + fn)
    return p, r, 2 * p * r / (p + r)


def prf_accuracy_as_precision(y_true, y_pred):
    tp, fp, fn, tn = _counts(y_true, y_pred)
    p = (tp + tn) / (tp + fp + fn + tn)
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def prf_macro_average(y_true, y_pred):
    from sklearn.metrics import precision_recall_fscore_support
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    return p, r, f


PRF_WRONG = [prf_swapped, prf_arithmetic_mean, prf_nan_on_zero, prf_raises_on_zero,
             prf_accuracy_as_precision, prf_macro_average]


def prf_direct(y_true, y_pred):
    tp, fp, fn, _ = _counts(y_true, y_pred)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def prf_f1_from_counts(y_true, y_pred):
    # F1 = 2tp / (2tp + fp + fn), which is 0 exactly when tp = 0
    tp, fp, fn, _ = _counts(y_true, y_pred)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return (p, r, 2 * tp / (2 * tp + fp + fn) if tp else 0.0)


PRF_RIGHT = [prf_direct, prf_f1_from_counts]

# ---- metrics.roc_auc ------------------------------------------------------------------------------


def auc_hard_labels(y_true, y_score):
    from sklearn.metrics import roc_auc_score
    if len(set(np.asarray(y_true).tolist())) < 2:
        raise ValueError("one class")
    return roc_auc_score(y_true, (np.asarray(y_score) >= 0.5).astype(int))


def auc_ignores_ties(y_true, y_score):
    y, s = np.asarray(y_true), np.asarray(y_score, dtype=float)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("one class")
    return float((pos[:, None] > neg[None, :]).mean())


def auc_ordinal_ranks(y_true, y_score):
    # ranks from argsort: ties broken by position instead of averaged
    y, s = np.asarray(y_true), np.asarray(y_score, dtype=float)
    n_pos = int((y == 1).sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("one class")
    ranks = np.empty(len(s))
    ranks[np.argsort(s, kind="stable")] = np.arange(1, len(s) + 1)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc_half_on_one_class(y_true, y_score):
    y, s = np.asarray(y_true), np.asarray(y_score, dtype=float)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return 0.5
    gt = (pos[:, None] > neg[None, :]).mean()
    eq = (pos[:, None] == neg[None, :]).mean()
    return float(gt + 0.5 * eq)


def auc_accuracy(y_true, y_score):
    y = np.asarray(y_true)
    if len(set(y.tolist())) < 2:
        raise ValueError("one class")
    return float(((np.asarray(y_score) >= 0.5) == y).mean())


AUC_WRONG = [auc_hard_labels, auc_ignores_ties, auc_ordinal_ranks, auc_half_on_one_class, auc_accuracy]


def auc_pairwise(y_true, y_score):
    y, s = np.asarray(y_true), np.asarray(y_score, dtype=float)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("need both classes")
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def auc_trapezoid(y_true, y_score):
    # the ROC curve over distinct thresholds, integrated with the trapezoid rule
    y, s = np.asarray(y_true), np.asarray(y_score, dtype=float)
    if y.min() == y.max():
        raise ValueError("need both classes")
    thresholds = np.r_[np.inf, np.unique(s)[::-1]]
    tpr = [((s >= t) & (y == 1)).sum() / (y == 1).sum() for t in thresholds]
    fpr = [((s >= t) & (y == 0)).sum() / (y == 0).sum() for t in thresholds]
    return float(np.trapezoid(tpr, fpr))


def auc_rankdata(y_true, y_score):
    y = np.asarray(y_true)
    n_pos = int((y == 1).sum())
    n_neg = len(y) - n_pos
    if not n_pos or not n_neg:
        raise ValueError("need both classes")
    return float((rankdata(y_score)[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


AUC_RIGHT = [auc_pairwise, auc_trapezoid, auc_rankdata]

# ---- metrics.regression_errors --------------------------------------------------------------------


def reg_mse_not_rmse(y_true, y_pred):
    e = np.asarray(y_pred, float) - np.asarray(y_true, float)
    return float(np.mean(e**2)), float(np.mean(np.abs(e)))


def reg_signed_mae(y_true, y_pred):
    e = np.asarray(y_pred, float) - np.asarray(y_true, float)
    return float(np.sqrt(np.mean(e**2))), float(abs(np.mean(e)))


def reg_sqrt_before_mean(y_true, y_pred):
    e = np.asarray(y_pred, float) - np.asarray(y_true, float)
    return float(np.mean(np.sqrt(e**2))), float(np.mean(np.abs(e)))


def reg_swapped(y_true, y_pred):
    e = np.asarray(y_pred, float) - np.asarray(y_true, float)
    return float(np.mean(np.abs(e))), float(np.sqrt(np.mean(e**2)))


def reg_sample_std(y_true, y_pred):
    # the std of the residuals (n - 1 and mean removed) is not the RMSE
    e = np.asarray(y_pred, float) - np.asarray(y_true, float)
    return float(np.std(e, ddof=1)) if len(e) > 1 else 0.0, float(np.mean(np.abs(e)))


REGRESSION_WRONG = [reg_mse_not_rmse, reg_signed_mae, reg_sqrt_before_mean, reg_swapped, reg_sample_std]


def reg_numpy(y_true, y_pred):
    e = np.subtract(y_pred, y_true, dtype=float)
    return float(np.sqrt(np.mean(e * e))), float(np.mean(np.abs(e)))


def reg_python(y_true, y_pred):
    errors = [float(p) - float(t) for t, p in zip(y_true, y_pred)]
    n = len(errors)
    return (sum(e * e for e in errors) / n) ** 0.5, sum(abs(e) for e in errors) / n


REGRESSION_RIGHT = [reg_numpy, reg_python]

# ---- metrics.expected_calibration_error -----------------------------------------------------------


def ece_unweighted(y_true, y_prob, n_bins=10):
    y, p = np.asarray(y_true, float), np.asarray(y_prob, float)
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)
    return float(np.mean([abs(y[b == k].mean() - p[b == k].mean()) for k in np.unique(b)]))


def ece_mce(y_true, y_prob, n_bins=10):
    y, p = np.asarray(y_true, float), np.asarray(y_prob, float)
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)
    return float(max(abs(y[b == k].mean() - p[b == k].mean()) for k in np.unique(b)))


def ece_unclipped_last_bin(y_true, y_prob, n_bins=10):
    # p == 1.0 lands in an extra bin n_bins instead of the last one
    y, p = np.asarray(y_true, float), np.asarray(y_prob, float)
    b = np.floor(p * n_bins).astype(int)
    return float(sum((b == k).mean() * abs(y[b == k].mean() - p[b == k].mean()) for k in np.unique(b)))


def ece_global_gap(y_true, y_prob, n_bins=10):
    return float(abs(np.mean(y_true) - np.mean(y_prob)))


def ece_ignores_n_bins(y_true, y_prob, n_bins=10):
    y, p = np.asarray(y_true, float), np.asarray(y_prob, float)
    b = np.minimum((p * 10).astype(int), 9)
    return float(sum((b == k).mean() * abs(y[b == k].mean() - p[b == k].mean()) for k in np.unique(b)))


def ece_accuracy_not_frequency(y_true, y_prob, n_bins=10):
    # multiclass-style confidence/accuracy applied to binary P(y=1): compares with correctness, not y
    y, p = np.asarray(y_true, float), np.asarray(y_prob, float)
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)
    correct = ((p >= 0.5) == (y == 1)).astype(float)
    conf = np.maximum(p, 1 - p)
    return float(sum((b == k).mean() * abs(correct[b == k].mean() - conf[b == k].mean()) for k in np.unique(b)))


ECE_WRONG = [ece_unweighted, ece_mce, ece_unclipped_last_bin, ece_global_gap, ece_ignores_n_bins,
             ece_accuracy_not_frequency]


def ece_loop(y_true, y_prob, n_bins=10):
    import math
    bins = {}
    for t, p in zip(y_true, y_prob):
        bins.setdefault(min(math.floor(p * n_bins), n_bins - 1), []).append((float(t), float(p)))
    n = len(y_true)
    return sum(len(v) / n * abs(sum(t for t, _ in v) / len(v) - sum(p for _, p in v) / len(v))
               for v in bins.values())


def ece_bincount(y_true, y_prob, n_bins=10):
    y, p = np.asarray(y_true, float), np.asarray(y_prob, float)
    b = np.minimum(np.floor(p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(b, minlength=n_bins)
    gap = np.abs(np.bincount(b, y, n_bins) - np.bincount(b, p, n_bins))  # = count * |mean y - mean p|
    return float(gap.sum() / len(y))


ECE_RIGHT = [ece_loop, ece_bincount]

WRONG = {
    "metrics.confusion_counts": CONFUSION_WRONG,
    "metrics.precision_recall_f1": PRF_WRONG,
    "metrics.roc_auc": AUC_WRONG,
    "metrics.regression_errors": REGRESSION_WRONG,
    "metrics.expected_calibration_error": ECE_WRONG,
}
RIGHT = {
    "metrics.confusion_counts": CONFUSION_RIGHT,
    "metrics.precision_recall_f1": PRF_RIGHT,
    "metrics.roc_auc": AUC_RIGHT,
    "metrics.regression_errors": REGRESSION_RIGHT,
    "metrics.expected_calibration_error": ECE_RIGHT,
}
