"""DP-SGD from scratch (``bigtrain_lab.privacy.dpsgd``) against a per-example autograd loop and opacus."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.models import CNN, MLP
from bigtrain_lab.privacy.dpsgd import (
    clip_and_noise,
    clipped_noisy_sum,
    per_sample_gradients,
    poisson_batch,
    train_dp,
)
from bigtrain_lab.privacy.opacus_check import opacus_dp_gradient, opacus_grad_samples


def _batch(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 64, generator=g), torch.randint(0, 10, (n,), generator=g)


def _loop(model, loss_fn, x, y):
    rows = []
    for i in range(len(x)):
        model.zero_grad()
        loss_fn(model(x[i:i + 1]), y[i:i + 1]).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.requires_grad]))
    model.zero_grad(set_to_none=True)
    return torch.stack(rows)


@pytest.mark.parametrize("make", [lambda: MLP(64, (16, 8), 10), lambda: CNN(channels=(4, 8), hidden=16)],
                         ids=["mlp", "cnn"])
def test_per_sample_gradients_equal_a_loop_of_autograd(make):
    torch.manual_seed(0)
    model = make()
    x, y = _batch()
    before = [p.detach().clone() for p in model.parameters()]
    got = per_sample_gradients(model, F.cross_entropy, x, y)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert got.shape == (12, sum(p.numel() for p in model.parameters()))
    torch.testing.assert_close(got, _loop(model, F.cross_entropy, x, y), atol=1e-6, rtol=1e-5)


def test_per_sample_gradients_skip_frozen_parameters_and_keep_order():
    torch.manual_seed(0)
    model = MLP(64, (8,), 10)
    model.net[1].weight.requires_grad_(False)
    x, y = _batch(5)
    got = per_sample_gradients(model, F.cross_entropy, x, y)
    assert got.shape == (5, 8 + 8 * 10 + 10)
    torch.testing.assert_close(got, _loop(model, F.cross_entropy, x, y), atol=1e-6, rtol=1e-5)
    # a batch of one is the ordinary gradient
    model.zero_grad()
    F.cross_entropy(model(x[:1]), y[:1]).backward()
    first = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.requires_grad])
    torch.testing.assert_close(per_sample_gradients(model, F.cross_entropy, x[:1], y[:1])[0], first)


@pytest.mark.parametrize("make", [lambda: MLP(64, (16,), 10), lambda: CNN(channels=(4, 8), hidden=16)],
                         ids=["mlp", "cnn"])
def test_per_sample_gradients_equal_opacus_grad_sample(make):
    torch.manual_seed(1)
    model = make()
    x, y = _batch(16, seed=1)
    ours = per_sample_gradients(model, F.cross_entropy, x, y)
    # opacus with loss_reduction="mean" rescales the mean loss's backprops by B: each example's own gradient
    torch.testing.assert_close(opacus_grad_samples(model, F.cross_entropy, x, y), ours, atol=1e-6, rtol=1e-5)
    # told "sum" while the loss is a mean, its grad_sample is 1/B of it: the reduction must match the loss
    torch.testing.assert_close(opacus_grad_samples(model, F.cross_entropy, x, y, loss_reduction="sum"), ours / 16,
                               atol=1e-7, rtol=1e-5)


def test_per_sample_gradients_reject_bad_batches():
    model = MLP(64, (8,), 10)
    x, y = _batch(4)
    with pytest.raises(ValueError, match="same non-zero batch"):
        per_sample_gradients(model, F.cross_entropy, x, y[:3])
    with pytest.raises(ValueError, match="same non-zero batch"):
        per_sample_gradients(model, F.cross_entropy, x[:0], y[:0])
    frozen = nn.Linear(64, 10).requires_grad_(False)
    with pytest.raises(ValueError, match="no parameter"):
        per_sample_gradients(frozen, F.cross_entropy, x, y)


def _hand_clip(g, c):
    out = torch.zeros(g.shape[1], dtype=g.dtype)
    for row in g:
        out += row * min(1.0, c / (float(row.norm()) + 1e-6))
    return out / len(g)


def test_clip_and_noise_without_noise_is_the_mean_of_clipped_rows():
    g = torch.randn(9, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    g[0] *= 1e-3  # one row shorter than the norm: left as it is
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state()
    got = clip_and_noise(g, max_norm=1.5, noise_multiplier=0.0, generator=gen)
    torch.testing.assert_close(got, _hand_clip(g, 1.5))
    assert torch.equal(gen.get_state(), state), "no noise drawn when the std is 0"
    assert got.shape == (30,)


def test_clip_and_noise_draws_its_noise_exactly_so():
    g = torch.randn(6, 20, generator=torch.Generator().manual_seed(1))
    got = clip_and_noise(g, max_norm=0.7, noise_multiplier=1.3, generator=torch.Generator().manual_seed(3))
    noise = torch.normal(0.0, 1.3 * 0.7, size=(20,), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, _hand_clip(g, 0.7) + noise / 6)


def test_clip_and_noise_equals_opacus_dp_optimizer():
    torch.manual_seed(2)
    model = MLP(64, (16,), 10)
    x, y = _batch(24, seed=2)
    ours = clip_and_noise(per_sample_gradients(model, F.cross_entropy, x, y), max_norm=0.1, noise_multiplier=0.0,
                          generator=torch.Generator())
    theirs = opacus_dp_gradient(model, F.cross_entropy, x, y, max_norm=0.1, noise_multiplier=0.0)
    torch.testing.assert_close(ours, theirs, atol=1e-7, rtol=1e-5)
    assert float(ours.norm()) <= 0.1 + 1e-6  # a mean of vectors of norm <= C


def test_noise_has_std_noise_multiplier_times_max_norm_over_b():
    torch.manual_seed(3)
    model = MLP(64, (64,), 10)
    x, y = _batch(32, seed=3)
    g = per_sample_gradients(model, F.cross_entropy, x, y)
    clean = clip_and_noise(g, max_norm=0.5, noise_multiplier=0.0, generator=torch.Generator())
    expected = 2.0 * 0.5 / 32
    ours = clip_and_noise(g, max_norm=0.5, noise_multiplier=2.0, generator=torch.Generator().manual_seed(0)) - clean
    theirs = opacus_dp_gradient(model, F.cross_entropy, x, y, max_norm=0.5, noise_multiplier=2.0,
                                generator=torch.Generator().manual_seed(0)) - clean
    for residual in (ours, theirs):  # P = 4810 draws: the sample std is within a few % of the truth
        assert abs(float(residual.std()) / expected - 1) < 0.05
        assert abs(float(residual.mean())) < 4 * expected / math.sqrt(len(residual))


@pytest.mark.parametrize("kwargs,match", [
    ({"max_norm": 0.0}, "max_norm"), ({"max_norm": -1.0}, "max_norm"), ({"max_norm": math.inf}, "max_norm"),
    ({"max_norm": math.nan}, "max_norm"), ({"noise_multiplier": -0.1}, "noise_multiplier"),
    ({"noise_multiplier": math.nan}, "noise_multiplier"), ({"noise_multiplier": math.inf}, "noise_multiplier"),
])
def test_clip_and_noise_rejects_bad_parameters(kwargs, match):
    args = {"max_norm": 1.0, "noise_multiplier": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        clip_and_noise(torch.ones(2, 3), generator=torch.Generator(), **args)


def test_clip_and_noise_rejects_bad_shapes_but_the_sum_takes_an_empty_batch():
    gen = torch.Generator()
    for bad in (torch.ones(3), torch.ones(2, 3, 4)):
        with pytest.raises(ValueError, match="2-D"):
            clip_and_noise(bad, max_norm=1.0, noise_multiplier=0.0, generator=gen)
    with pytest.raises(ValueError, match="B == 0"):
        clip_and_noise(torch.ones(0, 3), max_norm=1.0, noise_multiplier=0.0, generator=gen)
    assert torch.equal(clipped_noisy_sum(torch.ones(0, 3), max_norm=1.0, noise_multiplier=0.0, generator=gen),
                       torch.zeros(3))


def test_poisson_batches_have_the_expected_size():
    gen = torch.Generator().manual_seed(0)
    sizes = [len(poisson_batch(1000, 0.05, gen)) for _ in range(200)]
    assert abs(sum(sizes) / 200 - 50) < 2 and len(set(sizes)) > 5  # the size varies: Poisson sampling
    with pytest.raises(ValueError, match="sample_rate"):
        poisson_batch(10, 0.0, gen)


def test_train_dp_learns_without_noise_and_is_reproducible():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 64, generator=g)
    w = torch.randn(64, 3, generator=g)
    y = (X @ w).argmax(1)

    def run(seed, sigma):
        torch.manual_seed(0)
        model = MLP(64, (), 3)
        result = train_dp(model, X, y, noise_multiplier=sigma, max_norm=1.0, sample_rate=0.1, steps=60, lr=0.5,
                          seed=seed)
        return model, result

    model, result = run(0, 0.0)
    assert float((model(X).argmax(1) == y).double().mean()) > 0.8
    assert len(result.batch_sizes) == 60 and abs(sum(result.batch_sizes) / 60 - 40) < 6
    assert all(p.grad is None for p in model.parameters())
    a, _ = run(1, 1.0)
    b, _ = run(1, 1.0)
    c, _ = run(2, 1.0)
    assert torch.equal(a.net[1].weight, b.net[1].weight) and not torch.equal(a.net[1].weight, c.net[1].weight)
    with pytest.raises(ValueError, match="steps"):
        train_dp(model, X, y, noise_multiplier=1.0, max_norm=1.0, sample_rate=0.1, steps=0)
