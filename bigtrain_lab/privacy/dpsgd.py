"""DP-SGD written out (Abadi et al., 2016): per-sample gradients, clipping each to a norm, Gaussian noise on
their sum, Poisson-sampled batches, and the training loop that puts them together.

One DP-SGD step on a batch of ``B`` examples, parameters flattened to ``P`` numbers:

1. ``per_sample_gradients``: the ``(B, P)`` gradients of each example's own loss (``torch.func``: ``vmap``
   over ``grad`` of a ``functional_call`` on a batch of one).
2. ``clip_and_noise``: scale each row to norm at most ``max_norm`` (C) -- the *sensitivity* of the sum to any
   one example is now C --, sum the rows, add ``N(0, (noise_multiplier * C)^2)`` to every coordinate, divide by
   ``B``. opacus's ``DPOptimizer`` computes exactly this (clip factor ``(C / (norm + 1e-6)).clamp(max=1)``).
3. ``train_dp``: each step samples its batch by **Poisson sampling** -- every example joins independently with
   probability ``sample_rate`` (q) -- as the privacy accountant assumes, and divides the noisy sum by the
   *expected* batch size ``q N`` (as opacus does; the actual size would itself depend on the data).

>>> import torch, torch.nn as nn, torch.nn.functional as F
>>> net = nn.Linear(3, 2)
>>> g = per_sample_gradients(net, F.cross_entropy, torch.ones(4, 3), torch.tensor([0, 1, 0, 1]))
>>> tuple(g.shape)  # 4 examples, 2x3 weights + 2 biases
(4, 8)
>>> out = clip_and_noise(g, max_norm=0.1, noise_multiplier=0.0, generator=torch.Generator().manual_seed(0))
>>> bool(out.norm() <= 0.1 + 1e-6)
True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap
from tqdm.auto import tqdm

__all__ = ["DPTrainResult", "clip_and_noise", "clipped_noisy_sum", "per_sample_gradients", "poisson_batch",
           "train_dp"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def per_sample_gradients(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The ``(B, P)`` matrix whose row ``i`` is the gradient of ``loss_fn(model(x[i:i+1]), y[i:i+1])``.

    Columns: the flattened gradients of the parameters with ``requires_grad``, concatenated in
    ``model.parameters()`` order. Computed with ``torch.func`` (``vmap`` of ``grad`` over a ``functional_call``
    on each sample unsqueezed to a batch of one), so the model's parameters and ``.grad`` are left untouched.
    Layers that mix examples (BatchNorm in training mode) or draw random numbers (active dropout) cannot be
    vmapped per sample: put the model in eval mode or use GroupNorm, as opacus requires too.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.dim() == 0 or y.dim() == 0 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y need the same non-zero batch size, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    named = _trainable(model)
    if not named:
        raise ValueError("the model has no parameter with requires_grad")
    trainable = {name: p.detach() for name, p in named}
    fixed = {name: p.detach() for name, p in model.named_parameters() if not p.requires_grad}
    fixed.update({name: b.detach() for name, b in model.named_buffers()})

    def sample_loss(params: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (params, fixed), (xi.unsqueeze(0),))
        return loss_fn(logits, yi.unsqueeze(0))

    grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(trainable, x, y)
    return torch.cat([grads[name].reshape(len(x), -1) for name, _ in named], dim=1)


def _check_clip_args(per_sample_grads: torch.Tensor, max_norm: float, noise_multiplier: float) -> None:
    if not isinstance(per_sample_grads, torch.Tensor) or per_sample_grads.dim() != 2:
        shape = tuple(per_sample_grads.shape) if isinstance(per_sample_grads, torch.Tensor) else type(per_sample_grads)
        raise ValueError(f"per_sample_grads must be a 2-D (B, P) tensor, got {shape}")
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not math.isfinite(max_norm) \
            or max_norm <= 0:
        raise ValueError(f"max_norm must be a finite number > 0, got {max_norm!r}")
    if isinstance(noise_multiplier, bool) or not isinstance(noise_multiplier, numbers.Real) \
            or not math.isfinite(noise_multiplier) or noise_multiplier < 0:
        raise ValueError(f"noise_multiplier must be a finite number >= 0, got {noise_multiplier!r}")


def clipped_noisy_sum(per_sample_grads: torch.Tensor, *, max_norm: float, noise_multiplier: float,
                      generator: torch.Generator) -> torch.Tensor:
    """Rows clipped to norm ``max_norm``, summed, plus ``N(0, (noise_multiplier * max_norm)^2)`` per coordinate.

    An empty batch ``(0, P)`` gives pure noise (a Poisson-sampled step may draw no example). The noise is
    ``torch.normal(0.0, std, size=(P,), generator=generator)``, drawn only when ``std > 0`` (so a noiseless
    call leaves the generator where it was)."""
    _check_clip_args(per_sample_grads, max_norm, noise_multiplier)
    norms = per_sample_grads.norm(2, dim=1)
    factor = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    summed = (per_sample_grads * factor.unsqueeze(1)).sum(dim=0)
    std = noise_multiplier * max_norm
    if std > 0:
        summed = summed + torch.normal(0.0, std, size=summed.shape, generator=generator).to(summed)
    return summed


def clip_and_noise(per_sample_grads: torch.Tensor, *, max_norm: float, noise_multiplier: float,
                   generator: torch.Generator) -> torch.Tensor:
    """The DP-SGD gradient of one batch: ``(sum_i clip(g_i) + N(0, (noise_multiplier * max_norm)^2 I)) / B``.

    ``per_sample_grads``: ``(B, P)``, B >= 1. Each row is scaled by ``min(1, max_norm / (norm + 1e-6))``
    (opacus's clip factor). The noise is drawn as ``torch.normal(0.0, noise_multiplier * max_norm,
    size=(P,), generator=generator)`` and only when that std is > 0: with ``noise_multiplier=0`` the generator
    is not advanced. Returns a ``(P,)`` tensor. ValueError: not 2-D, B == 0, ``max_norm`` <= 0 or not finite,
    ``noise_multiplier`` < 0 or not finite."""
    _check_clip_args(per_sample_grads, max_norm, noise_multiplier)
    if per_sample_grads.shape[0] == 0:
        raise ValueError("per_sample_grads has no rows (B == 0): nothing to average")
    summed = clipped_noisy_sum(per_sample_grads, max_norm=max_norm, noise_multiplier=noise_multiplier,
                               generator=generator)
    return summed / per_sample_grads.shape[0]


def poisson_batch(n: int, sample_rate: float, generator: torch.Generator) -> torch.Tensor:
    """Indices of a Poisson-sampled batch: each of ``n`` examples joins independently with ``sample_rate``."""
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
    return torch.nonzero(torch.rand(n, generator=generator) < sample_rate).flatten()


@dataclass
class DPTrainResult:
    """What ``train_dp`` did: the settings the accountant needs and the per-step batch sizes and losses."""

    noise_multiplier: float
    max_norm: float
    sample_rate: float
    steps: int
    batch_sizes: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # mean loss of each step's batch before the step (nan if empty)
    clipped_fraction: list[float] = field(default_factory=list)  # share of the batch whose norm exceeded max_norm


def train_dp(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, noise_multiplier: float, max_norm: float,
             sample_rate: float, steps: int, lr: float = 0.5, momentum: float = 0.0, seed: int = 0,
             loss_fn: LossFn = F.cross_entropy, progress: bool = False) -> DPTrainResult:
    """Train ``model`` in place with DP-SGD: ``steps`` Poisson-sampled batches (rate ``sample_rate``), each
    example's gradient clipped to ``max_norm``, Gaussian noise of std ``noise_multiplier * max_norm`` on the
    sum, divided by the expected batch size ``sample_rate * len(X)``; then an SGD step (``lr``, ``momentum``).

    The privacy of the result depends only on (noise_multiplier, sample_rate, steps) and delta: hand them to
    ``bigtrain_lab.privacy.accountant.epsilon``. ``seed`` fixes the batches and the noise."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y need the same non-zero length, got {len(X)} and {len(y)}")
    _check_clip_args(torch.zeros(1, 1), max_norm, noise_multiplier)
    generator = torch.Generator().manual_seed(seed)
    params = [p for _, p in _trainable(model)]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum)
    expected = sample_rate * len(X)
    result = DPTrainResult(float(noise_multiplier), float(max_norm), float(sample_rate), steps)
    n_params = sum(p.numel() for p in params)
    for _ in tqdm(range(steps), desc="DP-SGD", disable=not progress):
        idx = poisson_batch(len(X), sample_rate, generator)
        if len(idx):
            grads = per_sample_gradients(model, loss_fn, X[idx], y[idx])
            with torch.no_grad():
                result.losses.append(float(loss_fn(model(X[idx]), y[idx])))
            result.clipped_fraction.append(float((grads.norm(dim=1) > max_norm).double().mean()))
        else:
            grads = torch.zeros(0, n_params)
            result.losses.append(float("nan"))
            result.clipped_fraction.append(0.0)
        flat = clipped_noisy_sum(grads, max_norm=max_norm, noise_multiplier=noise_multiplier,
                                 generator=generator) / expected
        offset = 0
        for p in params:
            p.grad = flat[offset:offset + p.numel()].view_as(p).to(p.dtype)
            offset += p.numel()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        result.batch_sizes.append(len(idx))
    return result
