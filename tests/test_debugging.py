"""bigtrain_lab.debugging: numerical gradients against autograd, the buggy / fixed Functions under
gradcheck, and the sanity checks."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import gradcheck

from bigtrain_lab.debugging import (
    SiLU,
    SiLUFunction,
    SiLUWrongBackward,
    expected_initial_loss,
    initial_loss,
    numerical_gradient,
    overfit_one_batch,
    parameters_without_gradient,
    relative_error,
)
from bigtrain_lab.models import GPTConfig, TinyGPT


def autograd_gradient(f, x):
    x = x.detach().clone().requires_grad_(True)
    return torch.autograd.grad(f(x), x)[0]


@pytest.mark.parametrize("f", [lambda x: (x**2).sum(), lambda x: torch.sin(50 * x).sum(),
                               lambda x: torch.logsumexp(x.reshape(-1), 0), lambda x: (x**4).sum() + x.sum() ** 2])
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_numerical_gradient_matches_autograd(f, shape):
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x_before = x.clone()
    grad = numerical_gradient(f, x)
    assert grad.dtype == torch.float64 and grad.shape == x.shape
    torch.testing.assert_close(grad, autograd_gradient(f, x), rtol=1e-6, atol=1e-7)
    assert torch.equal(x, x_before)


def test_numerical_gradient_of_a_black_box_and_float32_input():
    x = torch.randn(4, generator=torch.Generator().manual_seed(1))
    grad = numerical_gradient(lambda t: torch.tensor(float((t.numpy() ** 3).sum()), dtype=torch.float64), x)
    torch.testing.assert_close(grad, 3 * x.double() ** 2, rtol=1e-6, atol=1e-7)


def test_numerical_gradient_rejects_bad_input():
    with pytest.raises(TypeError):
        numerical_gradient(lambda t: t.sum(), [1.0, 2.0])
    with pytest.raises(ValueError):
        numerical_gradient(lambda t: t.sum(), torch.zeros(2), eps=0.0)


def test_relative_error():
    a = torch.tensor([1.0, 2.0, 0.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(a, torch.tensor([1.0, 2.2, 0.0])) == pytest.approx(0.2 / 2.2)
    assert relative_error(torch.tensor([0.0]), torch.tensor([1e-3])) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        relative_error(a, a[:2])


def test_gradcheck_rejects_the_wrong_backward_and_accepts_the_fixed_one():
    x = torch.randn(6, dtype=torch.float64, requires_grad=True, generator=torch.Generator().manual_seed(0))
    assert gradcheck(SiLUFunction.apply, (x,))
    assert not gradcheck(SiLUWrongBackward.apply, (x,), raise_exception=False)
    # both forwards are F.silu
    torch.testing.assert_close(SiLUWrongBackward.apply(x), F.silu(x))
    torch.testing.assert_close(SiLUFunction.apply(x), F.silu(x))


def test_fixed_backward_equals_torch_silu_gradient_and_the_wrong_one_does_not():
    x = torch.linspace(-4, 4, 17, dtype=torch.float64)
    reference = autograd_gradient(lambda t: F.silu(t).sum(), x)
    assert relative_error(autograd_gradient(lambda t: SiLUFunction.apply(t).sum(), x), reference) < 1e-12
    assert relative_error(autograd_gradient(lambda t: SiLUWrongBackward.apply(t).sum(), x), reference) > 0.1
    numeric = numerical_gradient(lambda t: SiLUWrongBackward.apply(t).sum(), x)
    assert relative_error(numeric, reference) < 1e-7  # finite differences only see the (right) forward


def test_silu_module():
    assert "wrong_backward=True" in repr(SiLU(wrong_backward=True))
    x = torch.randn(3, requires_grad=True)
    SiLU()(x).sum().backward()
    torch.testing.assert_close(x.grad, autograd_gradient(lambda t: F.silu(t).sum(), x))


def test_initial_loss_of_tinygpt_is_about_ln_vocab():
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32))
    x, y = torch.randint(0, 50, (4, 16)), torch.randint(0, 50, (4, 16))
    assert expected_initial_loss(50) == pytest.approx(math.log(50))
    assert abs(initial_loss(model, x, y) - math.log(50)) < 0.05
    assert model.training
    with pytest.raises(ValueError):
        expected_initial_loss(1)


def test_initial_loss_of_a_classifier():
    model = nn.Linear(4, 3)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    assert initial_loss(model, torch.randn(8, 4), torch.randint(0, 3, (8,))) == pytest.approx(math.log(3))


def test_overfit_one_batch_drives_the_loss_down():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
    x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))
    losses = overfit_one_batch(model, x, y, steps=150, lr=1e-2)
    assert len(losses) == 150 and losses[-1] < 0.05 * losses[0]
    with pytest.raises(ValueError):
        overfit_one_batch(model, x, y, steps=0)


def test_parameters_without_gradient_finds_a_detached_branch():
    class Detached(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 2)

        def forward(self, x):
            return self.b(self.a(x).detach())  # the bug: cuts a off from the loss

    model = Detached()
    F.cross_entropy(model(torch.randn(4, 3)), torch.tensor([0, 1, 0, 1])).backward()
    assert parameters_without_gradient(model) == ["a.weight", "a.bias"]
