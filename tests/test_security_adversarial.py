"""bigtrain_lab.security.adversarial: FGSM and PGD against hand-written references, their guarantees (no
parameter gradients, input untouched, mode kept, clamping), bad inputs, and adversarial training."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.compress.digits import load_digits
from bigtrain_lab.fit import accuracy, fit_classifier
from bigtrain_lab.models import CNN, MLP
from bigtrain_lab.security.adversarial import (
    accuracy_under_attack,
    adversarial_training,
    attack,
    attack_success_rate,
    fgsm,
    pgd,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def trained_mlp(digits):
    torch.manual_seed(0)
    model = MLP(64, (64,), 10)
    fit_classifier(model, digits.X_train, digits.y_train, epochs=5)
    return model.eval()


def reference_fgsm(model, x, y, eps, clamp=(0.0, 1.0)):
    """FGSM written the textbook way, with .grad on a leaf input."""
    x_ref = x.clone().detach().requires_grad_(True)
    loss = F.cross_entropy(model(x_ref), y)
    loss.backward()
    out = x_ref.detach() + eps * x_ref.grad.sign()
    model.zero_grad(set_to_none=True)
    return out if clamp is None else torch.clamp(out, *clamp)


def reference_pgd(model, x, y, eps, alpha, steps, clamp, start_noise):
    """PGD written the textbook way (Madry et al.): start, then step, project onto the ball, clamp."""
    x_adv = torch.clamp(x + start_noise, *clamp) if clamp else x + start_noise
    for _ in range(steps):
        x_adv = x_adv.clone().detach().requires_grad_(True)
        F.cross_entropy(model(x_adv), y).backward()
        x_adv = x_adv.detach() + alpha * x_adv.grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
        if clamp:
            x_adv = torch.clamp(x_adv, *clamp)
    model.zero_grad(set_to_none=True)
    return x_adv.detach()


def batch(shape, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *shape), generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("make, shape", [(lambda: CNN(), (1, 8, 8)), (lambda: MLP(64, (32,), 10), (64,))],
                         ids=["cnn", "mlp"])
@pytest.mark.parametrize("clamp", [(0.0, 1.0), None, (0.2, 0.7)])
def test_fgsm_equals_the_hand_written_reference(make, shape, clamp):
    torch.manual_seed(0)
    model = make().eval()
    x, y = batch(shape)
    out = fgsm(model, x, y, eps=0.1, clamp=clamp)
    assert out.shape == x.shape and out.dtype == x.dtype and not out.requires_grad
    assert torch.equal(out, reference_fgsm(model, x, y, 0.1, clamp))
    if clamp is None:
        assert torch.allclose((out - x).abs(), torch.full_like(x, 0.1))  # every pixel moved by eps (no zero grads here)


def test_fgsm_leaves_the_input_the_parameters_and_the_mode_alone():
    torch.manual_seed(0)
    model = MLP(64, (32,), 10, dropout=0.0)
    x, y = batch((64,))
    x_before = x.clone()
    for training in (True, False):
        model.train(training)
        fgsm(model, x, y, eps=0.05)
        assert model.training is training
    assert torch.equal(x, x_before)
    assert all(p.grad is None for p in model.parameters())
    leaf = x.clone().requires_grad_(True)  # an input that itself requires grad
    out = fgsm(model, leaf, y, eps=0.05)
    assert leaf.grad is None and not out.requires_grad


def test_fgsm_keeps_a_float64_input_float64():
    torch.manual_seed(0)
    model = MLP(64, (16,), 10).double().eval()
    x, y = batch((64,))
    out = fgsm(model, x.double(), y, eps=0.1)
    assert out.dtype == torch.float64
    assert torch.equal(out, reference_fgsm(model, x.double(), y, 0.1))


def test_fgsm_raises_the_loss_on_average(trained_mlp, digits):
    x, y = digits.X_test, digits.y_test
    with torch.no_grad():
        clean = F.cross_entropy(trained_mlp(x), y, reduction="none")
        adv = F.cross_entropy(trained_mlp(fgsm(trained_mlp, x, y, eps=0.1)), y, reduction="none")
    assert adv.mean() > clean.mean() + 0.5
    assert (adv > clean).double().mean() > 0.9


def test_fgsm_takes_numpy_scalars_as_eps():
    torch.manual_seed(0)
    model = MLP(64, (16,), 10).eval()
    x, y = batch((64,))
    assert torch.equal(fgsm(model, x, y, eps=np.float32(0.1)), fgsm(model, x, y, eps=float(np.float32(0.1))))
    assert torch.equal(fgsm(model, x, y, eps=np.int64(0)), x)


def test_fgsm_with_eps_0_is_the_identity_clamped():
    model = MLP(64, (16,), 10).eval()
    x, y = batch((64,))
    assert torch.equal(fgsm(model, x, y, eps=0), x)
    wide = x * 3 - 1  # values in [-1, 2]
    assert torch.equal(fgsm(model, wide, y, eps=0.0), wide.clamp(0, 1))
    assert torch.equal(fgsm(model, wide, y, eps=0.0, clamp=None), wide)


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": -0.1}, "eps"),
    ({"eps": math.nan}, "eps"),
    ({"eps": math.inf}, "eps"),
    ({"eps": True}, "eps"),
    ({"eps": 0.1, "clamp": (1.0, 0.0)}, "lo <= hi"),
    ({"eps": 0.1, "clamp": (0.0,)}, "clamp"),
])
def test_fgsm_refuses_bad_arguments(kwargs, match):
    model = MLP(64, (16,), 10)
    x, y = batch((64,))
    with pytest.raises(ValueError, match=match):
        fgsm(model, x, y, **kwargs)


def test_fgsm_refuses_a_batch_size_mismatch():
    model = MLP(64, (16,), 10)
    x, y = batch((64,))
    with pytest.raises(ValueError, match="batch size"):
        fgsm(model, x, y[:-1], eps=0.1)


@pytest.mark.parametrize("clamp", [(0.0, 1.0), None])
def test_pgd_equals_the_hand_written_reference(clamp):
    torch.manual_seed(0)
    model = CNN().eval()
    x, y = batch((1, 8, 8))
    eps, alpha, steps = 0.1, 0.03, 7
    out = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, clamp=clamp, generator=torch.Generator().manual_seed(5))
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(5)) * (2 * eps) - eps
    assert torch.equal(out, reference_pgd(model, x, y, eps, alpha, steps, clamp, noise))
    assert (out - x).abs().max() <= eps + 1e-6
    if clamp:
        assert out.min() >= 0 and out.max() <= 1
    assert all(p.grad is None for p in model.parameters())


def test_pgd_with_one_full_step_and_no_random_start_is_fgsm():
    torch.manual_seed(0)
    model = MLP(64, (32,), 10).eval()
    x, y = batch((64,))
    assert torch.equal(pgd(model, x, y, eps=0.1, alpha=0.1, steps=1, random_start=False), fgsm(model, x, y, eps=0.1))


def test_pgd_is_at_least_as_strong_as_fgsm_at_the_same_eps(trained_mlp, digits):
    x, y = digits.X_test, digits.y_test
    with torch.no_grad():
        loss_fgsm = F.cross_entropy(trained_mlp(fgsm(trained_mlp, x, y, eps=0.1)), y)
        loss_pgd = F.cross_entropy(trained_mlp(attack(trained_mlp, x, y, kind="pgd", eps=0.1, steps=10,
                                                       generator=torch.Generator().manual_seed(0))), y)
    assert loss_pgd > loss_fgsm
    assert accuracy_under_attack(trained_mlp, x, y, kind="pgd", eps=0.1) <= \
        accuracy_under_attack(trained_mlp, x, y, kind="fgsm", eps=0.1)


def test_pgd_is_reproducible_with_a_generator_and_keeps_the_mode():
    model = MLP(64, (16,), 10).train()
    x, y = batch((64,))
    a = pgd(model, x, y, eps=0.1, alpha=0.02, steps=3, generator=torch.Generator().manual_seed(1))
    b = pgd(model, x, y, eps=0.1, alpha=0.02, steps=3, generator=torch.Generator().manual_seed(1))
    c = pgd(model, x, y, eps=0.1, alpha=0.02, steps=3, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c) and model.training
    start_only = pgd(model, x, y, eps=0.1, alpha=0.02, steps=0, generator=torch.Generator().manual_seed(1))
    assert 0 < (start_only - x).abs().max() <= 0.1 + 1e-6
    assert torch.equal(pgd(model, x, y, eps=0, alpha=0.02, steps=3), x)


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": 0.1, "alpha": -1.0, "steps": 3}, "alpha"),
    ({"eps": 0.1, "alpha": 0.01, "steps": -1}, "steps"),
    ({"eps": 0.1, "alpha": 0.01, "steps": 2.0}, "steps"),
    ({"eps": -0.1, "alpha": 0.01, "steps": 2}, "eps"),
    ({"eps": 0.1, "alpha": 0.01, "steps": 2, "clamp": (1, 0)}, "lo <= hi"),
])
def test_pgd_refuses_bad_arguments(kwargs, match):
    model = MLP(64, (16,), 10)
    x, y = batch((64,))
    with pytest.raises(ValueError, match=match):
        pgd(model, x, y, **kwargs)
    with pytest.raises(ValueError, match="batch size"):
        pgd(model, x[:3], y, eps=0.1, alpha=0.01, steps=1)


def test_attack_by_name_and_accuracy_under_attack(trained_mlp, digits):
    x, y = digits.X_test, digits.y_test
    with pytest.raises(ValueError, match="kind"):
        attack(trained_mlp, x, y, kind="cw", eps=0.1)
    trained_mlp.train()
    assert accuracy_under_attack(trained_mlp, x, y, kind="fgsm", eps=0.0) == accuracy(trained_mlp, x, y)
    assert trained_mlp.training  # mode restored
    trained_mlp.eval()
    curve = [accuracy_under_attack(trained_mlp, x, y, kind="pgd", eps=e, steps=5) for e in (0.0, 0.05, 0.1, 0.2)]
    assert curve == sorted(curve, reverse=True) and curve[-1] < 0.2 < 0.9 < curve[0]


def test_attack_success_rate_counts_only_rows_first_classified_right():
    class Fixed(nn.Module):  # predicts argmax of the first 3 inputs
        def forward(self, x):
            return x[:, :3]

    model = Fixed()
    y = torch.tensor([0, 1, 2, 0])
    clean = torch.eye(3)[[0, 1, 2, 1]]  # the last row is already wrong
    adv = torch.eye(3)[[1, 1, 0, 0]]  # rows 0 and 2 fooled, row 3 "fixed" (not counted)
    assert attack_success_rate(model, clean, adv, y) == pytest.approx(2 / 3)
    assert math.isnan(attack_success_rate(model, clean[3:], adv[3:], y[3:]))
    with pytest.raises(ValueError, match="batch size"):
        attack_success_rate(model, clean, adv[:2], y)


def test_adversarial_training_buys_robustness(digits):
    torch.manual_seed(0)
    standard = MLP(64, (64,), 10)
    fit_classifier(standard, digits.X_train, digits.y_train, epochs=8)
    torch.manual_seed(0)
    robust = MLP(64, (64,), 10)
    result = adversarial_training(robust, digits.X_train, digits.y_train, kind="pgd", eps=0.1, steps=3, epochs=8)
    assert len(result.losses) == 8 * (len(digits.X_train) // 64)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in robust.parameters())
    x, y = digits.X_test, digits.y_test
    robust_acc = accuracy_under_attack(robust, x, y, kind="pgd", eps=0.1)
    standard_acc = accuracy_under_attack(standard, x, y, kind="pgd", eps=0.1)
    assert robust_acc > standard_acc + 0.1  # measured: 0.70 vs 0.52
    assert accuracy(robust, x, y) > 0.85
    torch.manual_seed(0)
    fgsm_trained = MLP(64, (64,), 10)
    adversarial_training(fgsm_trained, digits.X_train, digits.y_train, kind="fgsm", eps=0.1, epochs=3, clean_weight=0.5)
    assert accuracy(fgsm_trained, x, y) > 0.8
    with pytest.raises(ValueError, match="clean_weight"):
        adversarial_training(MLP(64, (8,), 10), x, y, eps=0.1, clean_weight=2.0)
    with pytest.raises(ValueError, match="kind"):
        adversarial_training(MLP(64, (8,), 10), x, y, eps=0.1, kind="pgd2")
