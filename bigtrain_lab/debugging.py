"""Debugging a model: gradient checks and the sanity checks to run before a long training run.

- ``numerical_gradient``: central differences of a scalar function, the independent reference that a
  gradient check compares backpropagation with (``torch.autograd.gradcheck`` does the same per Jacobian
  entry); ``relative_error`` is the number to look at.
- ``SiLUWrongBackward`` / ``SiLUFunction``: a custom ``torch.autograd.Function`` whose backward forgets
  the product rule, and the fixed one. ``gradcheck`` rejects the first and accepts the second.
- Sanity checks: the loss at initialisation must be about ``ln(n_classes)`` (``expected_initial_loss``),
  a model must be able to drive the loss of ONE batch to ~0 (``overfit_one_batch``), and every parameter
  must receive a gradient (``parameters_without_gradient``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SiLU", "SiLUFunction", "SiLUWrongBackward", "expected_initial_loss", "initial_loss",
           "numerical_gradient", "overfit_one_batch", "parameters_without_gradient", "relative_error"]

ScalarFn = Callable[[torch.Tensor], torch.Tensor]


def numerical_gradient(f: ScalarFn, x: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for every element ``i``.

    ``f`` maps a tensor of ``x``'s shape to a scalar; it may be a black box (no autograd needed). The
    result is float64, of ``x``'s shape; ``x`` is not modified. Error: ``O(eps**2)`` truncation plus
    ``~1e-16 |f| / eps`` rounding, so eps ~ 1e-6 suits float64 (float32 needs ~1e-3 and is far less exact).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    base = x.detach().to(torch.float64).clone()
    flat = base.view(-1)
    grad = torch.empty_like(flat)
    for i in range(flat.numel()):
        original = float(flat[i])
        flat[i] = original + eps
        f_plus = float(f(base))
        flat[i] = original - eps
        f_minus = float(f(base))
        flat[i] = original
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad.view(x.shape)


def relative_error(a: torch.Tensor, b: torch.Tensor, *, floor: float = 1e-12) -> float:
    """``max |a - b| / max(|a|, |b|, floor)`` elementwise, the worst element (CS231n's gradient-check number).

    About 1e-7 or less: the gradients agree (float64 central differences reach ~1e-9); 1e-2 or more:
    a bug. The floor keeps exact zeros from dividing by zero.
    """
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
    if a.numel() == 0:
        return 0.0
    return float(((a - b).abs() / torch.maximum(a.abs().maximum(b.abs()), torch.tensor(floor))).max())


class SiLUFunction(torch.autograd.Function):
    """``silu(x) = x * sigmoid(x)`` with a hand-written backward:
    ``d/dx = sigmoid(x) + x * sigmoid(x) * (1 - sigmoid(x))`` (the product rule)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_output * (s + x * s * (1 - s))


class SiLUWrongBackward(torch.autograd.Function):
    """The same forward; the backward forgets the product rule and returns ``sigmoid(x)`` only
    (it treats the ``x`` in ``x * sigmoid(x)`` as a constant). Training still runs and the loss still
    falls, which is why only a gradient check finds it."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad_output * torch.sigmoid(x)  # BUG: the x * s * (1 - s) term is missing


class SiLU(nn.Module):
    """A module around ``SiLUFunction`` (or, with ``wrong_backward=True``, ``SiLUWrongBackward``)."""

    def __init__(self, *, wrong_backward: bool = False):
        super().__init__()
        self.wrong_backward = wrong_backward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (SiLUWrongBackward if self.wrong_backward else SiLUFunction).apply(x)

    def extra_repr(self) -> str:
        return "wrong_backward=True" if self.wrong_backward else ""


def expected_initial_loss(n_classes: int) -> float:
    """``ln(n_classes)``: the cross-entropy of a uniform prediction, what a well-initialised classifier or
    language model (logits near 0) should start at."""
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes!r}")
    return math.log(n_classes)


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = model(x, y) if _takes_targets(model) else model(x)
    if isinstance(out, tuple):  # TinyGPT: (logits, loss)
        return out[1]
    return F.cross_entropy(out, y)


def _takes_targets(model: nn.Module) -> bool:
    return "targets" in inspect.signature(model.forward).parameters


@torch.no_grad()
def initial_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The model's cross-entropy on ``(x, y)`` in eval mode (TinyGPT's own loss, else on its logits)."""
    was_training = model.training
    model.eval()
    try:
        return float(_loss(model, x, y))
    finally:
        model.train(was_training)


def overfit_one_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 200,
                      lr: float = 3e-3) -> list[float]:
    """Train ``model`` on the single batch ``(x, y)`` with Adam for ``steps`` steps; the losses.

    A model and loop without bugs memorise one small batch: the loss heads to ~0. If it does not, look
    for a bug (labels misaligned, a detached tensor, a wrong loss, a learning rate far off) before
    training for hours.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = _loss(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def parameters_without_gradient(model: nn.Module) -> list[str]:
    """Names of the trainable parameters whose ``.grad`` is None or exactly zero after a backward pass:
    cut off from the loss (a stray ``.detach()``, an unused layer, a frozen branch)."""
    return [name for name, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not bool(p.grad.any()))]
