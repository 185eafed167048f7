"""Exercises of the batch size / precision / memory lesson.

``scaling.adam_training_bytes`` follows the ZeRO paper (Rajbhandari et al., "ZeRO: Memory Optimizations
Toward Training Trillion Parameter Models", SC 2020, section 3.1 and figure 1): mixed-precision Adam keeps
2 bytes (fp16 parameters) + 2 bytes (fp16 gradients) + K = 12 bytes (fp32 master parameters, momentum and
variance) per parameter; with data-parallel degree N_d, ZeRO stage 1 shards the 12 bytes, stage 2 also
the gradients, stage 3 also the parameters. No library implements the formula (DeepSpeed's estimators
add buffers and are not installed here), so the reference is the checker's own copy of it; the edge
cases include the paper's own figure-1 numbers (7.5 B parameters on 64 GPUs: 120, 31.4, 16.6, 1.9 GB).

``scaling.update_loss_scale`` is the dynamic loss-scale rule of ``torch.amp.GradScaler.update``; the
reference is torch's own kernel, ``torch._amp_update_scale_``, on the fp32 scale tensor GradScaler keeps.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bigtrain_lab.grading.compare import real, reals
from bigtrain_lab.grading.registry import Case, Exercise, register

LESSON = "notebooks/03_batch_precision_memory.ipynb"

PARAM_BYTES, GRAD_BYTES, OPTIMIZER_BYTES = 2, 2, 12


def _adam_training_bytes(n_params, *, zero_stage=0, world_size=1) -> float:
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size!r}")
    sharded = (OPTIMIZER_BYTES * (zero_stage >= 1) + GRAD_BYTES * (zero_stage >= 2)
               + PARAM_BYTES * (zero_stage >= 3))
    return float(n_params * (PARAM_BYTES + GRAD_BYTES + OPTIMIZER_BYTES - sharded)
                 + n_params * sharded / world_size)


def _cases(rng: np.random.Generator) -> list[Case]:
    paper = 7_500_000_000
    cases = [
        Case("1 parameter, no ZeRO: 16 bytes", (1,)),
        Case("ZeRO paper, baseline (7.5B, 64 GPUs): 120 GB", (paper,), {"zero_stage": 0, "world_size": 64}),
        Case("ZeRO paper, stage 1 (P_os): 31.4 GB", (paper,), {"zero_stage": 1, "world_size": 64}),
        Case("ZeRO paper, stage 2 (P_os+g): 16.6 GB", (paper,), {"zero_stage": 2, "world_size": 64}),
        Case("ZeRO paper, stage 3 (P_os+g+p): 1.9 GB", (paper,), {"zero_stage": 3, "world_size": 64}),
        Case("plain data parallel (stage 0) does not shard anything", (1_000_000,),
             {"zero_stage": 0, "world_size": 8}),
        Case("any stage on one GPU is the full 16 bytes per parameter", (1_000_000,),
             {"zero_stage": 3, "world_size": 1}),
        Case("stage 1 on 2 GPUs", (1_000_000,), {"zero_stage": 1, "world_size": 2}),
        Case("stage 2 on 4 GPUs", (1_000_000,), {"zero_stage": 2, "world_size": 4}),
        Case("a size that does not divide evenly (no rounding)", (1001,), {"zero_stage": 3, "world_size": 3}),
        Case("GPT-2 small (124M) on 8 GPUs, stage 2", (124_000_000,), {"zero_stage": 2, "world_size": 8}),
        Case("zero parameters", (0,), {"zero_stage": 2, "world_size": 4}),
        Case("zero_stage=4 does not exist", (1000,), {"zero_stage": 4, "world_size": 8}, raises=ValueError),
        Case("zero_stage=-1", (1000,), {"zero_stage": -1}, raises=ValueError),
        Case("world_size=0", (1000,), {"zero_stage": 1, "world_size": 0}, raises=ValueError),
        Case("negative world_size", (1000,), {"world_size": -4}, raises=ValueError),
    ]
    for i in range(12):
        n = int(10 ** rng.uniform(3, 11.5))
        kwargs = {"zero_stage": int(rng.integers(0, 4)), "world_size": int(rng.choice([1, 2, 3, 4, 7, 8, 16,
                                                                                       64, 256, 1024]))}
        cases.append(Case(f"random #{i + 1} ({n:,} parameters, stage {kwargs['zero_stage']}, "
                          f"{kwargs['world_size']} GPUs)", (n,), kwargs))
    return cases


register(Exercise(
    id="scaling.adam_training_bytes",
    title="Model-state memory of mixed-precision Adam under ZeRO",
    signature="adam_training_bytes(n_params, *, zero_stage=0, world_size=1) -> float",
    reference=_adam_training_bytes,
    make_cases=_cases,
    compare=real(rtol=1e-9, atol=1e-6),
    hint="Per parameter: 2 bytes fp16 weights + 2 bytes fp16 gradients + 12 bytes of fp32 optimizer state "
         "(master weights, momentum, variance) = 16 bytes. Stage 1 divides the 12 by world_size, stage 2 "
         "also the 2 of the gradients, stage 3 also the 2 of the weights; stage 0 (plain DDP) divides "
         "nothing. Return bytes as a float (no rounding, no GB); ValueError for a stage outside 0..3 or "
         "world_size < 1.",
    lesson=f"{LESSON}#memory-of-training-and-zero",
))


# ---- the dynamic loss scale of torch.amp.GradScaler ------------------------------------------------

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
    id="scaling.update_loss_scale",
    title="The dynamic loss scale of torch.amp.GradScaler",
    signature="update_loss_scale(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5, "
              "growth_interval=2000) -> (new_scale, new_growth_tracker)",
    reference=_update_loss_scale,
    make_cases=_loss_scale_cases,
    compare=reals(["new_scale", "new_growth_tracker"], rtol=1e-6, atol=0.0),
    hint="After an overflow (found_inf): scale * backoff_factor and the tracker back to 0 (the step was "
         "skipped). Otherwise count the clean step: when the count reaches growth_interval, multiply the "
         "scale by growth_factor and reset the count to 0, else store the count. The scale is an fp32 "
         "tensor: a grown scale that is not finite in fp32 is not applied (the count still resets). "
         "ValueError for growth_factor <= 1, backoff_factor outside (0, 1), growth_interval < 1.",
    lesson=f"{LESSON}#mixed-precision",
))
