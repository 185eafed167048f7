"""bigtrain_lab.ensemble.networks: fusion rules against hand computations, diversity, the interpolation curve's
endpoints, snapshot training and SWA against torch.optim.swa_utils."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from bigtrain_lab.ensemble import average_weights
from bigtrain_lab.ensemble.networks import (
    FUSION_RULES,
    bn_mlp,
    cosine_restart_lrs,
    disagreement_rate,
    fuse,
    interpolate_losses,
    member_logits,
    score,
    snapshot_ensemble,
    swa_run,
    train_members,
)
from bigtrain_lab.models import MLP

# two members, two samples, three classes
LOGITS = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                       [[0.0, 0.0, 3.0], [0.0, 2.0, 0.0]]])


def _softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 8, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()  # three classes
    return X, y


def test_fuse_logits_is_softmax_of_mean_logit():
    got = fuse(LOGITS, "logits")
    want = [_softmax([1.0, 0.0, 1.5]), _softmax([0.0, 1.5, 0.0])]
    assert torch.allclose(got, torch.tensor(want), atol=1e-6)


def test_fuse_probabilities_is_mean_of_softmaxes():
    got = fuse(LOGITS, "probabilities")
    a, b = _softmax([2, 0, 0]), _softmax([0, 0, 3])
    first = [(u + v) / 2 for u, v in zip(a, b, strict=True)]
    assert torch.allclose(got[0], torch.tensor(first), atol=1e-6)
    assert torch.allclose(got.sum(dim=1), torch.ones(2, dtype=got.dtype), atol=1e-6)


def test_fuse_vote_counts_votes_and_breaks_ties_to_the_lowest_class():
    got = fuse(LOGITS, "vote")
    assert got.tolist() == [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]]
    assert got.argmax(dim=1).tolist() == [0, 1]  # sample 0: classes 0 and 2 tie, 0 wins


def test_the_rules_can_disagree_and_bad_input_is_refused():
    # member A: class 0 barely; members B and C: class 1 with confidence -> vote says 1 too, but
    # a member far more confident for class 0 can outweigh by logits and not by votes
    logits = torch.tensor([[[10.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.0]]])
    assert fuse(logits, "logits").argmax().item() == 0  # mean logit (3.33, 0.67)
    assert fuse(logits, "vote").argmax().item() == 1  # two votes of three
    with pytest.raises(ValueError, match="rule"):
        fuse(LOGITS, "median")
    with pytest.raises(ValueError, match="shape"):
        fuse(LOGITS[0], "logits")
    assert set(FUSION_RULES) == {"logits", "probabilities", "vote"}


def test_score_by_hand():
    proba = torch.tensor([[0.5, 0.5, 0.0], [0.1, 0.8, 0.1]])
    got = score(proba, [1, 1])
    assert got["accuracy"] == 0.5  # the tie in row 0 goes to class 0
    assert got["nll"] == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2)
    assert score(proba, [2, 1])["nll"] == math.inf  # a zero probability on the true class


def test_disagreement_rate_by_hand():
    labels = torch.tensor([[0, 1, 2], [0, 1, 1], [1, 1, 1]])
    assert disagreement_rate(labels) == pytest.approx((1 / 3 + 2 / 3 + 1 / 3) / 3)
    logits = F.one_hot(labels, 3).float()
    assert disagreement_rate(logits) == pytest.approx(4 / 9)
    assert disagreement_rate(labels[:1]) == 0.0


def test_train_members_is_seeded_and_data_seeds_change_the_run():
    X, y = _data()
    make = lambda: MLP(8, (8,), 3)  # noqa: E731
    a, b = train_members(make, X, y, seeds=[0, 0], epochs=2, batch_size=32)
    c, = train_members(make, X, y, seeds=[0], data_seeds=[5], epochs=2, batch_size=32)
    assert torch.equal(member_logits([a], X), member_logits([b], X))
    assert not torch.equal(member_logits([a], X), member_logits([c], X))
    assert member_logits([a, c], X).shape == (2, len(X), 3)
    with pytest.raises(ValueError, match="data seed"):
        train_members(make, X, y, seeds=[0, 1], data_seeds=[0], epochs=1)


def test_interpolation_endpoints_are_the_two_models_and_the_middle_is_the_average():
    X, y = _data()
    torch.manual_seed(0)
    a, b = bn_mlp(8, (16,), 3).eval(), bn_mlp(8, (16,), 3).eval()
    curve = interpolate_losses(a, b, X, y, [0.0, 0.5, 1.0])
    with torch.no_grad():
        for model, loss in ((a, curve["loss"][0]), (b, curve["loss"][2])):
            assert loss == pytest.approx(float(F.cross_entropy(model(X), y)), abs=1e-6)
        mid = bn_mlp(8, (16,), 3).eval()
        mid.load_state_dict({k: (a.state_dict()[k] + b.state_dict()[k]) / 2 if v.is_floating_point() else v
                             for k, v in a.state_dict().items()})
        assert curve["loss"][1] == pytest.approx(float(F.cross_entropy(mid(X), y)), abs=1e-5)
        assert curve["accuracy"][0] == pytest.approx(float((a(X).argmax(1) == y).double().mean()))
    assert curve["alpha"].tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate_losses(a, b, X, y, [1.5])


def test_cosine_restart_lrs_restart_every_cycle():
    lrs = cosine_restart_lrs(0.1, 4, 12)
    assert lrs[0] == lrs[4] == lrs[8] == pytest.approx(0.1)
    assert lrs[2] == pytest.approx(0.05)  # half way down the cosine
    assert all(lrs[i] > lrs[i + 1] for i in (0, 1, 2))


def test_snapshot_ensemble_keeps_one_model_per_cycle():
    X, y = _data()
    snaps = snapshot_ensemble(lambda: MLP(8, (8,), 3), X, y, cycles=3, epochs_per_cycle=1, lr=0.01, batch_size=32)
    assert len(snaps) == 3
    logits = member_logits(snaps, X)
    assert not torch.equal(logits[0], logits[1]) and not torch.equal(logits[1], logits[2])
    with pytest.raises(ValueError, match="cycles"):
        snapshot_ensemble(lambda: MLP(8, (8,), 3), X, y, cycles=0, epochs_per_cycle=1)


def test_swa_average_equals_averaged_model_and_update_bn_recomputes_the_statistics():
    X, y = _data()
    run = swa_run(lambda: bn_mlp(8, (16,), 3), X, y, epochs=4, swa_start=1, lr=0.05, swa_lr=0.02, batch_size=32)
    assert len(run.averaged_states) == 3  # epochs 2, 3 and 4
    mean = average_weights(run.averaged_states)
    for name, p in run.swa.module.named_parameters():
        assert torch.allclose(p, mean[name], atol=1e-6), name
    # an AveragedModel fed the same states by hand agrees
    by_hand = AveragedModel(bn_mlp(8, (16,), 3))
    for state in run.averaged_states:
        net = bn_mlp(8, (16,), 3)
        net.load_state_dict(state)
        by_hand.update_parameters(net)
    for (name, p), q in zip(run.swa.module.named_parameters(), by_hand.module.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6), name
    # without update_bn: the last iterate's BatchNorm statistics; with it: the averaged weights' own
    bn_stale, bn_new, bn_last = run.swa_stale_bn.module[2], run.swa.module[2], run.last[2]
    assert torch.equal(bn_stale.running_mean, bn_last.running_mean)
    with torch.no_grad():
        hidden = run.swa.module[1](X)  # the first Linear's outputs over all the training rows
    assert torch.allclose(bn_new.running_mean, hidden.mean(dim=0), atol=1e-5)  # equal batches: mean of means
    assert not torch.allclose(bn_new.running_mean, bn_stale.running_mean)
    with pytest.raises(ValueError, match="swa_start"):
        swa_run(lambda: bn_mlp(8, (16,), 3), X, y, epochs=2, swa_start=2)


def test_bn_mlp_shapes():
    net = bn_mlp(64, (32, 16), 10)
    assert net(torch.zeros(4, 8, 8)).shape == (4, 10)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in net) == 2
