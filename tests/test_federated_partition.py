"""bigtrain_lab.federated.partition: every example goes to exactly one client; alpha moves the label mix from
the global one (IID) to one or two classes per client; determinism and bad inputs."""

import numpy as np
import pytest
import torch

from bigtrain_lab.federated.partition import dirichlet_split, iid_split, label_histogram

LABELS = np.repeat(np.arange(10), 100)


def covers_each_index_once(parts, n):
    joined = np.concatenate(parts)
    return len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))


@pytest.mark.parametrize("alpha", [1000.0, 1.0, 0.05])
def test_a_partition_of_the_indices(alpha):
    parts = dirichlet_split(LABELS, 7, alpha, seed=3)
    assert len(parts) == 7 and covers_each_index_once(parts, len(LABELS))
    assert all(p.dtype == np.int64 and np.all(np.diff(p) > 0) for p in parts)
    assert min(len(p) for p in parts) >= 1


def mean_distance_from_global_mix(alpha, seed=0):
    hist = label_histogram(LABELS, dirichlet_split(LABELS, 5, alpha, seed=seed), n_classes=10)
    mix = hist / hist.sum(axis=1, keepdims=True)
    return float(np.abs(mix - 0.1).sum(axis=1).mean() / 2)  # total variation from the uniform label mix


def test_alpha_moves_clients_from_iid_to_few_classes():
    iid, mid, skewed = (mean_distance_from_global_mix(a) for a in (1000.0, 1.0, 0.1))
    assert iid < 0.05 < mid < skewed and skewed > 0.5
    hist = label_histogram(LABELS, dirichlet_split(LABELS, 5, 0.1, seed=0), n_classes=10)
    top2 = np.sort(hist, axis=1)[:, -2:].sum(axis=1) / hist.sum(axis=1)
    assert np.median(top2) > 0.6  # most clients: mostly two classes


def test_deterministic_given_the_seed_and_accepts_tensors():
    a = dirichlet_split(LABELS, 4, 0.5, seed=1)
    b = dirichlet_split(torch.from_numpy(LABELS), 4, 0.5, seed=1)
    c = dirichlet_split(LABELS, 4, 0.5, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_min_size_redraws_or_explains():
    parts = dirichlet_split(LABELS, 10, 0.1, seed=0, min_size=20)
    assert min(len(p) for p in parts) >= 20
    with pytest.raises(ValueError, match="tries"):
        dirichlet_split(np.repeat(np.arange(2), 3), 3, 0.01, seed=0, min_size=2, max_tries=5)


def test_iid_split_sizes_and_histogram():
    parts = iid_split(103, 4, seed=0)
    assert sorted(len(p) for p in parts) == [25, 26, 26, 26] and covers_each_index_once(parts, 103)
    hist = label_histogram(LABELS, [np.arange(0, 150), np.arange(950, 1000)])
    assert hist.shape == (2, 10) and hist[0, :2].tolist() == [100, 50] and hist[1, 9] == 50


@pytest.mark.parametrize("call,match", [
    (lambda: dirichlet_split(LABELS, 0, 1.0, 0), "n_clients"),
    (lambda: dirichlet_split(LABELS, 3, 0.0, 0), "alpha"),
    (lambda: dirichlet_split(LABELS[:2], 3, 1.0, 0), "empty"),
    (lambda: dirichlet_split(LABELS.astype(float), 3, 1.0, 0), "integers"),
    (lambda: dirichlet_split(LABELS.reshape(10, 100), 3, 1.0, 0), "1-d"),
    (lambda: dirichlet_split(LABELS, 3, 1.0, 0, min_size=-1), "min_size"),
    (lambda: iid_split(3, 4, 0), "empty"),
    (lambda: label_histogram(LABELS, [np.arange(5)], n_classes=5), r"\[0, 5\)"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
