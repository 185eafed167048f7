"""Floating-point formats and mixed precision: the measurements of lesson 03's precision sections.

* ``time_train_steps``: wall-clock milliseconds of full training steps (forward, backward, AdamW step) of
  a model in fp32 or under bf16 autocast, with a warm-up left out.
* ``profile_step_ms``: where a training step's operator time goes (matmuls, attention, casts, the rest).
* ``float_formats`` / ``fp16_flush_fraction``: the numbers that decide fp16 underflow and loss scaling.
* ``cpu_fp32_flops_per_cycle`` / ``cpu_peak_flops``: a CPU's peak fp32 FLOP/s, for an MFU estimate, from
  its vendor, family, model and feature flags (``parse_cpuinfo`` reads them from ``/proc/cpuinfo``'s text).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from bigtrain_lab.batch import LossFn, lm_loss

__all__ = ["PROFILE_CATEGORIES", "CpuInfo", "FloatFormat", "cpu_fp32_flops_per_cycle", "cpu_peak_flops",
           "float_formats", "fp16_flush_fraction", "parse_cpuinfo", "profile_step_ms", "time_train_steps"]


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


#: operator names (``torch.profiler`` keys) grouped as lesson 03 and ``bench/precision_memory.py`` report them
PROFILE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm"),
    "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::_scaled_dot_product_flash_attention_for_cpu_backward"),
    "casts_copies": ("aten::copy_", "aten::_to_copy"),
}


def profile_step_ms(make_model: Callable[[], nn.Module], batch: tuple[torch.Tensor, torch.Tensor], *,
                    precision: str = "fp32", steps: int = 2, warmup: int = 1,
                    categories: Mapping[str, Iterable[str]] = PROFILE_CATEGORIES) -> dict[str, float]:
    """Operator self time per training step, in ms, by category, plus ``"other"`` (everything else).

    Profiles ``time_train_steps(make_model(), batch, steps=steps, warmup=warmup, precision=precision)``
    with ``torch.profiler`` (CPU activity) and divides each category's self time by the ``warmup + steps``
    steps profiled. Sets ``KINETO_LOG_LEVEL=6`` unless it is set: the profiler otherwise prints
    "USDT: ... profiler_start / profiler_stop" on stderr at every use (read once, before the first profile
    of the process).
    """
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        time_train_steps(make_model(), batch, steps=steps, warmup=warmup, precision=precision)
    events = prof.key_averages()
    per_step_us = 1000 * (steps + warmup)
    out = {name: sum(e.self_cpu_time_total for e in events if e.key in set(keys)) / per_step_us
           for name, keys in categories.items()}
    out["other"] = sum(e.self_cpu_time_total for e in events) / per_step_us - sum(out.values())
    return out


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
    is lost), ``smallest_subnormal`` (``s``; round to nearest, ties to even: a magnitude below s / 2 becomes
    0, s / 2 itself too (the tie goes to the even neighbour, 0), anything above s / 2 and up to s rounds
    to s), ``eps`` (gap after 1.0).

    >>> fp16 = float_formats()[1]
    >>> fp16.smallest_subnormal == 2.0**-24, fp16.smallest_normal == 2.0**-14, fp16.max
    (True, True, 65504.0)
    """
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
    is linear), which moves small gradients above fp16's underflow threshold: a magnitude at or below
    2**-25 (half the smallest subnormal, 2**-24) rounds to 0, anything above it to at least 2**-24.
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    values = values.detach().double().flatten()
    nonzero = values[values != 0]
    if nonzero.numel() == 0:
        return 0.0
    return float(((nonzero * scale).to(torch.float16) == 0).double().mean())


# ----------------------------------------------------------------------------------------------------
# A CPU's peak fp32 FLOP/s (the denominator of a CPU MFU estimate)


