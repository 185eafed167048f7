"""The formulas of a training plan, with their conventions stated.

* ``training_flops(n_params, n_tokens) = 6 N D``: forward 2 N D (one multiply-add per parameter per token),
  backward twice that (gradients w.r.t. activations and w.r.t. weights); attention's ``T^2`` term and
  recomputation left out (Kaplan et al. 2020; Hoffmann et al. 2022).
* ``training_days``: ``6 N D / (n_gpus * peak_flops * mfu)`` seconds, in days of 86 400 s.
* ``training_memory_per_gpu``: model states of mixed-precision AdamW -- 2 bytes of bf16 weights, 2 of bf16
  gradients, 12 of fp32 master weights, momentum and variance (16 per parameter, the ZeRO paper's K = 12) --
  split evenly over the ``tp * pp`` model-parallel ranks, then ZeRO over the ``dp`` replicas: stage 1 shards
  the optimizer states, stage 2 also the gradients, stage 3 also the weights. Activations not included.
* ``allreduce_seconds``: a ring all-reduce of ``M`` bytes over ``n`` GPUs is a reduce-scatter then an all-gather,
  ``2 (n - 1)`` steps each moving ``M / n`` bytes per GPU over a link of ``bandwidth`` bytes/s:
  ``2 (n - 1) / n * M / bandwidth`` plus ``2 (n - 1)`` times the per-step ``latency``. (nccl-tests calls
  ``M / t`` the algorithm bandwidth and ``2 (n - 1) / n * M / t`` the bus bandwidth.)
* ``activation_bytes_per_layer``: Korthikanti et al. 2022 (*Reducing activation recomputation in large
  transformer models*), 16-bit activations and 1-byte dropout masks, per transformer layer:
  ``s b h (34 + 5 a s / h)`` without parallelism; ``s b h (10 + 24 / t + 5 a s / (h t))`` with tensor
  parallelism ``t``; ``s b h / t (34 + 5 a s / h)`` with sequence parallelism too; selective recomputation
  drops the ``5 a s / h`` attention term; full recomputation keeps only the layer's input, ``2 s b h``
  (``/ t`` with sequence parallelism).
* ``bubble_fraction(p, m) = (p - 1) / (m + p - 1)``: the idle share of a GPipe or 1F1B step with ``p`` stages
  and ``m`` micro-batches (forward and backward of a micro-batch taking the same time on every stage).
* ``transformer_params``: the weights of a decoder-only transformer from its shape (matrices only: biases and
  norms, ``O(L h)``, left out, as in Narayanan et al. 2021, eq. 2): per layer ``2 h^2 + 2 h k d`` attention
  (``k`` KV heads of ``d = h / a`` dimensions) and ``2 h f`` MLP (``3 h f`` gated, e.g. SwiGLU), plus ``V h``
  token embeddings (another ``V h`` for an untied output layer). ``12 L h^2 + V h`` for GPT (``f = 4h``).
* ``flops_per_token(n_params, n_layers, hidden, seq_len) = 6 N + 12 L h s``: 6N plus attention's scores and
  weighted sum (``Q K^T`` and ``A V``: ``2 * 2 s h`` forward FLOPs per token and layer, three times that for
  training), the model FLOPs of Narayanan et al. 2021 (eq. 3 without recomputation) and Korthikanti et al. 2022.
* ``kv_cache_bytes`` is ``bigtrain_lab.llm.kv_cache.kv_cache_bytes`` (re-exported, not copied).
"""

from __future__ import annotations

import math
from numbers import Real

from bigtrain_lab.distributed.allreduce import allreduce_seconds as ring_cost
from bigtrain_lab.llm.kv_cache import kv_cache_bytes

__all__ = ["BYTES_PER_PARAM", "activation_bytes_per_layer", "allreduce_seconds", "bubble_fraction",
           "flops_per_token", "kv_cache_bytes", "transformer_params", "training_days", "training_flops",
           "training_memory_per_gpu"]

