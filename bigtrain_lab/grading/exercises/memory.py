"""Exercises of the training-memory topic (lesson 03).

``memory.adam_training_bytes`` follows the ZeRO paper (Rajbhandari et al., "ZeRO: Memory Optimizations
Toward Training Trillion Parameter Models", SC 2020, section 3.1 and figure 1): mixed-precision Adam keeps
2 bytes (fp16 parameters) + 2 bytes (fp16 gradients) + K = 12 bytes (fp32 master parameters, momentum and
variance) per parameter; with data-parallel degree N_d, ZeRO stage 1 shards the 12 bytes, stage 2 also
the gradients, stage 3 also the parameters. No library implements the formula (DeepSpeed's estimators
add buffers and are not installed here), so the reference is the checker's own copy of it; the edge
cases include the paper's own figure-1 numbers (7.5 B parameters on 64 GPUs: 120, 31.4, 16.6, 1.9 GB).
"""

from __future__ import annotations

import numpy as np

from bigtrain_lab.grading.compare import real
from bigtrain_lab.grading.registry import Case, Exercise, register

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
    id="memory.adam_training_bytes",
    reference=_adam_training_bytes,
    make_cases=_cases,
    compare=real(rtol=1e-9, atol=1e-6),
    hint="Per parameter: 2 bytes fp16 weights + 2 bytes fp16 gradients + 12 bytes of fp32 optimizer state "
         "(master weights, momentum, variance) = 16 bytes. Stage 1 divides the 12 by world_size, stage 2 "
         "also the 2 of the gradients, stage 3 also the 2 of the weights; stage 0 (plain DDP) divides "
         "nothing. Return bytes as a float (no rounding, no GB); ValueError for a stage outside 0..3 or "
         "world_size < 1.",
    section="memory-of-training-and-zero",
))


# ---- the dynamic loss scale of torch.amp.GradScaler ------------------------------------------------