@dataclass(frozen=True)
class CpuInfo:
    """What decides a core's fp32 FLOP per cycle: ``vendor`` ("GenuineIntel", "AuthenticAMD", ...),
    ``family`` and ``model`` (decimal, as ``/proc/cpuinfo`` prints them), ``flags``; plus ``mhz`` (the
    clock ``/proc/cpuinfo`` reports: the current one on bare metal, the nominal one in most VMs) and
    ``cores`` (physical cores: SMT siblings share their core's FMA units)."""

    vendor: str = ""
    family: int | None = None
    model: int | None = None
    flags: frozenset[str] = frozenset()
    mhz: float | None = None
    cores: int | None = None


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor of ``/proc/cpuinfo``'s ``text``; ``cores`` counts distinct (physical id, core id)
    pairs, or processors where the file has no core ids.

    >>> info = parse_cpuinfo("vendor_id : AuthenticAMD\\ncpu family : 25\\nmodel : 1\\ncpu MHz : 2445.4\\n"
    ...                      "flags : fpu avx2 fma\\n")
    >>> info.vendor, info.family, info.model, sorted(info.flags), info.mhz, info.cores
    ('AuthenticAMD', 25, 1, ['avx2', 'fma', 'fpu'], 2445.4, 1)
    """
    fields: dict[str, str] = {}
    cores: set[tuple[str, str]] = set()
    processors = 0
    current: dict[str, str] = {}

    def close(block: dict[str, str]) -> None:
        nonlocal processors
        if not block:
            return
        processors += 1
        if "core id" in block:
            cores.add((block.get("physical id", "0"), block["core id"]))
        for key, value in block.items():
            fields.setdefault(key, value)

    for line in text.splitlines():
        if not line.strip():
            close(current)
            current = {}
            continue
        key, _, value = line.partition(":")
        current[key.strip()] = value.strip()
    close(current)

    def number(key: str, kind: Callable[[str], float | int]) -> float | int | None:
        try:
            return kind(fields[key])
        except (KeyError, ValueError):
            return None

    return CpuInfo(vendor=fields.get("vendor_id", ""), family=number("cpu family", int),
                   model=number("model", int), flags=frozenset(fields.get("flags", "").split()),
                   mhz=number("cpu MHz", float), cores=(len(cores) or processors) or None)


def cpu_fp32_flops_per_cycle(info: CpuInfo) -> tuple[int, str]:
    """(peak fp32 FLOP per cycle per core, why): FMA units x vector lanes x 2 (an FMA is 2 FLOP).

    The widest instruction set is not the width of the units behind it:

    * AMD Zen 1 / Zen+ (family 23, models below 0x30): AVX2 on 128-bit units, 2 FMA: 16.
    * AMD Zen 2 and Zen 3 (family 23 from model 0x30, family 25 without AVX-512): 2 FMA of 256 bits: 32.
    * AMD Zen 4 (family 25 with AVX-512): 512-bit instructions run as two 256-bit halves ("double
      pumped") on 2 FMA units of 256 bits: 32, not the 64 the AVX-512 flag suggests.
    * AMD Zen 5 (family 26) with AVX-512: 2 FMA of 512 bits on desktop and server parts: 64 (the mobile
      parts keep 256-bit units: half).
    * Intel with AVX-512: 64, assuming two 512-bit FMA units (Xeon Gold/Platinum, Sapphire Rapids and
      later); parts with one (many Xeon Bronze/Silver, client Ice/Tiger Lake) reach half.
    * Intel with AVX2 and FMA (Haswell and later): 2 FMA of 256 bits: 32.
    * AVX without FMA: one 256-bit add and one multiply port: 16. Otherwise SSE: 8.

    >>> cpu_fp32_flops_per_cycle(CpuInfo("AuthenticAMD", 25, 17, frozenset({"avx2", "fma", "avx512f"})))[0]
    32
    """
    flags, vendor, family, model = info.flags, info.vendor, info.family, info.model
    fma = {"avx2", "fma"} <= flags
    if vendor == "AuthenticAMD" and fma and family is not None:
        if family == 23 and model is not None and model < 0x30:
            return 16, "AMD Zen 1 / Zen+: AVX2 on two 128-bit FMA units"
        if family in (23, 25):
            if "avx512f" in flags:
                return 32, "AMD Zen 4: AVX-512 double-pumped on two 256-bit FMA units"
            return 32, "AMD Zen 2 / Zen 3: two 256-bit FMA units"
        if family >= 26 and "avx512f" in flags:
            return 64, "AMD Zen 5: two 512-bit FMA units (mobile parts: half)"
    if "avx512f" in flags:
        return 64, "AVX-512: two 512-bit FMA units assumed (one on some parts: half)"
    if fma:
        return 32, "AVX2: two 256-bit FMA units"
    if "avx" in flags:
        return 16, "AVX without FMA: one 256-bit add and one multiply per cycle"
    return 8, "SSE: 128-bit add and multiply"


def cpu_peak_flops(info: CpuInfo, threads: int, ghz: float | None = None) -> tuple[float, str]:
    """(peak fp32 FLOP/s of ``threads`` threads, how it was obtained): cores x GHz x FLOP per cycle.

    Threads beyond the physical cores add nothing (SMT siblings share the FMA units). ``ghz``: the clock
    to assume (default ``info.mhz``, else 2.5); a core's all-core turbo can exceed the reported clock, so
    treat the result as an estimate, not a bound.

    >>> zen3 = CpuInfo("AuthenticAMD", 25, 1, frozenset({"avx2", "fma"}), 2500.0, 2)
    >>> cpu_peak_flops(zen3, threads=4)[0] / 1e9
    160.0
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    per_cycle, why = cpu_fp32_flops_per_cycle(info)
    cores = min(threads, info.cores) if info.cores else threads
    clock = ghz if ghz is not None else (info.mhz / 1000 if info.mhz else 2.5)
    peak = cores * clock * 1e9 * per_cycle
    return peak, (f"CPU estimate: {cores} core{'s' if cores != 1 else ''} x {clock:.2f} GHz x {per_cycle} fp32 "
                  f"FLOP/cycle ({why}) = {peak / 1e12:.3f} TFLOP/s; pass --peak-tflops for a measured one")
