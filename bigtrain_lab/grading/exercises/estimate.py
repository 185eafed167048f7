"""Exercises of the planning topic (lesson 15, notebook 2): back-of-envelope arithmetic of a training run.

The references are ``bigtrain_lab.estimate.formulas`` (their docstrings state the conventions): model states of
mixed-precision AdamW per GPU of a (DP, TP, PP, ZeRO) plan, days of training from 6ND at an MFU, and the time of
a ring all-reduce (``2 (n - 1)`` steps of ``M / n`` bytes plus a latency per step). Every run draws fresh numbers
next to named edge cases (one GPU, ZeRO-3 with dp 1, tp * pp > 1, latency 0 and > 0, an empty message).
"""

from __future__ import annotations

import numpy as np

from bigtrain_lab.estimate.formulas import allreduce_seconds, training_days, training_memory_per_gpu
from bigtrain_lab.grading.compare import real
from bigtrain_lab.grading.registry import Case, Exercise, register

SECTION = "back-of-envelope"
H100, A100 = 989e12, 312e12


def _memory_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("7B on one GPU: 16 bytes per parameter", (7e9,)),
        Case("ZeRO-3 with dp=1 shards nothing", (7e9,), {"dp": 1, "zero_stage": 3}),
        Case("plain DP (stage 0) on 64 GPUs replicates everything", (7e9,), {"dp": 64}),
        Case("ZeRO-1 on 8 GPUs: only the 12 optimizer bytes are divided", (1e9,), {"dp": 8, "zero_stage": 1}),
        Case("ZeRO-2 on 8 GPUs: optimizer states and gradients", (1e9,), {"dp": 8, "zero_stage": 2}),
        Case("ZeRO-3 on 8 GPUs: everything divided", (1e9,), {"dp": 8, "zero_stage": 3}),
        Case("tp=8, pp=1: each GPU holds 1/8 of the layers' weights", (70e9,), {"tp": 8}),
        Case("tp*pp > 1 and ZeRO-1 over dp (70B, dp 4, tp 8, pp 4)", (70e9,),
             {"dp": 4, "tp": 8, "pp": 4, "zero_stage": 1}),
        Case("fp32 AdamW on a CPU (4 + 4 + 8 bytes), ZeRO-1 over 2", (1_234_567,),
             {"dp": 2, "zero_stage": 1, "param_bytes": 4, "grad_bytes": 4, "optimizer_bytes": 8}),
        Case("zero_stage=4 does not exist", (1e9,), {"dp": 8, "zero_stage": 4}, raises=ValueError),
        Case("dp=0", (1e9,), {"dp": 0}, raises=ValueError),
        Case("negative parameter count", (-5.0,), raises=ValueError),
    ]
    for i in range(8):
        n = float(int(10 ** rng.uniform(6, 12)))
        kw = {"dp": int(rng.choice([1, 2, 3, 4, 8, 16, 64, 512])), "tp": int(rng.choice([1, 2, 4, 8])),
              "pp": int(rng.choice([1, 2, 4, 8, 16])), "zero_stage": int(rng.integers(0, 4))}
        if i % 2:  # another recipe: fp32 weights and gradients, or 8-bit optimizer states
            kw.update(zip(("param_bytes", "grad_bytes", "optimizer_bytes"),
                          [(4, 4, 8), (2, 4, 12), (2, 2, 4)][int(rng.integers(0, 3))], strict=True))
        cases.append(Case(f"random #{i + 1} ({n:.3g} parameters, {kw})", (n,), kw))
    return cases


register(Exercise(
    id="estimate.training_memory_per_gpu",
    reference=training_memory_per_gpu,
    make_cases=_memory_cases,
    compare=real(rtol=1e-6, atol=1e-6),
    hint="Each GPU holds n_params / (tp * pp) parameters; per parameter 2 bytes of weights, 2 of gradients, 12 of "
         "optimizer states (the keyword arguments). ZeRO then divides by dp: stage 1 the optimizer states, stage 2 "
         "also the gradients, stage 3 also the weights; stage 0 nothing. Bytes as a float; ValueError for a stage "
         "outside 0..3, a size < 1 or a negative count.",
    section=SECTION,
))


