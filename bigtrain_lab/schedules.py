"""Learning-rate schedules: the lr as a plain function of the step (counted from 0).

Two kinds live here:

- factories ``step -> lr`` used by the training loop (``bigtrain_lab.train`` imports them):
  ``constant_schedule``, ``cosine_schedule`` (nanoGPT's ``get_lr``) and ``wsd_schedule``
  (warmup-stable-decay). Their warm-up is nanoGPT's, ``lr * (step + 1) / (warmup_steps + 1)``: it never
  spends a step at lr 0.
- closed forms ``f(step, **hyper) -> lr`` that equal torch's own schedulers where torch has one
  (``step_decay`` = ``StepLR``, ``exponential_decay`` = ``ExponentialLR``, ``cosine_annealing`` =
  ``CosineAnnealingLR`` up to ``total_steps``, ``one_cycle`` = ``OneCycleLR``), and
  ``cosine_with_warmup`` (the graded exercise: warm-up from exactly 0, as Hugging Face's
  ``get_cosine_schedule_with_warmup``). ``tests/test_schedules.py`` compares each with torch.

``lr_curve(name, ...)`` evaluates any of them over a run and ``torch_lr_curve(name, ...)`` records what a
real ``torch.optim.lr_scheduler`` gives for the same settings (None where torch has no such scheduler).
``bank_step_decay`` is the wrong decay that circulates in interview answers, kept so that the lesson can
run it and show that it never decays.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch.optim import lr_scheduler

__all__ = [
    "SCHEDULE_NAMES", "TORCH_SCHEDULERS", "constant_schedule", "cosine_annealing", "cosine_schedule",
    "cosine_with_warmup", "exponential_decay", "linear_scaling_lr", "lr_curve", "one_cycle",
    "bank_step_decay", "check_warmup_args", "step_decay", "torch_lr_curve", "wsd_schedule",
]


# ---- factories used by the training loop -------------------------------------------------------

def constant_schedule(lr: float, warmup_steps: int = 0) -> Callable[[int], float]:
    """``lr`` after a linear warm-up of ``warmup_steps`` steps."""
    def schedule(step: int) -> float:
        return lr * (step + 1) / (warmup_steps + 1) if step < warmup_steps else lr
    return schedule


def cosine_schedule(lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Linear warm-up to ``lr``, then a cosine decay to ``min_lr`` at ``total_steps`` (nanoGPT's get_lr)."""
    def schedule(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / (warmup_steps + 1)
        if step >= total_steps:
            return min_lr
        ratio = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)
    return schedule


def wsd_schedule(lr: float, min_lr: float, warmup_steps: int, total_steps: int,
                 decay_fraction: float = 0.2) -> Callable[[int], float]:
    """Warmup-stable-decay: linear warm-up, ``lr`` held flat, then a linear decay to ``min_lr`` over the
    last ``decay_fraction`` of the steps. Unlike cosine, the flat phase can be extended (or branched
    from a checkpoint) without knowing the run's length in advance."""
    if not 0.0 <= decay_fraction <= 1.0:
        raise ValueError(f"decay_fraction must be in [0, 1], got {decay_fraction!r}")
    decay_start = max(warmup_steps, int(round(total_steps * (1.0 - decay_fraction))))

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / (warmup_steps + 1)
        if step < decay_start:
            return lr
        if step >= total_steps:
            return min_lr
        ratio = (step - decay_start) / max(1, total_steps - decay_start)
        return lr + ratio * (min_lr - lr)
    return schedule


# ---- closed forms, equal to torch's schedulers ---------------------------------------------------

def _check_step(step: int) -> None:
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step!r}")


