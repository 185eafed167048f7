"""Optimizers in action: 2-D loss surfaces, trajectories of real ``torch.optim`` optimizers on them,
L2-in-the-loss versus decoupled weight decay, margin losses, and small classifier runs on offline data.

Everything here drives torch's own optimizers (``make_optimizer``); nothing re-implements them, so what
the lesson shows is what ``torch.optim`` does.

    surface = SURFACES["rosenbrock"]
    path = run_trajectory(surface, "adam", lr=0.05, steps=300)
    path.xy[-1], path.losses[-1]
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "OPTIMIZER_NAMES", "SURFACES", "Surface", "Trajectory", "make_optimizer", "margin_losses",
    "penalized_softmax_regression", "run_trajectory", "surface_grid", "weight_decay_variants",
]

OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw")


def make_optimizer(name: str, params, *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                   betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """A ``torch.optim`` optimizer by short name (one of ``OPTIMIZER_NAMES``).

    ``momentum`` and ``nesterov`` are ``SGD(momentum=momentum)`` (``nesterov=True`` for the latter);
    ``weight_decay`` is passed as torch defines it for each class: added to the gradient (L2) for all but
    ``adamw``, where it is decoupled. ``adadelta``'s lr multiplies its own unit-correct step (torch's
    default is 1.0).
    """
    params = list(params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZER_NAMES}")


# ---- 2-D loss surfaces ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Surface:
    """A 2-D loss ``fn(x, y)`` (torch tensors or NumPy arrays, elementwise), where to start, where the
    minima are, the plotting window, an lr per optimizer that works there (``lrs``) and a number of steps
    that shows each optimizer's character (``steps``)."""

    name: str
    fn: Callable
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    lrs: dict[str, float] = field(default_factory=dict)
    steps: int = 200
    description: str = ""

    def __call__(self, x, y):
        return self.fn(x, y)


def _ill_conditioned(x, y):
    return 0.5 * (0.1 * x**2 + 10.0 * y**2)


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _himmelblau(x, y):
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


SURFACES: dict[str, Surface] = {
    "ill_conditioned": Surface(
        "ill_conditioned", _ill_conditioned, start=(-9.0, 1.0), minima=((0.0, 0.0),),
        x_range=(-10.0, 10.0), y_range=(-2.0, 2.0),
        lrs={"sgd": 0.18, "momentum": 0.05, "nesterov": 0.05, "adagrad": 1.0, "rmsprop": 0.05,
             "adadelta": 5.0, "adam": 0.3, "adamw": 0.3}, steps=200,
        description="0.05 x^2 + 5 y^2: curvatures 0.1 and 10 (condition number 100), a long narrow valley"),
    "rosenbrock": Surface(
        "rosenbrock", _rosenbrock, start=(-1.5, 2.0), minima=((1.0, 1.0),),
        x_range=(-2.0, 2.0), y_range=(-1.0, 3.0),
        lrs={"sgd": 2e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 1.0, "rmsprop": 0.01,
             "adadelta": 5.0, "adam": 0.1, "adamw": 0.1}, steps=1000,
        description="(1 - x)^2 + 100 (y - x^2)^2: a curved banana valley, minimum at (1, 1)"),
    "himmelblau": Surface(
        "himmelblau", _himmelblau, start=(-0.3, -0.9), minima=((3.0, 2.0), (-2.805118, 3.131312),
                                                             (-3.779310, -3.283186), (3.584428, -1.848126)),
        x_range=(-5.0, 5.0), y_range=(-5.0, 5.0),
        lrs={"sgd": 0.005, "momentum": 0.002, "nesterov": 0.002, "adagrad": 0.5, "rmsprop": 0.02,
             "adadelta": 5.0, "adam": 0.1, "adamw": 0.1}, steps=300,
        description="Himmelblau: four minima of equal height; which one an optimizer reaches depends on it"),
}


def _surface(surface: Surface | str) -> Surface:
    if isinstance(surface, Surface):
        return surface
    if surface not in SURFACES:
        raise ValueError(f"unknown surface {surface!r}; choose one of {sorted(SURFACES)}")
    return SURFACES[surface]


