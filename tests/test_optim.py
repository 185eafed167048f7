"""Optimizer helpers: surfaces, trajectories of torch.optim, L2 vs decoupled decay, margin losses, batches;
and the graded SGD / AdamW references against torch.optim's classes over many steps."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import hinge_loss, log_loss

from bigtrain_lab.grading import get_exercise
from bigtrain_lab.models import MLP
from bigtrain_lab.optim import (
    OPTIMIZER_NAMES,
    SURFACES,
    make_optimizer,
    margin_losses,
    run_trajectory,
    surface_grid,
    weight_decay_variants,
)


@pytest.mark.parametrize(("name", "cls", "extra"), [
    ("sgd", torch.optim.SGD, {"momentum": 0}), ("momentum", torch.optim.SGD, {"momentum": 0.9, "nesterov": False}),
    ("nesterov", torch.optim.SGD, {"nesterov": True}), ("adagrad", torch.optim.Adagrad, {}),
    ("rmsprop", torch.optim.RMSprop, {}), ("adadelta", torch.optim.Adadelta, {}),
    ("adam", torch.optim.Adam, {"decoupled_weight_decay": False}), ("adamw", torch.optim.AdamW, {}),
])
def test_make_optimizer(name, cls, extra):
    opt = make_optimizer(name, [torch.zeros(2, requires_grad=True)], lr=0.01, weight_decay=0.1)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.01 and group["weight_decay"] == 0.1
    for key, value in extra.items():
        assert group[key] == value


def test_make_optimizer_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("lion", [torch.zeros(1, requires_grad=True)], lr=0.1)


@pytest.mark.parametrize("surface", list(SURFACES.values()), ids=list(SURFACES))
def test_surface_minima_are_stationary_and_lowest(surface):
    for x, y in surface.minima:
        point = torch.tensor([x, y], dtype=torch.float64, requires_grad=True)
        value = surface(point[0], point[1])
        (grad,) = torch.autograd.grad(value, point)
        assert float(value.detach()) < 1e-9 and float(grad.abs().max()) < 1e-4
    xs, ys, z = surface_grid(surface, n=50)
    assert z.shape == (50, 50) and z.min() >= 0
    assert z[7, 3] == pytest.approx(float(surface(xs[3], ys[7])))
    assert set(surface.lrs) == set(OPTIMIZER_NAMES)


def test_trajectory_is_what_a_plain_torch_loop_gives():
    path = run_trajectory("rosenbrock", "adam", lr=0.05, steps=50)
    point = torch.tensor(SURFACES["rosenbrock"].start, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([point], lr=0.05)
    for _ in range(50):
        opt.zero_grad()
        SURFACES["rosenbrock"](point[0], point[1]).backward()
        opt.step()
    assert path.xy.shape == (51, 2) and path.losses.shape == (51,)
    np.testing.assert_array_equal(path.xy[0], SURFACES["rosenbrock"].start)
    np.testing.assert_allclose(path.xy[-1], point.detach().numpy(), rtol=0, atol=0)
    assert not path.diverged and path.final_loss < path.losses[0]


@pytest.mark.parametrize("surface", list(SURFACES))
@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_the_tuned_lrs_make_progress(surface, optimizer):
    path = run_trajectory(surface, optimizer)
    assert not path.diverged and len(path.losses) == SURFACES[surface].steps + 1
    assert path.final_loss < 0.5 * path.losses[0]


def test_divergence_is_detected():
    # SGD on a quadratic diverges when lr > 2 / largest curvature (= 2 / 10 here)
    path = run_trajectory("ill_conditioned", "sgd", lr=0.25, steps=500)
    assert path.diverged and len(path.losses) < 501
    assert not run_trajectory("ill_conditioned", "sgd", lr=0.19, steps=500).diverged
    with pytest.raises(ValueError, match="lr"):
        run_trajectory("rosenbrock", "sgd", lr=0.0)
    with pytest.raises(ValueError, match="unknown surface"):
        run_trajectory("beale", "sgd", lr=0.1)


@pytest.fixture(scope="module")
def small_problem():
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.normal(size=(64, 8)))
    y = torch.tensor(rng.integers(0, 3, 64))
    torch.manual_seed(0)
    return MLP(8, (16,), 3).double(), X, y


def test_l2_and_decoupled_decay_coincide_for_sgd(small_problem):
    model, X, y = small_problem
    out = weight_decay_variants("sgd", model, X, y, lr=0.1, weight_decay=0.05, steps=30)
    reference = out["L2 in the loss"]
    for variant, params in out.items():
        np.testing.assert_allclose(params, reference, rtol=1e-12, atol=1e-12, err_msg=variant)
    untouched = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert not torch.allclose(untouched, reference)  # the copies trained, the model handed in did not


def test_l2_and_decoupled_decay_differ_for_adam(small_problem):
    model, X, y = small_problem
    out = weight_decay_variants("adam", model, X, y, lr=0.01, weight_decay=0.05, steps=30)
    np.testing.assert_allclose(out["weight_decay argument"], out["L2 in the loss"], rtol=1e-10, atol=1e-12)
    assert float((out["decoupled"] - out["L2 in the loss"]).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="sgd' or 'adam"):
        weight_decay_variants("rmsprop", model, X, y, lr=0.1, weight_decay=0.1, steps=1)


def test_margin_losses_match_sklearn_and_torch():
    rng = np.random.default_rng(0)
    y = rng.choice([-1, 1], 200)
    score = rng.normal(0, 2, 200)
    losses = margin_losses(y * score)
    assert np.mean(losses["hinge"]) == pytest.approx(hinge_loss(y, score))
    p = 1 / (1 + np.exp(-score))
    assert np.mean(losses["log loss"]) == pytest.approx(log_loss(y, p))
    bce = F.binary_cross_entropy_with_logits(torch.tensor(score), torch.tensor((y + 1) / 2.0))
    assert np.mean(losses["log loss"]) == pytest.approx(float(bce))
    assert np.mean(losses["0-1"]) == pytest.approx(np.mean(np.sign(score) != y))
    m = np.array([-1.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(margin_losses(m)["hinge"], [2, 1, 0, 0])
    np.testing.assert_allclose(margin_losses(m)["squared"], [4, 1, 0, 1])
    # every surrogate is an upper bound of the 0-1 loss (log loss in base 2)
    grid = np.linspace(-3, 3, 601)
    surrogate = margin_losses(grid)
    for name in ("hinge", "squared", "exponential"):
        assert np.all(surrogate[name] >= surrogate["0-1"])
    assert np.all(surrogate["log loss"] / np.log(2) >= surrogate["0-1"] - 1e-12)


# ---- the graded references are torch.optim's classes, over many steps -----------------------------

def _grads(n, shape, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=dtype) for _ in range(n)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("hyper", [
    {"lr": 0.1}, {"lr": 0.05, "momentum": 0.9}, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
    {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1},
])
def test_graded_sgd_reference_equals_torch_sgd_bit_for_bit(dtype, hyper):
    reference = get_exercise("optim.sgd_step").reference
    start = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=dtype)
    grads = _grads(25, (3, 4), dtype, 2)
    param = start.clone().requires_grad_(True)
    opt = torch.optim.SGD([param], **hyper)
    p, buf = start.clone(), None
    for g in grads:
        param.grad = g.clone()
        opt.step()
        p, buf = reference(p, g, buf, **hyper)
        assert torch.equal(p, param.detach())
        if hyper.get("momentum"):
            assert torch.equal(buf, opt.state[param]["momentum_buffer"])
        else:
            assert buf is None


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("hyper", [
    {"lr": 1e-2}, {"lr": 1e-3, "weight_decay": 0.1}, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3},
])
def test_graded_adamw_reference_equals_torch_adamw_bit_for_bit(dtype, hyper):
    reference = get_exercise("optim.adamw_step").reference
    start = torch.randn(5, generator=torch.Generator().manual_seed(3), dtype=dtype)
    grads = _grads(30, (5,), dtype, 4)
    param = start.clone().requires_grad_(True)
    opt = torch.optim.AdamW([param], **hyper)
    p, m, v = start.clone(), torch.zeros_like(start), torch.zeros_like(start)
    for step, g in enumerate(grads, start=1):
        param.grad = g.clone()
        opt.step()
        p, m, v = reference(p, g, m, v, step, **hyper)
        state = opt.state[param]
        assert torch.equal(p, param.detach())
        assert torch.equal(m, state["exp_avg"]) and torch.equal(v, state["exp_avg_sq"])


# ---- L1 versus L2 penalties ------------------------------------------------------------------------

def test_l1_makes_weights_zero_and_l2_shrinks_the_largest():
    from sklearn.datasets import make_classification

    from bigtrain_lab.optim import penalized_softmax_regression

    X, y = make_classification(n_samples=300, n_features=20, n_informative=2, n_redundant=0, class_sep=2.0,
                               flip_y=0, random_state=0)  # 2 useful features of 20
    X, y = torch.tensor(X), torch.tensor(y)
    weights = {p: penalized_softmax_regression(X, y, penalty=p, strength=s, steps=300, lr=0.5)[0].abs()
               for p, s in (("none", 0.0), ("l1", 0.01), ("l2", 0.03))}
    near_zero = {p: float((w < 1e-2).double().mean()) for p, w in weights.items()}
    assert near_zero["l1"] > 0.5 > near_zero["l2"] and near_zero["none"] < 0.2
    assert weights["l2"].max() < 0.8 * weights["l1"].max()  # L2 shrinks the large weights more than L1
    with pytest.raises(ValueError, match="penalty must be one of"):
        penalized_softmax_regression(X, y, penalty="elastic", strength=0.1)