def _days_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("one GPU, 1e9 parameters, 1e9 tokens, H100 at MFU 1", (1e9, 1e9, 1, H100, 1.0)),
        Case("Llama-2 70B: 70e9 x 2e12 tokens on 2048 A100s at MFU 0.43", (70e9, 2e12, 2048, A100, 0.43)),
        Case("7B x 1T tokens on 512 H100s at MFU 0.4", (7e9, 1e12, 512, H100, 0.4)),
        Case("Chinchilla-optimal 70B (1.4T tokens) on 1024 A100s at 0.5", (70e9, 1.4e12, 1024, A100, 0.5)),
        Case("MFU 0.25 takes twice as long as 0.5", (1e9, 2e10, 8, A100, 0.25)),
        Case("mfu=0 is refused", (1e9, 1e9, 8, H100, 0.0), raises=ValueError),
        Case("mfu > 1 is refused", (1e9, 1e9, 8, H100, 1.5), raises=ValueError),
        Case("n_gpus=0 is refused", (1e9, 1e9, 0, H100, 0.4), raises=ValueError),
    ]
    for i in range(8):
        args = (float(10 ** rng.uniform(8, 12)), float(10 ** rng.uniform(9, 13)), int(2 ** rng.integers(0, 14)),
                float(rng.choice([H100, A100, 1e14])), float(rng.uniform(0.1, 0.7)))
        cases.append(Case(f"random #{i + 1} (N {args[0]:.3g}, D {args[1]:.3g}, {args[2]} GPUs, MFU "
                          f"{args[4]:.2f})", args))
    return cases


register(Exercise(
    id="estimate.training_days",
    reference=training_days,
    make_cases=_days_cases,
    compare=real(rtol=1e-6, atol=0),
    hint="Training FLOPs are 6 N D (forward 2ND, backward 4ND). The cluster delivers n_gpus * peak_flops * mfu "
         "FLOP/s. Seconds = FLOPs / that; days = seconds / 86400 (not hours). ValueError when mfu is not in (0, 1] "
         "or n_gpus < 1.",
    section=SECTION,
))


def _allreduce_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("one GPU: nothing to send", (1e9, 1, 100e9)),
        Case("one GPU with latency: still 0", (1e9, 1, 100e9, 1e-5)),
        Case("an empty message, no latency", (0.0, 8, 100e9)),
        Case("an empty message pays the latency of every step", (0.0, 8, 100e9, 5e-6)),
        Case("2 GPUs, 1 GB at 100 GB/s, latency 0", (1e9, 2, 100e9)),
        Case("8 GPUs, 1 GB at 100 GB/s, latency 0", (1e9, 8, 100e9)),
        Case("8 GPUs, 1 GB at 100 GB/s, latency 10 us", (1e9, 8, 100e9, 1e-5)),
        Case("1024 GPUs: almost 2 M / B", (4e9, 1024, 50e9, 2e-6)),
        Case("7B gradients in bf16 over 64 GPUs at 25 GB/s", (14e9, 64, 25e9, 5e-6)),
        Case("bandwidth=0 is refused", (1e9, 8, 0.0), raises=ValueError),
        Case("a negative message is refused", (-1.0, 8, 1e9), raises=ValueError),
        Case("n_gpus=0 is refused", (1e9, 0, 1e9), raises=ValueError),
    ]
    for i in range(8):
        args = (float(10 ** rng.uniform(3, 11)), int(rng.integers(2, 2049)), float(10 ** rng.uniform(9, 12)),
                float(rng.choice([0.0, 1e-6, 5e-6, 3e-5])))
        cases.append(Case(f"random #{i + 1} ({args[0]:.3g} bytes, {args[1]} GPUs, {args[2]:.3g} B/s, latency "
                          f"{args[3]:g} s)", args))
    return cases


register(Exercise(
    id="estimate.allreduce_seconds",
    reference=allreduce_seconds,
    make_cases=_allreduce_cases,
    compare=real(rtol=1e-6, atol=1e-15),
    hint="A ring all-reduce is a reduce-scatter then an all-gather: 2 (n - 1) steps, each sending message_bytes / n "
         "over a link of `bandwidth` bytes/s and paying `latency` once per step. Total 2 (n - 1) * (latency + "
         "message_bytes / (n * bandwidth)): close to 2 M / B for large n, 0 for one GPU. ValueError for a "
         "bandwidth <= 0, a negative message or latency, n_gpus < 1.",
    section=SECTION,
))
