"""Plausible WRONG implementations of the ``imbalance.balanced_class_weights`` exercise (each must be rejected by ``check``), and
several different CORRECT ones (each must be accepted)."""

from collections import Counter

import numpy as np


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


WRONG = {"imbalance.balanced_class_weights": WEIGHTS_WRONG}
RIGHT = {"imbalance.balanced_class_weights": WEIGHTS_RIGHT}