#: mixed-precision AdamW: (bf16 weights, bf16 gradients, fp32 master + momentum + variance)
BYTES_PER_PARAM = (2, 2, 12)
SECONDS_PER_DAY = 86_400
RECOMPUTE = ("none", "selective", "full")


def _positive(name: str, value: object, *, integer: bool = False, allow_zero: bool = False) -> float:
    ok_type = isinstance(value, int) if integer else isinstance(value, Real)
    if isinstance(value, bool) or not ok_type or not math.isfinite(float(value)):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


def training_flops(n_params: float, n_tokens: float) -> float:
    """``6 * n_params * n_tokens``: the FLOPs of training a dense transformer on ``n_tokens`` tokens."""
    return 6.0 * _positive("n_params", n_params) * _positive("n_tokens", n_tokens)


def training_days(n_params: float, n_tokens: float, n_gpus: int, peak_flops: float, mfu: float) -> float:
    """Days to train: ``6 N D / (n_gpus * peak_flops * mfu) / 86400``.

    ``peak_flops``: one GPU's peak FLOP/s in the training dtype (e.g. 989e12 dense bf16 for an H100 SXM);
    ``mfu``: model FLOPs utilisation, in (0, 1] (0.3-0.5 is typical of large runs).
    """
    _positive("n_gpus", n_gpus, integer=True)
    _positive("peak_flops", peak_flops)
    if not 0 < _positive("mfu", mfu) <= 1:
        raise ValueError(f"mfu must be in (0, 1], got {mfu!r}")
    return training_flops(n_params, n_tokens) / (n_gpus * peak_flops * mfu) / SECONDS_PER_DAY


def training_memory_per_gpu(n_params: float, *, dp: int = 1, tp: int = 1, pp: int = 1, zero_stage: int = 0,
                            param_bytes: float = 2, grad_bytes: float = 2, optimizer_bytes: float = 12) -> float:
    """Bytes of model states (weights, gradients, optimizer states) on each GPU of a (dp, tp, pp) plan.

    Each GPU holds ``n_params / (tp * pp)`` parameters; ZeRO ``zero_stage`` 1 / 2 / 3 divides the optimizer
    states / also the gradients / also the weights by ``dp``. Defaults: mixed-precision AdamW, 2 + 2 + 12 bytes.

    >>> training_memory_per_gpu(7e9) / 2**30  # 7B on one GPU: 16 bytes per parameter
    104.3081283569336
    """
    n = _positive("n_params", n_params) / (_positive("tp", tp, integer=True) * _positive("pp", pp, integer=True))
    dp = _positive("dp", dp, integer=True)
    if zero_stage not in (0, 1, 2, 3) or isinstance(zero_stage, bool):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    p = _positive("param_bytes", param_bytes, allow_zero=True)
    g = _positive("grad_bytes", grad_bytes, allow_zero=True)
    o = _positive("optimizer_bytes", optimizer_bytes, allow_zero=True)
    return n * (p / (dp if zero_stage >= 3 else 1) + g / (dp if zero_stage >= 2 else 1)
                + o / (dp if zero_stage >= 1 else 1))


def allreduce_seconds(message_bytes: float, n_gpus: int, bandwidth: float, latency: float = 0.0) -> float:
    """Seconds of a ring all-reduce of ``message_bytes`` over ``n_gpus`` GPUs.

    ``bandwidth``: bytes/s each GPU sends (and receives) on its ring link; ``latency``: seconds per ring
    step. ``2 (n - 1)`` steps of ``message_bytes / n`` each: ``2 (n - 1) * (latency + message_bytes / (n *
    bandwidth))``; 0 for one GPU.
    """
    m = _positive("message_bytes", message_bytes, allow_zero=True)
    n = _positive("n_gpus", n_gpus, integer=True)
    bw = _positive("bandwidth", bandwidth)
    lat = _positive("latency", latency, allow_zero=True)
    return ring_cost(m, n, bandwidth=bw, latency=lat)  # lesson 05's alpha-beta model, ring algorithm


