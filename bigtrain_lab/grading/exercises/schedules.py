"""Exercises of the learning-rate schedules lesson; references are torch's own LR schedulers.

- ``schedules.step_decay``: a real ``torch.optim.lr_scheduler.StepLR`` on a dummy optimizer, stepped
  ``step`` times.
- ``schedules.cosine_with_warmup``: the cosine phase is ``CosineAnnealingLR``'s closed form
  (``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`` with ``t = step - warmup_steps``,
  ``T_max = total_steps - warmup_steps``, ``eta_min = min_lr``); the linear warm-up and the constant
  ``min_lr`` after ``total_steps`` are the checker's own copy of the exercise text (torch has no single
  scheduler for the whole shape; ``SequentialLR`` of ``LinearLR`` and ``CosineAnnealingLR`` cannot start at
  exactly 0 and is a recursive product, so it is compared in the unit tests, not here).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, StepLR

from bigtrain_lab.grading.compare import real
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.schedules import check_warmup_args

# ---- references -------------------------------------------------------------------------------

def _dummy_optimizer(lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


def _step_decay(step, *, base_lr, step_size, gamma) -> float:
    optimizer = _dummy_optimizer(base_lr)
    scheduler = StepLR(optimizer, step_size=step_size, gamma=gamma)
    for _ in range(int(step)):
        optimizer.step()  # no gradients: a no-op that keeps torch's "step the optimizer first" order
        scheduler.step()
    return float(scheduler.get_last_lr()[0])


def _cosine_with_warmup(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0) -> float:
    check_warmup_args(step, base_lr=base_lr, warmup_steps=warmup_steps, total_steps=total_steps, min_lr=min_lr)
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return float(min_lr)
    scheduler = CosineAnnealingLR(_dummy_optimizer(base_lr), T_max=total_steps - warmup_steps, eta_min=min_lr)
    scheduler.last_epoch = step - warmup_steps
    return float(scheduler._get_closed_form_lr()[0])  # torch's closed form of the cosine annealing


# ---- case generators ----------------------------------------------------------------------------

def _step_decay_cases(rng: np.random.Generator) -> list[Case]:
    def kw(base_lr=0.1, step_size=10, gamma=0.5):
        return {"base_lr": base_lr, "step_size": step_size, "gamma": gamma}

    cases = [
        Case("step 0: the base learning rate", (0,), kw()),
        Case("last step before the first decay", (9,), kw()),
        Case("the first decay happens at step_size", (10,), kw()),
        Case("between decays", (25,), kw()),
        Case("exactly at the third decay", (30,), kw(base_lr=1.0, gamma=0.1)),
        Case("step_size=1: decays every step", (7,), kw(step_size=1, gamma=0.9)),
        Case("gamma=1: constant", (57,), kw(gamma=1.0)),
        Case("gamma=0: zero after the first decay", (12,), kw(gamma=0.0)),
        Case("ResNet-style: x0.1 every 30 epochs", (95,), kw(base_lr=0.1, step_size=30, gamma=0.1)),
    ]
    for i in range(10):
        step_size = int(rng.integers(1, 60))
        step = int(rng.integers(0, 300))
        hyper = kw(base_lr=float(10 ** rng.uniform(-4, 0)), step_size=step_size,
                   gamma=float(rng.uniform(0.05, 0.99)))
        cases.append(Case(f"random #{i + 1} (step {step}, step_size {step_size})", (step,), hyper))
    return cases


def _cosine_cases(rng: np.random.Generator) -> list[Case]:
    def kw(base_lr=1e-3, warmup_steps=100, total_steps=1000, **extra):
        return {"base_lr": base_lr, "warmup_steps": warmup_steps, "total_steps": total_steps, **extra}

    cases = [
        Case("step 0: warm-up starts at 0", (0,), kw()),
        Case("in the warm-up", (30,), kw()),
        Case("last warm-up step", (99,), kw()),
        Case("end of the warm-up: the peak base_lr", (100,), kw()),
        Case("half-way through the decay: the mean of base_lr and min_lr", (550,), kw(min_lr=1e-4)),
        Case("a quarter into the decay, with min_lr", (325,), kw(min_lr=1e-4)),
        Case("the last step: min_lr", (1000,), kw(min_lr=1e-5)),
        Case("after total_steps: stays at min_lr", (1500,), kw(min_lr=1e-5)),
        Case("after total_steps, min_lr=0", (1001,), kw()),
        Case("no warm-up (warmup_steps=0)", (0,), kw(warmup_steps=0)),
        Case("no warm-up, mid-way", (200,), kw(warmup_steps=0, min_lr=1e-4)),
        Case("one warm-up step", (1,), kw(warmup_steps=1, total_steps=3)),
        Case("a NumPy integer step", (np.int64(640),), kw(min_lr=2e-5)),
        Case("negative step", (-1,), kw(), raises=ValueError),
        Case("warmup_steps == total_steps", (5,), kw(warmup_steps=1000), raises=ValueError),
        Case("warmup_steps > total_steps", (5,), kw(warmup_steps=2000), raises=ValueError),
        Case("negative base_lr", (5,), kw(base_lr=-1e-3), raises=ValueError),
        Case("negative min_lr", (500,), kw(min_lr=-1e-5), raises=ValueError),
        Case("negative warmup_steps", (500,), kw(warmup_steps=-10), raises=ValueError),
    ]
    for i in range(12):
        total = int(rng.integers(10, 100_000))
        warmup = 0 if i % 4 == 0 else int(rng.integers(1, total))
        step = int(rng.integers(0, int(total * 1.2) + 1))
        min_lr = 0.0 if i % 3 == 0 else float(10 ** rng.uniform(-6, -4))
        hyper = kw(base_lr=float(10 ** rng.uniform(-4, -2)), warmup_steps=warmup, total_steps=total, min_lr=min_lr)
        cases.append(Case(f"random #{i + 1} (step {step} of {total}, warm-up {warmup})", (step,), hyper))
    return cases


register(Exercise(
    id="schedules.step_decay",
    reference=_step_decay,
    make_cases=_step_decay_cases,
    compare=real(rtol=1e-9, atol=1e-15),
    hint="lr = base_lr * gamma ** (step // step_size): the rate drops by a factor gamma at every full "
         "multiple of step_size (floor division; the first drop is AT step == step_size).",
    section="learning-rate-schedules",
))

register(Exercise(
    id="schedules.cosine_with_warmup",
    reference=_cosine_with_warmup,
    make_cases=_cosine_cases,
    compare=real(rtol=1e-9, atol=1e-15),
    hint="warm-up: base_lr * step / warmup_steps for step < warmup_steps (0 at step 0); then with "
         "t = (step - warmup_steps) / (total_steps - warmup_steps): min_lr + 0.5 * (base_lr - min_lr) * "
         "(1 + cos(pi * t)); min_lr after total_steps. Raise ValueError for a negative argument or "
         "warmup_steps >= total_steps.",
    section="learning-rate-schedules",
))
