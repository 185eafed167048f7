"""bigtrain_lab.imbalance against scikit-learn and torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from bigtrain_lab import imbalance
from bigtrain_lab.data import load_dataset


def test_balanced_weights_equal_sklearn():
    y = np.array([3, 3, 3, 3, 7, 9, 9])
    np.testing.assert_allclose(imbalance.balanced_class_weights(y),
                               compute_class_weight("balanced", classes=np.unique(y), y=y))
    with pytest.raises(ValueError):
        imbalance.balanced_class_weights(np.array([]))


def test_class_weight_tensor_is_what_cross_entropy_wants():
    y = np.array([0] * 20 + [1] * 1)
    w = imbalance.class_weight_tensor(y)
    assert w.dtype == torch.float32 and w.shape == (2,)
    np.testing.assert_allclose(w.numpy(), compute_class_weight("balanced", classes=np.array([0, 1]), y=y), rtol=1e-6)
    torch.nn.CrossEntropyLoss(weight=w)(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))  # runs
    assert imbalance.class_weight_tensor(np.array([0, 2, 2]), 4).tolist()[1] == 0.0  # absent class
    with pytest.raises((RuntimeError, TypeError)):
        torch.tensor({0: 0.5, 1: 10.5})  # the seed's torch.tensor(weight_dict)


def test_balanced_sampler_draws_classes_equally():
    y = np.array([0] * 950 + [1] * 50)
    sampler = imbalance.make_balanced_sampler(y, num_samples=20000, generator=torch.Generator().manual_seed(0))
    drawn = y[np.array(list(sampler))]
    assert abs(drawn.mean() - 0.5) < 0.02
    np.testing.assert_allclose(imbalance.sample_weights(y)[[0, -1]], [1 / 950, 1 / 50])


def test_focal_loss():
    torch.manual_seed(0)
    logits, target = torch.randn(32, 5, dtype=torch.float64), torch.randint(0, 5, (32,))
    torch.testing.assert_close(imbalance.focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target))
    p = torch.softmax(logits, -1)[torch.arange(32), target]
    alpha = torch.rand(5, dtype=torch.float64)
    manual = -(alpha[target] * (1 - p) ** 2 * torch.log(p))
    torch.testing.assert_close(imbalance.focal_loss(logits, target, gamma=2.0, alpha=alpha, reduction="none"), manual)
    torch.testing.assert_close(imbalance.FocalLoss(2.0, alpha, "sum")(logits, target), manual.sum())
    with pytest.raises(ValueError):
        imbalance.focal_loss(logits, target, gamma=-1.0)


def test_best_f1_threshold_maximises_f1():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.1).astype(int)
    s = np.clip(0.3 * y + rng.normal(0.3, 0.15, 300), 0, 1)
    t = imbalance.best_f1_threshold(y, s)
    best = f1_score(y, s >= t)
    assert all(best >= f1_score(y, s >= u) - 1e-12 for u in np.unique(s))


def test_stratified_split_keeps_proportions():
    y = np.array([0] * 200 + [1] * 10)
    X = np.arange(210)[:, None]
    _, _, y_tr, y_te = imbalance.stratified_split(X, y, test_size=0.5, seed=0)
    assert y_tr.sum() == 5 and y_te.sum() == 5


def test_experiment_runs_and_threshold_keeps_pr_auc():
    d = load_dataset("imbalanced", n_samples=600, ratio=10, seed=0)
    res = imbalance.imbalance_experiment(d, methods=("none", "class_weights", "threshold"), seeds=(0,), epochs=2,
                                         progress=False)
    by = {r.method: r for r in res}
    assert by["threshold"].pr_auc == by["none"].pr_auc  # same scores, other cut-off
    assert all(0 <= r.recall <= 1 and 0 <= r.pr_auc <= 1 for r in res)
    with pytest.raises(ValueError):
        imbalance.train_imbalanced(d.X_train, d.y_train, "smote")


def test_pr_auc_sentence_follows_the_numbers():
    means = {"none": 0.567, "class_weights": 0.711, "threshold": 0.567}
    beyond = imbalance.pr_auc_against_seed_spread(means, spread=0.042)
    assert "class_weights beyond it (ranked the rare class better" in beyond and "threshold within it" in beyond
    within = imbalance.pr_auc_against_seed_spread({"none": 0.462, "focal": 0.513}, spread=0.063)
    assert "focal within it" in within and "beyond" not in within
    worse = imbalance.pr_auc_against_seed_spread({"none": 0.5, "oversample": 0.3}, spread=0.05)
    assert "oversample beyond it (changed the ranking" in worse and "-0.200" in worse
    with pytest.raises(ValueError):
        imbalance.pr_auc_against_seed_spread(means, spread=-1.0)
