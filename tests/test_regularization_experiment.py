"""The regularization package (lesson 10): penalties and constraints checked against torch, the overfit task's
runs (early stopping restores the best epoch, max-norm holds, Adam's weight_decay is L2 in the loss), the
k-fold helper and the explorer's sweep. Small nets and few epochs: the lesson trains the real ones."""

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.model_selection import StratifiedKFold

from bigtrain_lab.data import load_dataset
from bigtrain_lab.regularization import (
    HIST_EDGES,
    RegConfig,
    adam_effective_decay,
    apply_max_norm,
    decay_groups,
    early_stopping,
    l1_penalty,
    l2_penalty,
    overfit_task,
    point_key,
    split_scores,
    sweep,
    train_run,
    weight_summary,
)

SMALL = {"hidden": (32, 32), "batch_size": 10, "lr": 1e-2}


@pytest.fixture(scope="module")
def task():
    return overfit_task(per_class=3, seed=0)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(40, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (40,), generator=g)


def test_penalties_cover_the_weight_matrices_only_and_l2_has_gradient_wd_times_w():
    net = _net()
    weights = [net[0].weight, net[2].weight]
    assert float(l1_penalty(net).detach()) == pytest.approx(float(sum(w.detach().abs().sum() for w in weights)))
    (0.3 * l2_penalty(net)).backward()
    for w in weights:
        assert torch.allclose(w.grad, 0.3 * w.detach())
    assert net[0].bias.grad is None
    groups = decay_groups(net, 0.1)
    assert [len(g["params"]) for g in groups] == [2, 2] and [g["weight_decay"] for g in groups] == [0.1, 0.0]


def _train(net, make_opt, loss_extra=None, steps=25):
    X, y = _data()
    opt = make_opt(net)
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(net(X), y)
        if loss_extra is not None:
            loss = loss + loss_extra(net)
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()]), opt


def test_adam_weight_decay_is_l2_in_the_loss_and_adamw_is_not():
    wd = 0.05
    l2, _ = _train(_net(), lambda n: torch.optim.Adam(n.parameters(), lr=0.01), lambda n: wd * l2_penalty(n))
    arg, opt = _train(_net(), lambda n: torch.optim.Adam(decay_groups(n, wd), lr=0.01))
    decoupled, _ = _train(_net(), lambda n: torch.optim.AdamW(decay_groups(n, wd), lr=0.01))
    assert (l2 - arg).abs().max() < 1e-10 and (l2 - decoupled).abs().max() > 1e-3
    ratio = adam_effective_decay(opt)
    group = opt.param_groups[0]
    state = opt.state[group["params"][0]]
    v_hat = state["exp_avg_sq"] / (1 - group["betas"][1] ** float(state["step"]))
    assert len(ratio) == sum(p.numel() for p in group["params"])
    assert torch.allclose(ratio[:v_hat.numel()], (1 / (v_hat.sqrt() + group["eps"])).flatten())
    with pytest.raises(ValueError, match="no Adam state"):
        adam_effective_decay(torch.optim.Adam(_net().parameters(), lr=0.01))


def test_max_norm_is_torch_renorm_on_the_rows_and_leaves_short_rows_alone():
    net = _net()
    before = copy.deepcopy(net)
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    scaled = net[0].weight.detach().clone()
    apply_max_norm(net, 1.0)
    rows = net[0].weight.detach().norm(dim=1)
    assert torch.all(rows <= 1.0 + 1e-9)
    long = scaled.norm(dim=1) > 1.0
    assert torch.allclose(net[0].weight.detach()[~long], scaled[~long])
    assert torch.allclose(net[0].weight.detach(), torch.renorm(scaled, 2, 0, 1.0))
    assert torch.equal(net[0].bias, before[0].bias)
    with pytest.raises(ValueError):
        apply_max_norm(net, 0.0)


def test_weight_summary_counts_small_weights():
    net = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 1e-4, 0.5, -2.0], [3.0, -1e-5, 0.0, 0.01]]))
    s = weight_summary(net, threshold=1e-3)
    assert s["sparsity"] == pytest.approx(4 / 8) and s["largest"] == pytest.approx(3.0)
    assert s["norm"] == pytest.approx(float(net.weight.detach().norm()))