def activation_bytes_per_layer(seq_len: int, micro_batch: int, hidden: int, n_heads: int, *, tp: int = 1,
                               sequence_parallel: bool = False, recompute: str = "none") -> float:
    """Korthikanti et al. (2022): activation bytes one transformer layer keeps for backward, per GPU.

    16-bit activations, 1-byte dropout masks; ``s, b, h, a, t`` = ``seq_len, micro_batch, hidden, n_heads, tp``.
    ``recompute``: "none" (``sbh (34 + 5as/h)`` at t = 1), "selective" (attention's softmax / dropout
    recomputed: the ``5as/h`` term goes), "full" (only the layer input is kept: ``2 sbh``).
    """
    s, b, h, a, t = (_positive(n, v, integer=True) for n, v in (("seq_len", seq_len), ("micro_batch", micro_batch),
                                                               ("hidden", hidden), ("n_heads", n_heads), ("tp", tp)))
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {RECOMPUTE}, got {recompute!r}")
    sbh = s * b * h
    attention = 0.0 if recompute == "selective" else 5 * a * s / h
    if recompute == "full":
        return 2 * sbh / (t if sequence_parallel else 1)
    if sequence_parallel:
        return sbh / t * (34 + attention)
    return sbh * (10 + 24 / t + attention / t)


def bubble_fraction(num_stages: int, num_microbatches: int) -> float:
    """``(p - 1) / (m + p - 1)``: the share of a pipelined step each stage spends idle (GPipe and 1F1B)."""
    p = _positive("num_stages", num_stages, integer=True)
    m = _positive("num_microbatches", num_microbatches, integer=True)
    return (p - 1) / (m + p - 1)


def transformer_params(n_layers: int, hidden: int, vocab: int, *, n_heads: int | None = None,
                       n_kv_heads: int | None = None, ffn_hidden: int | None = None, gated_mlp: bool = False,
                       tied_embeddings: bool = True) -> int:
    """Weights of a decoder-only transformer: ``L (2 h^2 + 2 h k d + m h f) + V h (x2 if untied)``.

    ``n_kv_heads`` (default ``n_heads``: multi-head attention) and ``n_heads`` only matter for grouped-query
    attention; ``ffn_hidden`` defaults to ``4 h``; ``gated_mlp`` (SwiGLU: three matrices, ``m = 3``, else 2).
    Biases, norms and position embeddings are left out.

    >>> round(transformer_params(96, 12288, 51200) / 1e9, 1)  # GPT-3's shape: Narayanan et al.'s 174.6
    174.6
    """
    L, h, V = (_positive(n, v, integer=True) for n, v in (("n_layers", n_layers), ("hidden", hidden),
                                                          ("vocab", vocab)))
    a = h if n_heads is None else _positive("n_heads", n_heads, integer=True)
    if h % a:
        raise ValueError(f"hidden ({h}) must be divisible by n_heads ({a})")
    k = a if n_kv_heads is None else _positive("n_kv_heads", n_kv_heads, integer=True)
    if a % k:
        raise ValueError(f"n_heads ({a}) must be divisible by n_kv_heads ({k})")
    f = 4 * h if ffn_hidden is None else _positive("ffn_hidden", ffn_hidden, integer=True)
    per_layer = 2 * h * h + 2 * h * k * (h // a) + (3 if gated_mlp else 2) * h * f
    return L * per_layer + V * h * (1 if tied_embeddings else 2)


def flops_per_token(n_params: float, n_layers: int, hidden: int, seq_len: int) -> float:
    """Training FLOPs per token, ``6 N + 12 L h s`` (model FLOPs: no recomputation counted).

    >>> round(flops_per_token(7e9, 32, 4096, 4096) / (6 * 7e9), 3)  # attention adds 15 % at 4k tokens
    1.153
    """
    n = _positive("n_params", n_params)
    L, h, s = (_positive(k, v, integer=True) for k, v in (("n_layers", n_layers), ("hidden", hidden),
                                                          ("seq_len", seq_len)))
    return 6.0 * n + 12.0 * L * h * s
