"""Plausible WRONG implementations of the ``labels.majority_vote`` exercise (each must be rejected by ``check``), and
several different CORRECT ones (each must be accepted)."""

from collections import Counter

import numpy as np


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


WRONG = {"labels.majority_vote": MAJORITY_WRONG}
RIGHT = {"labels.majority_vote": MAJORITY_RIGHT}
