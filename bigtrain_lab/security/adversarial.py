"""Adversarial examples: FGSM, PGD (L-inf) and adversarial training.

- ``fgsm``: one step of size ``eps`` along the sign of the input gradient of the loss (Goodfellow et al., 2015).
- ``pgd``: projected gradient descent in the L-inf ball of radius ``eps`` (Madry et al., 2018): a random
  start in the ball, ``steps`` signed steps of size ``alpha``, each projected back into the ball and the
  valid pixel range.
- ``adversarial_training``: train on PGD or FGSM examples of each batch, crafted against the current model.
- ``accuracy_under_attack`` and ``attack_success_rate``: what an attack does to a model, measured.

Attacks take gradients with ``torch.autograd.grad`` with respect to the input only: the model's parameters
get no ``.grad``, and its train / eval mode is left as the caller set it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.fit import fit_classifier
from bigtrain_lab.train import TrainResult

__all__ = ["ATTACKS", "accuracy_under_attack", "adversarial_training", "attack", "attack_success_rate", "fgsm",
           "pgd"]

ATTACKS = ("fgsm", "pgd")
Clamp = tuple[float, float] | None


def _check_eps(eps: Any, name: str = "eps") -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {eps!r}")
    return float(eps)


def _check_clamp(clamp: Clamp) -> Clamp:
    if clamp is None:
        return None
    try:
        lo, hi = (float(v) for v in clamp)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"clamp must be (lo, hi) or None, got {clamp!r}") from exc
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise ValueError(f"clamp must have lo <= hi, got {clamp!r}")
    return lo, hi


def _check_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same batch size, got shapes {tuple(x.shape)} and {tuple(y.shape)}")


def _clamped(x: torch.Tensor, clamp: Clamp) -> torch.Tensor:
    return x if clamp is None else x.clamp(clamp[0], clamp[1])


def _input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d mean-cross-entropy / d x, at a detached copy of ``x`` (no parameter gets a ``.grad``)."""
    x_var = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x_var), y)
        (grad,) = torch.autograd.grad(loss, x_var)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
         clamp: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """The fast gradient sign method: ``x + eps * sign(grad_x F.cross_entropy(model(x), y))``, clamped to
    ``clamp = (lo, hi)`` unless it is None. Returns a new detached tensor of ``x``'s shape and dtype; ``x``
    is not modified, the parameters get no ``.grad`` and the model's mode is left as it is.

    ``eps == 0`` returns ``x`` (clamped). ValueError: ``eps`` negative or not finite, ``lo > hi``, ``x`` and
    ``y`` of different batch sizes.
    """
    eps = _check_eps(eps)
    clamp = _check_clamp(clamp)
    _check_batch(x, y)
    if eps == 0:
        return _clamped(x.detach().clone(), clamp)
    grad = _input_gradient(model, x, y)
    x_adv = x.detach() + eps * grad.sign()
    return _clamped(x_adv, clamp).to(x.dtype)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
        clamp: tuple[float, float] | None = (0.0, 1.0), random_start: bool = True,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient descent in the L-inf ball (Madry et al.): from ``x`` (plus uniform noise in
    ``[-eps, eps]`` when ``random_start``, drawn from ``generator``), ``steps`` times: step ``alpha`` along the
    sign of the loss's input gradient, project onto ``[x - eps, x + eps]`` and into ``clamp``. Returns a new
    detached tensor of ``x``'s shape and dtype; same guarantees as ``fgsm``. With ``steps=1``,
    ``alpha=eps`` and no random start it is ``fgsm``.

    ValueError: ``eps`` or ``alpha`` negative / not finite, ``steps`` not an integer >= 0, bad ``clamp``,
    batch sizes that differ.
    """
    eps = _check_eps(eps)
    alpha = _check_eps(alpha, "alpha")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    clamp = _check_clamp(clamp)
    _check_batch(x, y)
    x0 = x.detach()
    if eps == 0:
        return _clamped(x0.clone(), clamp)
    lower, upper = x0 - eps, x0 + eps
    if random_start:
        noise = torch.rand(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device) * (2 * eps) - eps
        x_adv = _clamped(x0 + noise, clamp)
    else:
        x_adv = x0.clone()
    for _ in range(steps):
        grad = _input_gradient(model, x_adv, y)
        x_adv = x_adv + alpha * grad.sign()
        x_adv = _clamped(torch.max(torch.min(x_adv, upper), lower), clamp)
    return x_adv.detach().to(x.dtype)


def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, kind: str, eps: float, steps: int = 10,
           alpha: float | None = None, clamp: tuple[float, float] | None = (0.0, 1.0),
           generator: torch.Generator | None = None) -> torch.Tensor:
    """``fgsm`` or ``pgd`` by name (``kind``); PGD's step ``alpha`` defaults to ``2.5 * eps / steps`` (Madry
    et al.'s choice), with a random start drawn from ``generator``."""
    if kind not in ATTACKS:
        raise ValueError(f"kind must be one of {ATTACKS}, got {kind!r}")
    if kind == "fgsm":
        return fgsm(model, x, y, eps=eps, clamp=clamp)
    step = 2.5 * _check_eps(eps) / max(steps, 1) if alpha is None else alpha
    return pgd(model, x, y, eps=eps, alpha=step, steps=steps, clamp=clamp, generator=generator)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(dim=-1)


