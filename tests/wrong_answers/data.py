"""Plausible WRONG implementations of the data exercises (each must be rejected by ``check``), and
several different CORRECT ones (each must be accepted)."""

from collections import Counter

import numpy as np

# ---- data.balanced_class_weights ------------------------------------------------------------------


def cw_inverse_count(y):
    _, counts = np.unique(y, return_counts=True)
    return 1.0 / counts


def cw_normalised_to_sum_one(y):
    _, counts = np.unique(y, return_counts=True)
    w = 1.0 / counts
    return w / w.sum()


def cw_without_n_classes(y):
    _, counts = np.unique(y, return_counts=True)
    return len(y) / counts


def cw_bincount(y):
    # indexed by label value: wrong shape when labels are not 0..K-1, and 0/0 for missing ids
    y = np.asarray(y).astype(int)
    counts = np.bincount(y)
    with np.errstate(divide="ignore"):
        return len(y) / (len(counts) * counts)


def cw_dict(y):
    # the seed's weight_dict, returned as is
    classes, counts = np.unique(y, return_counts=True)
    return dict(zip(classes.tolist(), (len(y) / (len(classes) * counts)).tolist(), strict=True))


def cw_frequency(y):
    # weights proportional to frequency: the opposite of what rebalancing needs
    _, counts = np.unique(y, return_counts=True)
    return counts * len(counts) / len(y)


WEIGHTS_WRONG = [cw_inverse_count, cw_normalised_to_sum_one, cw_without_n_classes, cw_bincount, cw_dict,
                 cw_frequency]


def cw_unique(y):
    _, counts = np.unique(y, return_counts=True)
    return len(y) / (len(counts) * counts)


def cw_counter(y):
    counts = Counter(np.asarray(y).tolist())
    classes = sorted(counts)
    return np.array([len(y) / (len(classes) * counts[c]) for c in classes])


def cw_package(y):
    from bigtrain_lab.imbalance import balanced_class_weights
    return balanced_class_weights(y)


WEIGHTS_RIGHT = [cw_unique, cw_counter, cw_package]

# ---- data.standardize -----------------------------------------------------------------------------


def std_sample_std(train, test):
    train, test = np.asarray(train, float), np.asarray(test, float)
    mean, std = train.mean(0), train.std(0, ddof=1) if len(train) > 1 else np.ones(train.shape[1])
    std = np.where(std == 0, 1.0, std)
    return (train - mean) / std, (test - mean) / std


def std_fit_on_all(train, test):
    # the leakage bug: statistics of train + test together
    train, test = np.asarray(train, float), np.asarray(test, float)
    both = np.concatenate([train, test])
    mean, std = both.mean(0), both.std(0)
    std = np.where(std == 0, 1.0, std)
    return (train - mean) / std, (test - mean) / std


def std_test_own_stats(train, test):
    train, test = np.asarray(train, float), np.asarray(test, float)

    def z(a):
        s = a.std(0)
        return (a - a.mean(0)) / np.where(s == 0, 1.0, s)

    return z(train), z(test)


def std_nan_on_constant(train, test):
    train, test = np.asarray(train, float), np.asarray(test, float)
    with np.errstate(all="ignore"):
        mean, std = train.mean(0), train.std(0)
        return (train - mean) / std, (test - mean) / std


def std_global_stats(train, test):
    # one mean and std over the whole matrix instead of per column
    train, test = np.asarray(train, float), np.asarray(test, float)
    mean, std = train.mean(), train.std() or 1.0
    return (train - mean) / std, (test - mean) / std


def std_min_max(train, test):
    train, test = np.asarray(train, float), np.asarray(test, float)
    lo, hi = train.min(0), train.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (train - lo) / span, (test - lo) / span


STANDARDIZE_WRONG = [std_sample_std, std_fit_on_all, std_test_own_stats, std_nan_on_constant, std_global_stats,
                     std_min_max]


def std_numpy(train, test):
    train, test = np.asarray(train, float), np.asarray(test, float)
    mean, std = train.mean(0), train.std(0)
    std[std == 0] = 1.0
    return (train - mean) / std, (test - mean) / std


def std_sklearn(train, test):
    from sklearn.preprocessing import StandardScaler
    scaler = StandardScaler().fit(train)
    return scaler.transform(train), scaler.transform(test)


def std_package(train, test):
    from bigtrain_lab.preprocess import standardize
    return standardize(train, test)


STANDARDIZE_RIGHT = [std_numpy, std_sklearn, std_package]

# ---- data.majority_vote ---------------------------------------------------------------------------


def mv_counts_missing(labels):
    # -1 is counted as a label
    labels = np.asarray(labels)
    out = []
    for row in labels:
        values, counts = np.unique(row, return_counts=True)
        out.append(values[np.argmax(counts)])
    return np.array(out)


def mv_largest_on_tie(labels):
    labels = np.asarray(labels)
    out = []
    for row in labels:
        given = row[row >= 0]
        if not len(given):
            out.append(-1)
            continue
        counts = np.bincount(given)
        out.append(len(counts) - 1 - int(np.argmax(counts[::-1])))
    return np.array(out)


def mv_first_seen_on_tie(labels):
    # Counter.most_common breaks ties by first occurrence, not by the smallest label
    out = []
    for row in np.asarray(labels):
        given = [int(v) for v in row if v >= 0]
        out.append(Counter(given).most_common(1)[0][0] if given else -1)
    return np.array(out)


def mv_zero_for_unlabelled(labels):
    out = []
    for row in np.asarray(labels):
        given = row[row >= 0]
        out.append(int(np.argmax(np.bincount(given))) if len(given) else 0)
    return np.array(out)


def mv_column_wise(labels):
    # votes over annotators (axis 0) instead of items
    labels = np.asarray(labels)
    return mv_reference_loop(labels.T)[: labels.shape[0]] if labels.shape[1] >= labels.shape[0] else \
        np.resize(mv_reference_loop(labels.T), labels.shape[0])


def mv_mean_rounded(labels):
    out = []
    for row in np.asarray(labels):
        given = row[row >= 0]
        out.append(int(round(given.mean())) if len(given) else -1)
    return np.array(out)


def mv_reference_loop(labels):
    out = []
    for row in np.asarray(labels):
        given = row[row >= 0]
        out.append(int(np.argmax(np.bincount(given))) if len(given) else -1)
    return np.array(out, dtype=np.int64)


MAJORITY_WRONG = [mv_counts_missing, mv_largest_on_tie, mv_first_seen_on_tie, mv_zero_for_unlabelled,
                  mv_column_wise, mv_mean_rounded]


def mv_dict_counts(labels):
    out = []
    for row in np.asarray(labels).tolist():
        counts = {}
        for v in row:
            if v != -1:
                counts[v] = counts.get(v, 0) + 1
        if not counts:
            out.append(-1)
            continue
        best = max(counts.values())
        out.append(min(v for v, c in counts.items() if c == best))
    return np.array(out)


def mv_package(labels):
    from bigtrain_lab.labels import majority_vote
    return majority_vote(labels)


MAJORITY_RIGHT = [mv_reference_loop, mv_dict_counts, mv_package]

WRONG = {
    "data.balanced_class_weights": WEIGHTS_WRONG,
    "data.standardize": STANDARDIZE_WRONG,
    "data.majority_vote": MAJORITY_WRONG,
}
RIGHT = {
    "data.balanced_class_weights": WEIGHTS_RIGHT,
    "data.standardize": STANDARDIZE_RIGHT,
    "data.majority_vote": MAJORITY_RIGHT,
}
