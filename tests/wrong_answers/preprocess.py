"""Plausible WRONG implementations of the ``preprocess.standardize`` exercise (each must be rejected by ``check``), and
several different CORRECT ones (each must be accepted)."""


import numpy as np


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


WRONG = {"preprocess.standardize": STANDARDIZE_WRONG}
RIGHT = {"preprocess.standardize": STANDARDIZE_RIGHT}