def surface_grid(surface: Surface | str, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xs, ys, z)`` over the surface's window: ``z[i, j] = fn(xs[j], ys[i])`` (plotly's contour layout)."""
    surface = _surface(surface)
    xs = np.linspace(*surface.x_range, n)
    ys = np.linspace(*surface.y_range, n)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.asarray(surface.fn(gx, gy), dtype=float)


@dataclass
class Trajectory:
    """Where an optimizer went: ``xy[k]`` is the point after k steps (``xy[0]`` the start), ``losses[k]``
    the loss there. ``diverged``: the run stopped early at a non-finite or exploding loss."""

    optimizer: str
    lr: float
    xy: np.ndarray
    losses: np.ndarray
    diverged: bool = False

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])


def run_trajectory(surface: Surface | str, optimizer: str, *, lr: float | None = None, steps: int | None = None,
                   start: Sequence[float] | None = None, blow_up: float = 1e6, **options) -> Trajectory:
    """Run a real ``torch.optim`` optimizer (``make_optimizer(optimizer, ...)``) on a 2-D surface, in float64.

    lr: default the surface's tuned ``lrs[optimizer]``; steps: default ``surface.steps``. options: passed to ``make_optimizer`` (momentum,
    weight_decay, betas). The run stops early (``diverged=True``) when the loss is not finite or exceeds
    ``blow_up`` times the starting loss.
    """
    surface = _surface(surface)
    steps = surface.steps if steps is None else steps
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps!r}")
    lr = surface.lrs[optimizer] if lr is None and optimizer in surface.lrs else lr
    if lr is None or not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    point = torch.tensor(surface.start if start is None else start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(optimizer, [point], lr=lr, **options)
    path = [point.detach().clone()]
    losses = [float(surface.fn(*point.detach()))]
    diverged = False
    for _ in range(steps):
        opt.zero_grad()
        loss = surface.fn(point[0], point[1])
        loss.backward()
        opt.step()
        value = float(surface.fn(point[0].detach(), point[1].detach()))
        if not np.isfinite(value) or value > blow_up * max(losses[0], 1.0):
            diverged = True
            break
        path.append(point.detach().clone())
        losses.append(value)
    return Trajectory(optimizer, float(lr), torch.stack(path).numpy(), np.array(losses), diverged)


# ---- L2 in the loss versus decoupled weight decay ------------------------------------------------

WEIGHT_DECAY_VARIANTS = ("L2 in the loss", "weight_decay argument", "decoupled")


def weight_decay_variants(optimizer: str, model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, lr: float,
                          weight_decay: float, steps: int) -> dict[str, torch.Tensor]:
    """Train copies of ``model`` full-batch (cross-entropy) in three ways and return each one's final
    parameters, flattened:

    - "L2 in the loss": ``loss + weight_decay / 2 * sum(p**2)``, optimizer without weight decay;
    - "weight_decay argument": ``SGD`` / ``Adam`` with ``weight_decay=weight_decay`` (torch adds
      ``weight_decay * p`` to the gradient: L2 again);
    - "decoupled": the weights shrink by ``lr * weight_decay * p`` outside the gradient step
      (``AdamW`` for Adam; SGD followed by ``p -= lr * weight_decay * p``, i.e. SGDW, for SGD).

    optimizer: "sgd" (plain, no momentum) or "adam". Every parameter is decayed (biases too), so the
    three are comparable term by term.
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    results = {}
    for variant in WEIGHT_DECAY_VARIANTS:
        net = copy.deepcopy(model)
        params = list(net.parameters())
        if variant == "weight_decay argument":
            opt = make_optimizer(optimizer, params, lr=lr, weight_decay=weight_decay)
        elif variant == "decoupled" and optimizer == "adam":
            opt = make_optimizer("adamw", params, lr=lr, weight_decay=weight_decay)
        else:
            opt = make_optimizer(optimizer, params, lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(net(X), y)
            if variant == "L2 in the loss":
                loss = loss + weight_decay / 2 * sum((p**2).sum() for p in params)
            loss.backward()
            if variant == "decoupled" and optimizer == "sgd":
                with torch.no_grad():  # SGDW: shrink from the weights before this step, like AdamW
                    for p in params:
                        p.mul_(1 - lr * weight_decay)
            opt.step()
        results[variant] = torch.cat([p.detach().flatten() for p in params])
    return results



PENALTIES = ("none", "l1", "l2")


def penalized_softmax_regression(X: torch.Tensor, y: torch.Tensor, *, penalty: str, strength: float,
                                 steps: int = 200, lr: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear softmax classifier trained full-batch with plain SGD on cross-entropy plus a penalty on
    its weight matrix (the bias is not penalised); returns ``(W, b)``, ``W`` of shape (n_features, n_classes).

    penalty: "none"; "l1", ``strength * sum(|W|)`` (its subgradient ``strength * sign(W)`` has the same
    size for every non-zero weight: small weights are pushed to 0, where they then jitter within about
    ``lr * strength``); "l2", ``strength / 2 * sum(W**2)`` (gradient ``strength * W``: proportional to the
    weight, so large weights shrink most and none reaches 0). Zero initialisation, float64.
    """
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    X = torch.as_tensor(X, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.long)
    W = torch.zeros(X.shape[1], int(y.max()) + 1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(W.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([W, b], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(X @ W + b, y)
        if penalty == "l1":
            loss = loss + strength * W.abs().sum()
        elif penalty == "l2":
            loss = loss + strength / 2 * (W**2).sum()
        loss.backward()
        opt.step()
    return W.detach(), b.detach()

# ---- losses as functions of the margin ----------------------------------------------------------

def margin_losses(margin: np.ndarray | Sequence[float]) -> dict[str, np.ndarray]:
    """Binary losses as functions of the margin ``m = y * f(x)`` with ``y`` in {-1, +1}:
    "0-1" ``[m <= 0]`` (what accuracy counts), "hinge" ``max(0, 1 - m)`` (SVM), "log loss"
    ``log(1 + exp(-m))`` (logistic regression; = binary cross-entropy on the logit), "squared"
    ``(1 - m)**2`` (MSE against +-1 targets) and "exponential" ``exp(-m)`` (AdaBoost)."""
    m = torch.as_tensor(np.asarray(margin, dtype=float))
    return {
        "0-1": (m <= 0).double().numpy(),
        "hinge": F.relu(1 - m).numpy(),
        "log loss": F.softplus(-m).numpy(),
        "squared": ((1 - m) ** 2).numpy(),
        "exponential": torch.exp(-m).numpy(),
    }
