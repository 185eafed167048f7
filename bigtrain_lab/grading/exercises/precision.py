"""Exercises of the mixed-precision topic (lesson 03).

``precision.update_loss_scale`` is the dynamic loss-scale rule of ``torch.amp.GradScaler.update``; the
reference is torch's own kernel, ``torch._amp_update_scale_``, on the fp32 scale tensor GradScaler keeps.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bigtrain_lab.grading.compare import reals
from bigtrain_lab.grading.registry import Case, Exercise, register


def _update_loss_scale(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                       growth_interval=2000) -> tuple[float, int]:
    # GradScaler.__init__'s own checks, then torch's kernel on the fp32 / int32 tensors GradScaler keeps.
    if not growth_factor > 1.0:
        raise ValueError("growth_factor must be > 1.0")
    if not 0.0 < backoff_factor < 1.0:
        raise ValueError("backoff_factor must be in (0, 1)")
    if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or growth_interval < 1:
        raise ValueError("growth_interval must be a positive integer")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError("scale must be a finite positive number")
    scale_t = torch.tensor([float(scale)], dtype=torch.float32)
    tracker_t = torch.tensor([int(growth_tracker)], dtype=torch.int32)
    found_t = torch.tensor([1.0 if found_inf else 0.0], dtype=torch.float32)
    torch._amp_update_scale_(scale_t, tracker_t, found_t, float(growth_factor), float(backoff_factor),
                             int(growth_interval))
    return float(scale_t.item()), int(tracker_t.item())


def _loss_scale_cases(rng: np.random.Generator) -> list[Case]:
    big = float(2.0 ** 127)  # the largest power of two an fp32 holds
    cases = [
        Case("first clean step", (65536.0, 0, False)),
        Case("overflow: halve and reset the tracker", (65536.0, 5, True)),
        Case("growth_interval-th clean step in a row: double, reset", (65536.0, 1999, False)),
        Case("one step before growing", (65536.0, 1998, False)),
        Case("overflow on the step that would have grown", (65536.0, 1999, True)),
        Case("growth_interval=1 grows every clean step", (1024.0, 0, False), {"growth_interval": 1}),
        Case("custom factors", (4096.0, 2, False), {"growth_factor": 4.0, "backoff_factor": 0.25,
                                                     "growth_interval": 3}),
        Case("custom backoff", (4096.0, 2, True), {"backoff_factor": 0.125, "growth_interval": 3}),
        Case("the scale is an fp32 tensor: a growth that overflows fp32 is not applied", (big, 9, False),
             {"growth_interval": 10}),
        Case("the scale may fall below 1", (1.0, 0, True)),
        Case("growth_factor=1.0 is rejected", (1024.0, 0, False), {"growth_factor": 1.0}, raises=ValueError),
        Case("backoff_factor=1.0 is rejected", (1024.0, 0, True), {"backoff_factor": 1.0}, raises=ValueError),
        Case("growth_interval=0 is rejected", (1024.0, 0, False), {"growth_interval": 0}, raises=ValueError),
    ]
    for i in range(14):
        interval = int(rng.choice([1, 2, 5, 100, 2000]))
        tracker = int(rng.integers(0, interval)) if i % 3 else interval - 1
        kwargs = {"growth_interval": interval}
        if i % 4 == 1:
            kwargs |= {"growth_factor": float(rng.choice([1.5, 2.0, 3.0])),
                       "backoff_factor": float(rng.choice([0.25, 0.5, 0.7]))}
        scale = float(2.0 ** int(rng.integers(-4, 40)))
        found_inf = bool(rng.random() < 0.4)
        cases.append(Case(f"random #{i + 1} (tracker {tracker} of {interval}, found_inf={found_inf})",
                          (scale, tracker, found_inf), kwargs))
    return cases


register(Exercise(
    id="precision.update_loss_scale",
    reference=_update_loss_scale,
    make_cases=_loss_scale_cases,
    compare=reals(["new_scale", "new_growth_tracker"], rtol=1e-6, atol=0.0),
    hint="After an overflow (found_inf): scale * backoff_factor and the tracker back to 0 (the step was "
         "skipped). Otherwise count the clean step: when the count reaches growth_interval, multiply the "
         "scale by growth_factor and reset the count to 0, else store the count. The scale is an fp32 "
         "tensor: a grown scale that is not finite in fp32 is not applied (the count still resets). "
         "ValueError for growth_factor <= 1, backoff_factor outside (0, 1), growth_interval < 1.",
    section="mixed-precision",
))
