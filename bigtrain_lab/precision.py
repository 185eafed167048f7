"""Floating-point formats and mixed precision: the measurements of lesson 03's precision sections.

* ``time_train_steps``: wall-clock milliseconds of full training steps (forward, backward, AdamW step) of
  a model in fp32 or under bf16 autocast, with a warm-up left out.
* ``float_formats`` / ``fp16_flush_fraction``: the numbers that decide fp16 underflow and loss scaling.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from bigtrain_lab.batch import LossFn, lm_loss

__all__ = ["FloatFormat", "float_formats", "fp16_flush_fraction", "time_train_steps"]


def time_train_steps(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], *, steps: int = 10,
                     warmup: int = 2, precision: str = "fp32", loss_fn: LossFn = lm_loss) -> list[float]:
    """Milliseconds of each of ``steps`` training steps on ``batch`` (after ``warmup`` untimed ones).

    A step is ``zero_grad``, forward and loss (under ``torch.autocast(bfloat16)`` when ``precision`` is
    "bf16"), ``backward`` and an AdamW step. The same batch every step: this times the arithmetic, not
    data loading. Report the median: other processes on the machine add outliers.
    """
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got {steps}, {warmup}")
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = batch
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    model.train()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(model, x, y)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(1000 * (time.perf_counter() - start))
    return times


@dataclass(frozen=True)
class FloatFormat:
    """Bits and limits of a floating-point format (from ``torch.finfo``)."""

    name: str
    bits: int
    exponent_bits: int
    mantissa_bits: int
    max: float
    smallest_normal: float
    smallest_subnormal: float
    eps: float


def float_formats() -> list[FloatFormat]:
    """fp32, fp16 and bf16: ``max`` (larger overflows to inf), ``smallest_normal`` (below it precision
    is lost), ``smallest_subnormal`` (below half of it a value becomes 0), ``eps`` (gap after 1.0)."""
    out = []
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
        info = torch.finfo(dtype)
        mantissa = int(round(-np.log2(info.eps)))
        exponent = info.bits - 1 - mantissa
        out.append(FloatFormat(name, info.bits, exponent, mantissa, float(info.max), float(info.tiny),
                               float(info.smallest_normal) * float(info.eps), float(info.eps)))
    return out


def fp16_flush_fraction(values: torch.Tensor, scale: float = 1.0) -> float:
    """Fraction of the non-zero ``values`` that become exactly 0 when ``values * scale`` is cast to fp16.

    ``scale`` is a loss scale: multiplying the loss by it multiplies every gradient by it (the chain rule
    is linear), which moves small gradients above fp16's underflow threshold (2**-25 rounds to 0).
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    values = values.detach().double().flatten()
    nonzero = values[values != 0]
    if nonzero.numel() == 0:
        return 0.0
    return float(((nonzero * scale).to(torch.float16) == 0).double().mean())
