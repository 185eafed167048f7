"""bigtrain_lab.training_viz: layer statistics by hooks, broken initialisations, the training loop, LR finder, curves;
and the layer-statistics explorer of bigtrain_lab.widgets.training_viz."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.models import MLP
from bigtrain_lab.training_viz import (
    INIT_SCHEMES,
    History,
    UpdateRatioRecorder,
    diagnose_fit,
    feature_maps,
    fit_with_history,
    history_curves,
    initialize,
    layer_statistics,
    lr_finder,
)
from bigtrain_lab.widgets.training_viz import LayerStatsExplorer, LiveCurves, layer_stats_view


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (3, 6))
    y = rng.integers(0, 3, 600)
    X = centers[y] + rng.normal(size=(600, 6))
    return X[:400], y[:400], X[400:], y[400:]


def test_layer_statistics_match_a_manual_computation():
    torch.manual_seed(0)
    model = MLP(6, (5, 4), 3, activation="relu")
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    stats = layer_statistics(model, x, y)
    assert [s.name for s in stats] == ["net.2", "net.4"]
    h1 = torch.relu(model.net[1](x.flatten(1)))  # net.0 is Flatten
    h2 = torch.relu(model.net[3](h1))
    loss = F.cross_entropy(model.net[5](h2), y)
    g1, g2 = torch.autograd.grad(loss, [model.net[1].weight, model.net[3].weight])
    assert stats[0].act_std == pytest.approx(float(h1.detach().std()))
    assert stats[1].act_mean == pytest.approx(float(h2.mean()))
    assert stats[0].dead_fraction == pytest.approx(float((h1 <= 0).all(0).float().mean()))
    assert stats[0].grad_norm == pytest.approx(float(g1.norm()))
    assert stats[1].grad_weight_ratio == pytest.approx(float(g2.norm() / model.net[3].weight.norm()))
    assert model.net[1].weight.grad is None  # the model's own gradients are untouched


def test_update_ratio_is_the_step_taken_sgd_by_hand():
    torch.manual_seed(0)
    model = MLP(6, (5, 4), 3)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    lr = 0.3
    weights = [model.net[i].weight for i in (1, 3, 5)]
    before = [w.detach().clone() for w in weights]
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), weights)
    by_hand = [float(lr * g.norm() / w.norm()) for g, w in zip(grads, before, strict=True)]  # SGD: dw = -lr g
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    with UpdateRatioRecorder(model, opt) as rec:
        F.cross_entropy(model(x), y).backward()
        opt.step()
    assert rec.layers == ["net.1", "net.3", "net.5"] and len(rec.ratios) == 1
    assert rec.ratios[0] == pytest.approx(by_hand, rel=1e-5)
    assert rec.ratios[0] != pytest.approx([float(g.norm() / w.norm()) for g, w in zip(grads, before, strict=True)])
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()  # after the with block the hooks are gone
    assert len(rec.ratios) == 1


def test_update_ratio_of_adam_does_not_follow_the_gradient():
    torch.manual_seed(0)
    layer = nn.Linear(50, 40)
    lr, ratios = 1e-3, []
    for scale in (1.0, 1e-4):  # Adam's first step: -lr g / (|g| + eps) = about lr per weight, whatever |g|
        model = copy_of(layer)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        with UpdateRatioRecorder(model, opt) as rec:
            (scale * model(torch.randn(8, 50)).square().sum()).backward()
            opt.step()
        ratios.append(rec.ratios[0][0])
    expected = lr * math.sqrt(layer.weight.numel()) / float(layer.weight.norm())
    assert ratios == pytest.approx([expected, expected], rel=1e-3)
    with pytest.raises(ValueError, match="Linear"):
        UpdateRatioRecorder(nn.ReLU(), opt)


def copy_of(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module)


def test_zero_initialisation_only_the_output_bias_learns(blobs):
    model = initialize(MLP(6, (8, 8), 3), "zeros")
    x, y = torch.as_tensor(blobs[0], dtype=torch.float32), torch.as_tensor(blobs[1])
    grads = dict(zip([n for n, _ in model.named_parameters()],
                     torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters())), strict=True))
    assert [n for n, g in grads.items() if g.abs().max() > 0] == ["net.5.bias"]
    h = fit_with_history(model, *blobs, epochs=60, lr=2.0, batch_size=400, optimizer="sgd", progress=False,
                         track_updates=True)  # full batches: no mini-batch noise around the prior
    changed = [n for n, p in model.named_parameters() if p.abs().max() > 0]
    assert changed == ["net.5.bias"]
    prior = np.bincount(blobs[1], minlength=3) / len(blobs[1])
    assert torch.softmax(model.net[5].bias.detach(), 0).numpy() == pytest.approx(prior, abs=0.01)
    assert h.train_loss[-1] < h.train_loss[0]  # the class prior is learned...
    assert h.train_loss[-1] == pytest.approx(-(prior * np.log(prior)).sum(), abs=1e-3)  # ...and nothing else
    assert all(math.isnan(r) for step in h.update_ratios for r in step)  # zero weights never move


def test_feature_maps_are_the_modules_outputs():
    from bigtrain_lab.models import CNN

    torch.manual_seed(0)
    cnn, x = CNN(), torch.randn(3, 1, 8, 8)
    maps = feature_maps(cnn, x, ["features.1", "features.4"])
    assert maps["features.1"].shape == (3, 16, 8, 8) and maps["features.4"].shape == (3, 32, 4, 4)
    assert torch.equal(maps["features.1"], torch.relu(cnn.features[0](x)).detach())
    with pytest.raises(ValueError, match="no module"):
        feature_maps(cnn, x, ["conv9"])


def test_layer_statistics_saturation_and_errors():
    torch.manual_seed(0)
    model = initialize(MLP(6, (8,), 2, activation="tanh"), "too_large")
    stats = layer_statistics(model, torch.randn(64, 6) * 3, torch.randint(0, 2, (64,)))
    assert stats[0].saturated_fraction > 0.5 and math.isnan(stats[0].dead_fraction)
    with pytest.raises(ValueError, match="activation"):
        layer_statistics(nn.Linear(3, 2), torch.randn(4, 3), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_initialize_schemes(scheme):
    model = initialize(MLP(20, (50, 50), 3), scheme, seed=1)
    w = model.net[3].weight.detach()
    b = model.net[3].bias.detach()
    if scheme == "kaiming":
        assert float(w.std()) == pytest.approx(math.sqrt(2 / 50), rel=0.1) and torch.all(b == 0)
    elif scheme == "too_small":
        assert float(w.std()) == pytest.approx(0.01, rel=0.1)
    elif scheme == "too_large":
        assert float(w.std()) == pytest.approx(1.0, rel=0.1)
    elif scheme == "zeros":
        assert torch.all(w == 0) and torch.all(b == 0)
    elif scheme == "dead_relu":
        assert torch.all(b == -3.0)
    else:
        assert float(w.abs().max()) <= 1 / math.sqrt(50) + 1e-6  # PyTorch's U(+-1/sqrt(fan_in))
    again = initialize(MLP(20, (50, 50), 3), scheme, seed=1)
    assert torch.equal(again.net[3].weight, model.net[3].weight)
    with pytest.raises(ValueError, match="scheme"):
        initialize(model, "xavier_magic")


def test_broken_inits_show_in_the_statistics():
    torch.manual_seed(0)
    x, y = torch.rand(128, 20), torch.randint(0, 3, (128,))
    deep = lambda scheme: initialize(MLP(20, (32,) * 6, 3), scheme, seed=0)  # noqa: E731
    good = layer_statistics(deep("kaiming"), x, y)
    small = layer_statistics(deep("too_small"), x, y)
    large = layer_statistics(deep("too_large"), x, y)
    dead = layer_statistics(deep("dead_relu"), x, y)
    assert small[-1].act_std < 1e-8 < good[-1].act_std  # vanishing
    assert large[-1].act_std > 100 * large[0].act_std  # exploding
    assert all(s.dead_fraction == 1.0 and s.grad_norm == 0.0 for s in dead)
    assert all(s.grad_norm == 0.0 for s in layer_statistics(deep("zeros"), x, y))


def test_fit_with_history_records_and_learns(blobs):
    torch.manual_seed(0)
    calls = []
    h = fit_with_history(MLP(6, (16,), 3), *blobs, epochs=4, lr=1e-2, stats_every=2, progress=False,
                         callbacks=[lambda hist: calls.append(len(hist.epochs))])
    assert h.epochs == [0, 1, 2, 3, 4] and calls == [2, 3, 4, 5]
    assert h.stats_epochs == [0, 2, 4] and len(h.layer_stats) == 3
    assert h.update_ratios == []  # only with track_updates
    assert h.val_acc[-1] > 0.9 and h.train_loss[-1] < h.train_loss[0]
    assert h.best_epoch() in h.epochs
    with pytest.raises(ValueError, match="optimizer"):
        fit_with_history(MLP(6, (4,), 3), *blobs, epochs=1, optimizer="lbfgs", progress=False)


def test_fit_with_history_stops_on_divergence(blobs):
    model = initialize(MLP(6, (64,) * 4, 3), "too_large", seed=0)
    h = fit_with_history(model, *blobs, epochs=5, lr=10.0, optimizer="sgd", progress=False)
    assert not math.isfinite(h.train_loss[-1]) and h.epochs[-1] < 5


def test_diagnose_fit_verdicts():
    over = History(epochs=[0, 1, 2, 3], train_loss=[2.3, 1.0, 0.3, 0.05], val_loss=[2.3, 1.0, 0.9, 1.4],
                   train_acc=[0] * 4, val_acc=[0] * 4)
    under = History(epochs=[0, 1, 2], train_loss=[2.3, 2.2, 2.1], val_loss=[2.3, 2.2, 2.1], train_acc=[0] * 3,
                    val_acc=[0] * 3)
    good = History(epochs=[0, 1, 2], train_loss=[2.3, 0.5, 0.3], val_loss=[2.3, 0.6, 0.4], train_acc=[0] * 3,
                   val_acc=[0] * 3)
    assert diagnose_fit(over)["verdict"] == "overfitting" and diagnose_fit(over)["best_epoch"] == 2
    assert diagnose_fit(under)["verdict"] == "underfitting"
    assert diagnose_fit(good)["verdict"] == "good fit"


def test_lr_finder_restores_the_model_and_finds_a_working_lr(blobs):
    torch.manual_seed(0)
    model = MLP(6, (32,), 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = lr_finder(model, blobs[0], blobs[1], min_lr=1e-5, max_lr=100.0, steps=80, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert np.allclose(np.diff(np.log(result.lrs)), np.log(result.lrs[1] / result.lrs[0]))
    assert result.diverged_at is not None and result.suggestion < result.diverged_at
    assert 1e-5 < result.suggestion <= result.min_loss_lr
    trained = fit_with_history(model, *blobs, epochs=3, lr=result.suggestion, optimizer="sgd", momentum=0.9,
                               progress=False)
    assert trained.val_acc[-1] > 0.9
    with pytest.raises(ValueError):
        lr_finder(model, blobs[0], blobs[1], min_lr=1.0, max_lr=0.1)


def test_live_curves_data_and_redraw(blobs):
    live = LiveCurves(history_curves, accuracy_panel=True, display=False)
    h = fit_with_history(MLP(6, (8,), 3), *blobs, epochs=2, progress=False, callbacks=[live])
    data = history_curves(h)
    assert list(data) == ["train loss", "val loss", "train acc", "val acc"]
    assert data["val acc"] == (h.epochs, h.val_acc)
    assert list(live.figure.data[1].y) == h.val_loss
    assert [t.xaxis for t in live.figure.data] == ["x", "x", "x2", "x2"]  # accuracy in the second panel


def test_layer_stats_view_and_explorer(blobs):
    histories = {s: fit_with_history(initialize(MLP(6, (8, 8), 3), s), *blobs, epochs=2, stats_every=1,
                                     progress=False) for s in ("kaiming", "dead_relu")}
    view = layer_stats_view(histories, "dead_relu", 1)
    recorded = histories["dead_relu"].layer_stats[1]
    assert view.epoch == 1 and view.layers == ["net.2", "net.4"]
    assert view.dead_fraction == [s.dead_fraction for s in recorded]
    assert view.grad_norm == [s.grad_norm for s in recorded]
    assert view.val_acc == histories["dead_relu"].val_acc[1]
    with pytest.raises(ValueError, match="scheme"):
        layer_stats_view(histories, "zeros", 0)
    with pytest.raises(ValueError, match="checkpoint"):
        layer_stats_view(histories, "kaiming", 5)
    explorer = LayerStatsExplorer(histories, scheme="kaiming")
    explorer.slider.value = 2
    assert explorer.view().epoch == 2
    assert list(explorer.figure.data[0].y) == pytest.approx(layer_stats_view(histories, "kaiming", 2).act_std)
    explorer.dropdown.value = "dead_relu"
    dead = layer_stats_view(histories, "dead_relu", 2)
    assert list(explorer.figure.data[2].y) == dead.dead_fraction
    expected = [g if g > 0 else None for g in dead.grad_norm]  # zero gradients: gaps on the log axis
    assert list(explorer.figure.data[1].y) == pytest.approx(expected) if None not in expected \
        else list(explorer.figure.data[1].y) == expected
