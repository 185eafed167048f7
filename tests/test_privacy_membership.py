"""The loss-threshold membership attack and the DP bound (``bigtrain_lab.privacy.membership``)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from bigtrain_lab.models import MLP
from bigtrain_lab.privacy.membership import (
    attack_advantage,
    chance_advantage,
    dp_advantage_bound,
    per_example_losses,
)


def _brute_force(inside, outside):
    thresholds = np.r_[-np.inf, np.sort(np.r_[inside, outside])]
    return max((inside <= t).mean() - (outside <= t).mean() for t in thresholds)


def test_advantage_is_the_best_threshold_and_auc_is_sklearns():
    rng = np.random.default_rng(0)
    for _ in range(5):
        inside, outside = rng.exponential(0.5, 80), rng.exponential(1.0, 120)
        r = attack_advantage(inside, outside)
        assert r.advantage == pytest.approx(_brute_force(inside, outside))
        labels = np.r_[np.ones(80), np.zeros(120)]
        assert r.auc == pytest.approx(roc_auc_score(labels, -np.r_[inside, outside]))
        assert r.yeom_advantage == pytest.approx((inside <= inside.mean()).mean() - (outside <= inside.mean()).mean())
        assert (inside <= r.threshold).mean() - (outside <= r.threshold).mean() == pytest.approx(r.advantage)


def test_perfect_separation_and_no_signal():
    r = attack_advantage([0.0, 0.1, 0.2], [1.0, 2.0])
    assert r.advantage == 1.0 and r.auc == 1.0
    same = attack_advantage([0.5] * 4, [0.5] * 6)
    assert same.advantage == 0.0 and same.auc == 0.5
    floor = chance_advantage(200, 200, repeats=50)
    assert 0.02 < floor < 0.2  # a finite sample lets an uninformed threshold "win" a little


def test_bad_losses_are_rejected():
    for bad in ([], [[0.1, 0.2]], [0.1, math.nan]):
        with pytest.raises(ValueError, match="member_losses"):
            attack_advantage(bad, [0.1])


def test_dp_bound():
    assert dp_advantage_bound(0.0, 0.0) == 0.0
    assert dp_advantage_bound(1.0, 0.0) == pytest.approx((math.e - 1) / (math.e + 1))
    assert dp_advantage_bound(1.0, 1e-5) == pytest.approx((math.e - 1 + 2e-5) / (math.e + 1))
    assert dp_advantage_bound(8.0, 1e-5) > 0.99 and dp_advantage_bound(math.inf, 0.0) == 1.0
    with pytest.raises(ValueError):
        dp_advantage_bound(-1.0, 0.0)


def test_per_example_losses_match_cross_entropy_and_restore_the_mode():
    torch.manual_seed(0)
    model = MLP(64, (8,), 10, dropout=0.5).train()
    x, y = torch.rand(6, 64), torch.randint(0, 10, (6,))
    got = per_example_losses(model, x, y)
    model.eval()
    np.testing.assert_allclose(got, F.cross_entropy(model(x), y, reduction="none").detach().numpy(), rtol=1e-6)
    model.train()
    per_example_losses(model, x, y)
    assert model.training