def accuracy_under_attack(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, kind: str, eps: float,
                          steps: int = 10, alpha: float | None = None,
                          clamp: tuple[float, float] | None = (0.0, 1.0), seed: int = 0) -> float:
    """Accuracy of ``model`` (in eval mode; its mode restored) on ``attack(kind=...)`` examples of every row of
    ``X`` (``eps = 0``: the clean accuracy). PGD's random start is drawn from a generator seeded ``seed``."""
    was_training = model.training
    model.eval()
    try:
        x_adv = attack(model, X, y, kind=kind, eps=eps, steps=steps, alpha=alpha, clamp=clamp,
                       generator=torch.Generator().manual_seed(seed))
        return float((_predict(model, x_adv) == y).double().mean())
    finally:
        model.train(was_training)


def attack_success_rate(model: nn.Module, x_clean: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    """Among the rows ``model`` classifies correctly when clean, the fraction it gets wrong on ``x_adv`` (the
    examples may have been crafted on another model: a transfer attack). NaN when none is correct."""
    _check_batch(x_clean, y)
    _check_batch(x_adv, y)
    was_training = model.training
    model.eval()
    try:
        right = _predict(model, x_clean) == y
        fooled = _predict(model, x_adv) != y
    finally:
        model.train(was_training)
    if not bool(right.any()):
        return math.nan
    return float(fooled[right].double().mean())


def adversarial_training(model: nn.Module, X: Any, y: Any, *, kind: str = "pgd", eps: float, steps: int = 5,
                         alpha: float | None = None, clean_weight: float = 0.0, epochs: int = 10,
                         batch_size: int = 64, lr: float = 3e-3, clamp: tuple[float, float] | None = (0.0, 1.0),
                         seed: int = 0, progress: bool = False,
                         callbacks: tuple[Callable[[TrainResult], object], ...] = ()) -> TrainResult:
    """Train ``model`` in place with ``bigtrain_lab.fit.fit_classifier`` on adversarial examples: every batch
    is replaced by ``attack(kind, eps, steps, alpha)`` examples crafted against the current weights (Madry
    et al.: min over weights of the max over the ball). ``clean_weight`` in [0, 1] mixes in the clean loss
    (``(1 - w) * adversarial + w * clean``; Goodfellow et al. used 0.5 with FGSM). The attack runs with the
    model in eval mode (dropout / batch-norm statistics untouched), the update in train mode."""
    if kind not in ATTACKS:
        raise ValueError(f"kind must be one of {ATTACKS}, got {kind!r}")
    _check_eps(eps)
    if not 0.0 <= clean_weight <= 1.0:
        raise ValueError(f"clean_weight must be in [0, 1], got {clean_weight!r}")
    generator = torch.Generator().manual_seed(seed + 1)

    def loss_fn(net: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        was_training = net.training
        net.eval()
        try:
            x_adv = attack(net, x, target, kind=kind, eps=eps, steps=steps, alpha=alpha, clamp=clamp,
                           generator=generator)
        finally:
            net.train(was_training)
        loss = F.cross_entropy(net(x_adv), target)
        if clean_weight > 0:
            loss = (1 - clean_weight) * loss + clean_weight * F.cross_entropy(net(x), target)
        return loss

    return fit_classifier(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr, loss_fn=loss_fn, seed=seed,
                          progress=progress, callbacks=callbacks)