def step_decay(step: int, *, base_lr: float, step_size: int, gamma: float) -> float:
    """``base_lr * gamma ** (step // step_size)``: ``torch.optim.lr_scheduler.StepLR``."""
    _check_step(step)
    if step_size < 1:
        raise ValueError(f"step_size must be >= 1, got {step_size!r}")
    return base_lr * gamma ** (step // step_size)


def exponential_decay(step: int, *, base_lr: float, gamma: float) -> float:
    """``base_lr * gamma ** step``: ``torch.optim.lr_scheduler.ExponentialLR``."""
    _check_step(step)
    return base_lr * gamma ** step


def check_warmup_args(step: float, *, base_lr: float, warmup_steps: float, total_steps: float,
                      min_lr: float = 0.0) -> None:
    """ValueError for a negative argument or ``warmup_steps >= total_steps`` (a warm-up schedule's inputs)."""
    named = {"step": step, "base_lr": base_lr, "warmup_steps": warmup_steps, "total_steps": total_steps,
             "min_lr": min_lr}
    for name, value in named.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    if warmup_steps >= total_steps:
        raise ValueError(f"warmup_steps ({warmup_steps}) must be < total_steps ({total_steps})")


def cosine_with_warmup(step: int, *, base_lr: float, warmup_steps: int, total_steps: int,
                       min_lr: float = 0.0) -> float:
    """Linear warm-up from 0 (``base_lr * step / warmup_steps``), then a half cosine from ``base_lr`` to
    ``min_lr`` at ``total_steps``, then ``min_lr``. Raises ValueError for a negative argument or
    ``warmup_steps >= total_steps``."""
    check_warmup_args(step, base_lr=base_lr, warmup_steps=warmup_steps, total_steps=total_steps, min_lr=min_lr)
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return float(min_lr)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def cosine_annealing(step: int, *, base_lr: float, total_steps: int, min_lr: float = 0.0) -> float:
    """``CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)`` up to ``total_steps``, ``min_lr`` after
    (torch's scheduler would climb back up: it is periodic)."""
    return cosine_with_warmup(step, base_lr=base_lr, warmup_steps=0, total_steps=total_steps, min_lr=min_lr)


def one_cycle(step: int, *, max_lr: float, total_steps: int, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4) -> float:
    """``torch.optim.lr_scheduler.OneCycleLR`` (cosine annealing, two phases): from ``max_lr /
    div_factor`` up to ``max_lr`` at step ``pct_start * total_steps - 1``, then down to
    ``max_lr / div_factor / final_div_factor`` at step ``total_steps - 1``."""
    _check_step(step)
    if step >= total_steps:
        raise ValueError(f"OneCycleLR is defined for steps 0 .. total_steps - 1 = {total_steps - 1}, "
                         f"got {step}")
    if not 0.0 < pct_start < 1.0:
        raise ValueError(f"pct_start must be in (0, 1), got {pct_start!r}")
    initial_lr = max_lr / div_factor
    final_lr = initial_lr / final_div_factor
    peak = float(pct_start * total_steps) - 1
    if step <= peak:
        start, end, progress = initial_lr, max_lr, step / peak
    else:
        start, end, progress = max_lr, final_lr, (step - peak) / (total_steps - 1 - peak)
    return end + (start - end) / 2.0 * (math.cos(math.pi * progress) + 1)


def bank_step_decay(epoch: int, *, base_lr: float, num_epochs: int) -> float:
    """The decay circulating in an interview answer: ``lr * 0.1 ** (epoch // num_epochs)``.

    WRONG on purpose: for every epoch of a run, ``0 <= epoch < num_epochs``, so ``epoch // num_epochs``
    is 0 and the lr never decays. The intended step decay divides by a step size (``StepLR``)."""
    return base_lr * (0.1 ** (epoch // num_epochs))


def linear_scaling_lr(base_lr: float, base_batch_size: int, batch_size: int) -> float:
    """The linear scaling rule (Goyal et al., 2017): multiply the lr by k when the batch grows k times."""
    if base_batch_size < 1 or batch_size < 1:
        raise ValueError(f"batch sizes must be >= 1, got {base_batch_size!r} and {batch_size!r}")
    return base_lr * batch_size / base_batch_size


# ---- whole curves, for plots and the widget -----------------------------------------------------

SCHEDULE_NAMES = ("constant", "step", "exponential", "cosine", "warmup_cosine", "one_cycle", "wsd")


def _schedule_function(name: str, *, total_steps: int, base_lr: float, warmup_steps: int, min_lr: float,
                       step_size: int, gamma: float, pct_start: float,
                       decay_fraction: float) -> Callable[[int], float]:
    if name == "constant":
        return constant_schedule(base_lr, warmup_steps)
    if name == "step":
        return lambda s: step_decay(s, base_lr=base_lr, step_size=step_size, gamma=gamma)
    if name == "exponential":
        return lambda s: exponential_decay(s, base_lr=base_lr, gamma=gamma)
    if name == "cosine":
        return lambda s: cosine_annealing(s, base_lr=base_lr, total_steps=total_steps, min_lr=min_lr)
    if name == "warmup_cosine":
        return lambda s: cosine_with_warmup(s, base_lr=base_lr, warmup_steps=warmup_steps,
                                            total_steps=total_steps, min_lr=min_lr)
    if name == "one_cycle":
        return lambda s: one_cycle(s, max_lr=base_lr, total_steps=total_steps, pct_start=pct_start)
    if name == "wsd":
        return wsd_schedule(base_lr, min_lr, warmup_steps, total_steps, decay_fraction)
    raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULE_NAMES}")


def lr_curve(name: str, *, total_steps: int, base_lr: float = 0.1, warmup_steps: int = 0,
             min_lr: float = 0.0, step_size: int = 30, gamma: float = 0.1, pct_start: float = 0.3,
             decay_fraction: float = 0.2) -> np.ndarray:
    """The lr at steps ``0 .. total_steps - 1`` of schedule ``name`` (one of ``SCHEDULE_NAMES``).

    Each schedule reads the arguments it needs: ``step`` uses ``step_size`` and ``gamma``;
    ``exponential`` ``gamma``; ``cosine`` ``min_lr``; ``warmup_cosine`` ``warmup_steps`` and ``min_lr``;
    ``one_cycle`` ``pct_start`` (``base_lr`` is its peak); ``wsd`` ``warmup_steps``, ``min_lr`` and
    ``decay_fraction``; ``constant`` ``warmup_steps``.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps!r}")
    fn = _schedule_function(name, total_steps=total_steps, base_lr=base_lr, warmup_steps=warmup_steps,
                            min_lr=min_lr, step_size=step_size, gamma=gamma, pct_start=pct_start,
                            decay_fraction=decay_fraction)
    return np.array([fn(step) for step in range(total_steps)], dtype=float)


def _torch_scheduler(name: str, optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int,
                     min_lr: float, step_size: int, gamma: float, pct_start: float, base_lr: float):
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "exponential":
        return lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=min_lr)
    if name == "warmup_cosine":
        # LinearLR cannot start at exactly 0 (start_factor must be > 0): the warm-up differs from the
        # closed form by base_lr * start_factor * (1 - step / warmup_steps); from warmup_steps on they agree.
        warm = lr_scheduler.LinearLR(optimizer, start_factor=1e-8, end_factor=1.0, total_iters=warmup_steps)
        cos = lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=min_lr)
        return lr_scheduler.SequentialLR(optimizer, [warm, cos], milestones=[warmup_steps])
    if name == "one_cycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=base_lr, total_steps=total_steps, pct_start=pct_start,
                                       anneal_strategy="cos")
    return None


#: the schedules torch implements as a ``torch.optim.lr_scheduler`` class
TORCH_SCHEDULERS = {"step": "StepLR", "exponential": "ExponentialLR", "cosine": "CosineAnnealingLR",
                    "warmup_cosine": "SequentialLR(LinearLR, CosineAnnealingLR)", "one_cycle": "OneCycleLR"}


def torch_lr_curve(name: str, *, total_steps: int, base_lr: float = 0.1, warmup_steps: int = 0,
                   min_lr: float = 0.0, step_size: int = 30, gamma: float = 0.1, pct_start: float = 0.3,
                   decay_fraction: float = 0.2) -> np.ndarray | None:
    """What the real ``torch.optim.lr_scheduler`` gives at steps ``0 .. total_steps - 1`` (read before
    each ``optimizer.step()``, the scheduler stepped after it), or None where torch has none
    (``constant``, ``wsd``). Same arguments as ``lr_curve``."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps!r}")
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULE_NAMES}")
    if name == "warmup_cosine" and warmup_steps < 1:
        name = "cosine"  # SequentialLR needs a warm-up of at least one step
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=base_lr, momentum=0.9)  # OneCycleLR also cycles the momentum
    scheduler = _torch_scheduler(name, optimizer, total_steps=total_steps, warmup_steps=warmup_steps,
                                 min_lr=min_lr, step_size=step_size, gamma=gamma, pct_start=pct_start,
                                 base_lr=base_lr)
    if scheduler is None:
        return None
    lrs = []
    for step in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: a no-op that keeps torch's "optimizer.step() first" order
        if step < total_steps - 1:
            scheduler.step()
    return np.array(lrs, dtype=float)
