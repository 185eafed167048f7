"""Back-of-envelope drills: fresh realistic numbers, one question, an answer computed by ``formulas``.

``drill(kind=None, *, seed=None)`` draws a ``Drill`` of one of ``DRILL_KINDS`` (a random kind when ``kind`` is
None; fresh numbers on every call unless ``seed`` is given). ``drill.grade(value)`` accepts a number or a numeric
string -- ``"8.4e22"``, ``"1,200"``, ``"35 GiB"``, ``"3.5 GB"``, ``"12 ms"``, ``"0.5 s"``, ``"25%"`` -- and is right
within ``rel_tol`` (10 %: back-of-envelope) of the answer in the drill's ``unit``. The quiz layer records the
outcome in the spaced-repetition schedule (``bigtrain_lab.quiz.review.record_drill``, card ``card_id(kind)`` =
``drill:<kind>``), and ``due_drill_kinds`` there says which kinds are due again.

The answers come from ``bigtrain_lab.estimate.formulas`` (``training_flops``, ``training_days``,
``training_memory_per_gpu``, ``allreduce_seconds``, ``bubble_fraction``) and
``bigtrain_lab.llm.kv_cache.kv_cache_bytes``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from bigtrain_lab.estimate import formulas
from bigtrain_lab.llm.kv_cache import kv_cache_bytes

__all__ = ["CARD_PREFIX", "DEFAULT_REL_TOL", "DRILL_KINDS", "Drill", "DrillResult", "card_id", "drill",
           "parse_value"]

DRILL_KINDS = ("training_flops", "training_days", "memory_per_gpu", "kv_cache_bytes", "allreduce_seconds",
               "bubble_fraction")
DEFAULT_REL_TOL = 0.10
CARD_PREFIX = "drill:"
GiB = 2 ** 30

#: dense BF16 peak FLOP/s (no sparsity): NVIDIA's H100 SXM and A100 SXM data sheets
GPUS = {"H100 SXM": 989e12, "A100": 312e12}
#: Llama-like attention shapes (n_layer, n_head, n_kv_head, head_dim), from the models' published configs
KV_SHAPES = {"Llama-2-7B": (32, 32, 32, 128), "Llama-2-13B": (40, 40, 40, 128), "Llama-3-8B": (32, 32, 8, 128),
             "Mistral-7B": (32, 32, 8, 128), "Llama-3-70B": (80, 64, 8, 128), "Llama-3.1-405B": (126, 128, 8, 128)}
MODEL_SIZES = (1e9, 1.3e9, 3e9, 7e9, 8e9, 13e9, 30e9, 34e9, 70e9, 175e9, 405e9)
#: per-GPU link bandwidths, bytes/s: InfiniBand NDR 400 Gb/s and HDR 200 Gb/s, NVLink 3 / 4 per direction
LINKS = {"400 Gb/s InfiniBand (50 GB/s)": 50e9, "200 Gb/s InfiniBand (25 GB/s)": 25e9,
         "NVLink 3 (300 GB/s per direction)": 300e9, "NVLink 4 (450 GB/s per direction)": 450e9}

#: units a drill answers in, and the text suffixes grade() understands for each (value x factor = the unit)
_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21, "Y": 1e24}
_BINARY = {"Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30, "Ti": 2.0 ** 40, "Pi": 2.0 ** 50}


def _suffix_factor(unit: str, suffix: str) -> float | None:
    """How many ``unit`` one ``suffix`` is (``None``: not understood)."""
    s = suffix.strip()
    if unit == "FLOPs":
        m = re.fullmatch(r"([kKMGTPEZY]?)\s*(?:flops?|FLOPs?|FLOP/?s?)?", s)
        return _SI[m.group(1)] if m else None
    if unit == "GiB":
        m = re.fullmatch(r"(Ki|Mi|Gi|Ti|Pi|[kKMGTP]?)\s*(?:B|bytes?)", s)
        if m:
            prefix = m.group(1)
            return (_BINARY.get(prefix) or _SI[prefix]) / GiB
        return 1.0 if s == "" else None
    if unit == "days":
        table = {"": 1.0, "d": 1.0, "day": 1.0, "days": 1.0, "h": 1 / 24, "hours": 1 / 24, "hour": 1 / 24,
                 "weeks": 7.0, "week": 7.0, "天": 1.0}
        return table.get(s)
    if unit == "ms":
        table = {"": 1.0, "ms": 1.0, "s": 1e3, "sec": 1e3, "seconds": 1e3, "us": 1e-3, "µs": 1e-3, "毫秒": 1.0,
                 "秒": 1e3}
        return table.get(s)
    if unit == "fraction":
        return {"": 1.0, "%": 0.01}.get(s)
    raise ValueError(f"unknown unit {unit!r}")


_NUMBER = re.compile(r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*")


def parse_value(value: float | str, unit: str) -> float:
    """``value`` as a number of ``unit``: a real number as it is; a string's number times its suffix
    (``"3.5 GB"`` -> GiB, ``"0.5 s"`` -> ms, ``"25%"`` -> 0.25, ``"8.4e22"``; commas and ``_`` ignored).

    TypeError for anything but a real number or a string; ValueError for a string that is not a number with
    a suffix understood for ``unit``, or a number that is not finite.
    """
    if isinstance(value, bool) or not isinstance(value, Real | str):
        raise TypeError(f"an answer is a number or a numeric string, got {type(value).__name__}")
    if isinstance(value, Real):
        number = float(value)
    else:
        text = re.sub(r"\s*[x×*]\s*10\s*(?:\^|\*\*)\s*", "e", value.replace(",", "").replace("_", ""))
        m = _NUMBER.fullmatch(text)
        factor = _suffix_factor(unit, m.group(2)) if m else None
        if m is None or factor is None:
            raise ValueError(f"could not read {value!r} as a number in {unit}: write e.g. "
                             f"{_EXAMPLES[unit]}")
        number = float(m.group(1)) * factor
    if not math.isfinite(number):
        raise ValueError(f"an answer must be a finite number of {unit}, got {value!r}")
    return number


_EXAMPLES = {"FLOPs": "'8.4e22' or '84 ZFLOPs'", "GiB": "'35', '35 GiB' or '37.6 GB'",
             "days": "'12.5' or '12.5 days'", "ms": "'120', '120 ms' or '0.12 s'",
             "fraction": "'0.25' or '25%'"}


@dataclass(frozen=True)
class DrillResult:
    """A graded answer: ``correct``, the ``expected`` answer, what was read (``got``; None if nothing could be
    read) and a ``message`` with the formula and the numbers."""

    correct: bool
    expected: float
    got: float | None
    message: str


def _fmt(x: float) -> str:
    """Four significant figures, scientific notation for large or small numbers."""
    if x == 0:
        return "0"
    return f"{x:.4g}" if 1e-3 <= abs(x) < 1e6 else f"{x:.3e}"


@dataclass(frozen=True)
class Drill:
    """One back-of-envelope question: ``answer`` in ``unit``, right within ``rel_tol``; ``inputs`` are the drawn
    numbers, ``explanation`` the formula with them."""

    kind: str
    question: str
    question_zh: str
    answer: float
    unit: str
    rel_tol: float
    explanation: str
    inputs: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def grade(self, value: float | str) -> DrillResult:
        """Right when ``|value - answer| <= rel_tol * |answer|`` (``value`` read by ``parse_value``); an
        unreadable string gives ``correct=False, got=None`` and says what to write."""
        try:
            got = parse_value(value, self.unit)
        except ValueError as exc:
            return DrillResult(False, self.answer, None, str(exc))
        unit = "" if self.unit == "fraction" else f" {self.unit}"
        error = abs(got - self.answer) / abs(self.answer)
        correct = error <= self.rel_tol
        if correct:
            head = f"right: {_fmt(self.answer)}{unit} (you: {_fmt(got)}, {error:.1%} off; tolerance {self.rel_tol:.0%})"
        else:
            ratio = got / self.answer if self.answer else math.inf
            off = (f"{ratio:.3g}x the answer" if ratio > 0 else "the wrong sign")
            head = (f"not quite: the answer is {_fmt(self.answer)}{unit}; you gave {_fmt(got)}{unit}, {off} "
                    f"(tolerance {self.rel_tol:.0%})")
        return DrillResult(correct, self.answer, got, f"{head}\n{self.explanation}")

    def __str__(self) -> str:
        return f"[{self.kind}] {self.question}"


# ---- the kinds ------------------------------------------------------------------------------------------------

def _si(x: float, unit: str = "") -> str:
    """``7e9`` -> ``"7B"``, ``1.4e12`` -> ``"1.4T"`` (for counts of parameters and tokens)."""
    for factor, name in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= factor:
            return f"{x / factor:.3g}{name}{unit}"
    return f"{x:.3g}{unit}"


def _tokens(rng: random.Random) -> float:
    return rng.choice((20e9, 50e9, 100e9, 300e9, 500e9, 1e12, 1.4e12, 2e12, 3e12, 5e12, 8e12, 15e12))


def _training_flops(rng: random.Random) -> tuple[dict, float, str, str, str, str]:
    n, d = rng.choice(MODEL_SIZES), _tokens(rng)
    flops = formulas.training_flops(n, d)
    q = (f"A dense transformer with {_si(n)} parameters is trained on {_si(d)} tokens. Using the 6ND rule, how "
         f"many training FLOPs is that? Answer in FLOPs (e.g. 1.2e23).")
    zh = (f"一个 {_si(n)} 参数的稠密 Transformer 在 {_si(d)} 个 token 上训练。按 6ND 估算，训练需要多少 FLOPs？"
          f"以 FLOPs 为单位作答（如 1.2e23）。")
    exp = f"6 N D = 6 x {_fmt(n)} x {_fmt(d)} = {_fmt(flops)} FLOPs (forward 2ND + backward 4ND)"
    return {"n_params": n, "n_tokens": d}, flops, "FLOPs", q, zh, exp


def _training_days(rng: random.Random) -> tuple[dict, float, str, str, str, str]:
    while True:
        n, d = rng.choice(MODEL_SIZES), _tokens(rng)
        gpu = rng.choice(list(GPUS))
        n_gpus = rng.choice((8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384))
        mfu = round(rng.uniform(0.30, 0.55), 2)
        days = formulas.training_days(n, d, n_gpus, GPUS[gpu], mfu)
        if 0.5 <= days <= 1000:
            break
    peak = GPUS[gpu]
    q = (f"Train {_si(n)} parameters on {_si(d)} tokens with {n_gpus} {gpu} GPUs ({peak / 1e12:.0f} TFLOP/s dense "
         f"BF16 peak each) at {mfu:.0%} MFU. How many days does it take (6ND FLOPs)? Answer in days.")
    zh = (f"用 {n_gpus} 张 {gpu} GPU（每张 BF16 稠密峰值 {peak / 1e12:.0f} TFLOP/s）、MFU {mfu:.0%}，"
          f"在 {_si(d)} 个 token 上训练 {_si(n)} 参数的模型（按 6ND 计 FLOPs），需要多少天？以天为单位作答。")
    exp = (f"6 N D / (GPUs x peak x MFU) = 6 x {_fmt(n)} x {_fmt(d)} / ({n_gpus} x {_fmt(peak)} x {mfu}) "
           f"= {_fmt(days * 86400)} s = {_fmt(days)} days (86 400 s a day)")
    return ({"n_params": n, "n_tokens": d, "n_gpus": n_gpus, "gpu": gpu, "peak_flops": peak, "mfu": mfu},
            days, "days", q, zh, exp)


def _memory_per_gpu(rng: random.Random) -> tuple[dict, float, str, str, str, str]:
    n = rng.choice(MODEL_SIZES)
    tp = rng.choice((1, 2, 4, 8))
    pp = rng.choice((1, 1, 2, 4, 8))
    dp = rng.choice((1, 2, 4, 8, 16, 32, 64))
    zero = rng.choice((0, 1, 2, 3)) if dp > 1 else 0
    gib = formulas.training_memory_per_gpu(n, dp=dp, tp=tp, pp=pp, zero_stage=zero) / GiB
    q = (f"A {_si(n)}-parameter model trains with mixed-precision AdamW: per parameter 2 bytes of bf16 weights, "
         f"2 of bf16 gradients and 12 of fp32 master weights, momentum and variance. The plan is dp={dp}, "
         f"tp={tp}, pp={pp} with ZeRO stage {zero}. How much memory do the model states take on each GPU "
         f"(activations excluded)? Answer in GiB (2^30 bytes).")
    zh = (f"一个 {_si(n)} 参数的模型用混合精度 AdamW 训练：每个参数 2 字节 bf16 权重、2 字节 bf16 梯度、12 字节 fp32 "
          f"主权重与动量和方差。并行方案 dp={dp}、tp={tp}、pp={pp}，ZeRO 阶段 {zero}。每张 GPU 上模型状态占多少内存"
          f"（不含激活）？以 GiB（2^30 字节）为单位作答。")
    shard = n / (tp * pp)
    w, g, o = (f"/{dp}" if zero >= s else "" for s in (3, 2, 1))
    exp = (f"N / (tp pp) = {_fmt(n)} / {tp * pp} = {_fmt(shard)} parameters per GPU; x (2{w} + 2{g} + 12{o}) bytes "
           f"(ZeRO-{zero} shards {['nothing', 'the optimizer states', 'optimizer states + gradients', 'everything'][zero]}"
           f" over dp) = {_fmt(gib * GiB)} bytes = {_fmt(gib)} GiB")
    return {"n_params": n, "dp": dp, "tp": tp, "pp": pp, "zero_stage": zero}, gib, "GiB", q, zh, exp


def _kv_cache(rng: random.Random) -> tuple[dict, float, str, str, str, str]:
    name = rng.choice(list(KV_SHAPES))
    n_layer, n_head, n_kv_head, head_dim = KV_SHAPES[name]
    tokens = rng.choice((2048, 4096, 8192, 16384, 32768, 131072))
    batch = rng.choice((1, 4, 8, 16, 32, 64))
    gib = kv_cache_bytes(n_layer=n_layer, n_kv_head=n_kv_head, head_dim=head_dim, tokens=tokens, batch=batch) / GiB
    q = (f"A {name}-shaped model: {n_layer} layers, {n_head} query heads, {n_kv_head} key/value heads, head_dim "
         f"{head_dim}. Serving a batch of {batch} sequence{'s' if batch > 1 else ''} of {tokens} tokens with a bf16 KV cache: how big is "
         f"the cache? Answer in GiB (2^30 bytes).")
    zh = (f"一个 {name} 形状的模型：{n_layer} 层，{n_head} 个查询头，{n_kv_head} 个键/值头，head_dim {head_dim}。"
          f"以 bf16 KV 缓存服务 {batch} 条长 {tokens} token 的序列，缓存有多大？以 GiB（2^30 字节）为单位作答。")
    exp = (f"2 (K and V) x layers x kv_heads x head_dim x tokens x batch x 2 bytes = 2 x {n_layer} x {n_kv_head} x "
           f"{head_dim} x {tokens} x {batch} x 2 = {_fmt(gib * GiB)} bytes = {_fmt(gib)} GiB"
           + (f" (KV heads, not the {n_head} query heads: grouped-query attention)" if n_kv_head != n_head else ""))
    return ({"model": name, "n_layer": n_layer, "n_head": n_head, "n_kv_head": n_kv_head, "head_dim": head_dim,
             "tokens": tokens, "batch": batch, "bytes_per_element": 2}, gib, "GiB", q, zh, exp)


def _allreduce(rng: random.Random) -> tuple[dict, float, str, str, str, str]:
    link = rng.choice(list(LINKS))
    bandwidth = LINKS[link]
    n_gpus = rng.choice((2, 4, 8, 16, 64, 256, 1024))
    if rng.random() < 0.5:
        n = rng.choice(MODEL_SIZES[:8])
        message = 2 * n
        what, what_zh = f"the bf16 gradients of a {_si(n)}-parameter model", f"{_si(n)} 参数模型的 bf16 梯度"
    else:
        message = rng.choice((25e6, 100e6, 250e6, 500e6))
        what, what_zh = "one gradient bucket", "一个梯度桶"
    ms = formulas.allreduce_seconds(message, n_gpus, bandwidth) * 1e3
    q = (f"A ring all-reduce of {what}, {_fmt(message / 1e9)} GB (1 GB = 1e9 bytes), over {n_gpus} GPUs, each "
         f"sending on a {link} link; latency ignored. How long does it take? Answer in ms.")
    zh = (f"对{what_zh}（{_fmt(message / 1e9)} GB，1 GB = 1e9 字节）在 {n_gpus} 张 GPU 上做环形 all-reduce，每张 GPU "
          f"的链路为 {link}，忽略延迟。需要多少时间？以毫秒为单位作答。")
    exp = (f"2 (n - 1) / n x M / bandwidth = 2 x {n_gpus - 1} / {n_gpus} x {_fmt(message)} B / {_fmt(bandwidth)} B/s "
           f"= {_fmt(ms / 1e3)} s = {_fmt(ms)} ms (a reduce-scatter then an all-gather, each moving (n - 1)/n of M)")
    return ({"message_bytes": message, "n_gpus": n_gpus, "bandwidth": bandwidth, "link": link}, ms, "ms", q, zh, exp)


def _bubble(rng: random.Random) -> tuple[dict, float, str, str, str, str]:
    p = rng.choice((2, 4, 8, 16, 32))
    m = rng.choice((1, 2, 4, 8, 16, 32, 64, 128))
    frac = formulas.bubble_fraction(p, m)
    if frac == 0:  # only with p = 1, which is never drawn
        raise AssertionError("a drill's answer must not be 0")
    q = (f"A pipeline of p = {p} stages runs m = {m} micro-batches per step (GPipe or 1F1B, equal stage times). "
         f"What fraction of each stage's time is idle (the bubble)? Answer as a fraction, e.g. 0.25.")
    zh = (f"一条 p = {p} 级的流水线每步处理 m = {m} 个微批次（GPipe 或 1F1B，各级耗时相同）。每级有多少比例的时间空闲"
          f"（气泡）？以小数作答，如 0.25。")
    exp = f"(p - 1) / (m + p - 1) = {p - 1} / ({m} + {p - 1}) = {frac:.4g}"
    return {"num_stages": p, "num_microbatches": m}, frac, "fraction", q, zh, exp


_MAKERS: dict[str, Callable[[random.Random], tuple[dict, float, str, str, str, str]]] = {
    "training_flops": _training_flops, "training_days": _training_days, "memory_per_gpu": _memory_per_gpu,
    "kv_cache_bytes": _kv_cache, "allreduce_seconds": _allreduce, "bubble_fraction": _bubble}


def drill(kind: str | None = None, *, seed: int | None = None) -> Drill:
    """A fresh ``Drill`` of ``kind`` (one of ``DRILL_KINDS``; None: a random kind). The same ``seed`` gives the
    same drill; without one every call draws new numbers."""
    if kind is not None and kind not in DRILL_KINDS:
        raise ValueError(f"kind must be None or one of {', '.join(DRILL_KINDS)}; got {kind!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an integer or None, got {seed!r}")
    rng = random.Random(seed)
    kind = kind if kind is not None else rng.choice(DRILL_KINDS)
    inputs, answer, unit, question, question_zh, explanation = _MAKERS[kind](rng)
    return Drill(kind=kind, question=question, question_zh=question_zh, answer=float(answer), unit=unit,
                 rel_tol=DEFAULT_REL_TOL, explanation=explanation, inputs=inputs)


def card_id(kind: str) -> str:
    """The spaced-repetition card of a drill kind: ``drill:<kind>``."""
    if kind not in DRILL_KINDS:
        raise ValueError(f"kind must be one of {', '.join(DRILL_KINDS)}; got {kind!r}")
    return CARD_PREFIX + kind