def test_reg_config_validates_and_labels():
    assert RegConfig().label() == "baseline"
    assert RegConfig(l2=0.01, dropout=0.5).label() == "l2=0.01, dropout=0.5"
    for bad in ({"optimizer": "sgd"}, {"dropout": 1.0}, {"l1": -1.0}, {"label_smoothing": -0.1}):
        with pytest.raises(ValueError):
            RegConfig(**bad)


def test_the_baseline_overfits_and_records_every_epoch(task):
    run = train_run(task, RegConfig(), epochs=20, **SMALL)
    h = run.history
    assert h.epochs == list(range(21)) and len(h.val_loss) == 21
    assert run.final["train_accuracy"] == 1.0 and run.final["gap"] > 0.1
    assert run.final["val_accuracy"] == pytest.approx(h.val_acc[-1])
    assert train_run(task, RegConfig(), epochs=20, **SMALL).final == run.final  # deterministic


def test_adam_weight_decay_matches_l2_in_the_training_loop(task):
    a = train_run(task, RegConfig(l2=1e-2), epochs=4, **SMALL).model
    b = train_run(task, RegConfig(weight_decay=1e-2), epochs=4, **SMALL).model
    c = train_run(task, RegConfig(weight_decay=1e-2, optimizer="adamw"), epochs=4, **SMALL).model
    flat = [torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (a, b, c)]
    assert (flat[0] - flat[1]).abs().max() < 1e-4 < (flat[0] - flat[2]).abs().max()


def test_early_stopping_restores_the_best_epoch_as_the_callback_decides(task):
    run = train_run(task, RegConfig(patience=3), epochs=40, **SMALL)
    h = run.history
    assert run.stopped_epoch is not None and run.stopped_epoch == h.epochs[-1] < 40
    assert run.stopped_epoch - run.best_epoch == 3
    assert run.final["val_loss"] == pytest.approx(h.val_loss[run.best_epoch], abs=1e-6)
    stop, best = early_stopping(h.val_loss[1:], patience=3)
    assert (stop + 1, best + 1) == (run.stopped_epoch, run.best_epoch)


def test_max_norm_dropout_batch_norm_augment_and_smoothing_runs(task):
    run = train_run(task, RegConfig(max_norm=0.5), epochs=3, **SMALL)
    for module in run.model.modules():
        if isinstance(module, nn.Linear):
            assert float(module.weight.detach().norm(dim=1).max()) <= 0.5 + 1e-5
    bn = train_run(task, RegConfig(batch_norm=True, dropout=0.3), epochs=2, **SMALL).model
    assert any(isinstance(m, nn.BatchNorm1d) for m in bn.modules()) and any(isinstance(m, nn.Dropout) for m in bn.modules())
    plain = train_run(task, RegConfig(), epochs=2, **SMALL).final
    assert train_run(task, RegConfig(augment=True), epochs=2, **SMALL).final != plain
    assert train_run(task, RegConfig(label_smoothing=0.2), epochs=2, **SMALL).final != plain
    l1 = train_run(task, RegConfig(l1=3e-3), epochs=12, **SMALL).final
    l2 = train_run(task, RegConfig(l2=3e-3), epochs=12, **SMALL).final
    assert l1["sparsity"] > l2["sparsity"]


def test_split_scores_trains_a_fresh_model_per_fold():
    d = load_dataset("digits", seed=0)
    X, y = d.X_train[:60], d.y_train[:60]
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    scores = split_scores(X, y, folds, epochs=2, holdout=(d.X_val[:50], d.y_val[:50]), **SMALL)
    assert len(scores) == 3 and all(set(s) == {"val", "holdout"} and 0 <= s["val"] <= 1 for s in scores)
    assert len({s["holdout"] for s in scores}) > 1


def test_sweep_reuses_known_runs_and_records_histograms(task):
    known = {RegConfig(): train_run(task, RegConfig(), epochs=2, **SMALL)}
    result = sweep(task, [0.0, 1.0], [0.0], [0.0], epochs=2, known=known, **SMALL)
    assert set(result["runs"]) == {point_key(0, 0, 0), point_key(1, 0, 0)}
    base = result["runs"][point_key(0, 0, 0)]
    assert base["final"] == known[RegConfig()].final
    n_weights = 64 * 32 + 32 * 32 + 32 * 10
    assert sum(base["hist_counts"]) == n_weights and len(base["hist_counts"]) == len(HIST_EDGES) - 1
    assert np.allclose(result["hist_edges"], HIST_EDGES) and result["epochs"] == 2
