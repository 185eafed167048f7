"""Batch size, gradient accumulation and floating-point formats: the measurements of lesson 03.

* ``time_train_steps``: wall-clock milliseconds of full training steps (forward, backward, AdamW step) of
  a model in fp32 or under bf16 autocast, with a warm-up left out.
* ``accumulated_gradients``: the gradients of ``k`` micro-batches summed the way a training loop does it,
  with or without dividing each micro-batch loss by ``k`` (the classic mistake).
* ``float_formats`` / ``fp16_flush_fraction``: the numbers that decide fp16 underflow and loss scaling.
* ``train_mlp_with_batch_size``: a small classifier trained for a fixed number of epochs with a given batch
  size and learning rate, for the batch-size-versus-generalisation experiment.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "FloatFormat",
    "MLPRun",
    "accumulated_gradients",
    "float_formats",
    "fp16_flush_fraction",
    "max_abs_difference",
    "time_train_steps",
    "train_mlp_with_batch_size",
]

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def _lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return model(x, y)[1]


def time_train_steps(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], *, steps: int = 10,
                     warmup: int = 2, precision: str = "fp32", loss_fn: LossFn = _lm_loss) -> list[float]:
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


def accumulated_gradients(model: nn.Module, micro_batches: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
                          scale_loss: bool = True, loss_fn: LossFn = _lm_loss) -> dict[str, torch.Tensor]:
    """The gradients a loop holds after ``backward`` on each micro-batch in turn (``.grad`` accumulates).

    ``scale_loss=True`` divides each micro-batch's (mean) loss by the number of micro-batches, so that
    the sum of the gradients is the gradient of the mean over all of them; ``False`` is the classic
    mistake (the gradients come out ``k`` times too large). Returns ``{name: gradient copy}``; the
    model's ``.grad`` are reset to None before and after.
    """
    if not micro_batches:
        raise ValueError("micro_batches is empty")
    k = len(micro_batches)
    model.zero_grad(set_to_none=True)
    for x, y in micro_batches:
        loss = loss_fn(model, x, y)
        (loss / k if scale_loss else loss).backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest ``|a[name] - b[name]|`` over every element of every tensor (same keys required)."""
    if a.keys() != b.keys():
        raise ValueError(f"different tensors: {sorted(a.keys() ^ b.keys())}")
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


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


@dataclass(frozen=True)
class MLPRun:
    """One run of ``train_mlp_with_batch_size``."""

    batch_size: int
    lr: float
    steps: int
    train_accuracy: float
    val_accuracy: float
    train_loss: float
    val_loss: float
    seconds: float


def train_mlp_with_batch_size(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                              *, batch_size: int, lr: float, epochs: int, hidden: Sequence[int] = (128,),
                              momentum: float = 0.9, seed: int = 0) -> MLPRun:
    """Train ``MLP(hidden)`` with SGD + momentum for ``epochs`` shuffled passes of mini-batches of
    ``batch_size`` (the last, smaller batch is kept) and return accuracies and losses on both splits.

    Same seed, same initial weights: only the batch size and the learning rate differ between runs.
    """
    from bigtrain_lab.models import MLP

    if batch_size < 1 or epochs < 1 or not lr > 0:
        raise ValueError(f"batch_size and epochs must be >= 1 and lr > 0, got {batch_size}, {epochs}, {lr}")
    torch.manual_seed(seed)
    Xt = torch.as_tensor(X_train, dtype=torch.float32)
    yt = torch.as_tensor(y_train, dtype=torch.long)
    Xv = torch.as_tensor(X_val, dtype=torch.float32)
    yv = torch.as_tensor(y_val, dtype=torch.long)
    model = MLP(Xt.shape[1], hidden, int(max(yt.max(), yv.max())) + 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    generator = torch.Generator().manual_seed(seed)
    steps, start = 0, time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(Xt), generator=generator).split(batch_size):
            loss = F.cross_entropy(model(Xt[idx]), yt[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
    seconds = time.perf_counter() - start
    with torch.no_grad():
        lt, lv = model(Xt), model(Xv)
        return MLPRun(batch_size, lr, steps, float((lt.argmax(1) == yt).float().mean()),
                      float((lv.argmax(1) == yv).float().mean()), float(F.cross_entropy(lt, yt)),
                      float(F.cross_entropy(lv, yv)), seconds)
