"""Attention without the score matrix: the online softmax over key blocks, and what it saves in memory.

Plain attention computes ``scores = q k^T / sqrt(E)``, an ``(L, S)`` matrix for L queries and S keys, then
``softmax(scores) @ v``: memory that grows as ``L * S``. The *online softmax* (Milakov & Gimelshein 2018) reads
the keys in blocks and keeps, per query row, three running quantities:

* ``m``: the largest score seen so far (subtracted before ``exp``, as in any safe softmax);
* ``l`` (``norm`` in the code): the normaliser, ``sum_j exp(s_j - m)`` over the keys seen so far;
* ``acc``: the unnormalised output, ``sum_j exp(s_j - m) v_j``.

When a new block raises the maximum from ``m_old`` to ``m_new``, everything summed so far was computed
against ``m_old``: ``l`` and ``acc`` are multiplied by ``exp(m_old - m_new)`` before the block's terms are
added. At the end ``out = acc / l`` is exactly ``softmax(scores) @ v`` -- not an approximation -- and no
more than an ``(L, block)`` piece of the scores ever existed. This is the recurrence inside FlashAttention
(Dao et al., NeurIPS 2022), which on a GPU also keeps each tile in on-chip SRAM and recomputes the scores in
the backward pass; this module is the algorithm in PyTorch, not the fused kernel.

* ``online_softmax_states`` / ``online_softmax``: the recurrence on one row of numbers.
* ``naive_attention``: the textbook version that materialises the ``(L, S)`` scores.
* ``online_softmax_attention``: attention by the online softmax over key blocks (THE EXERCISE REFERENCE).
* ``LargestNewTensor``: ``LiveTensorPeak`` (a ``TorchDispatchMode``) that also records the largest tensor any
  operator creates: the check that an ``(L, S)`` matrix never existed.
* ``peak_memory`` / ``attention_memory``: peak bytes (and seconds) of naive, tiled and torch's SDPA per length.

Shapes follow ``torch.nn.functional.scaled_dot_product_attention``: queries ``(..., L, E)``, keys
``(..., S, E)``, values ``(..., S, Ev)``, scale ``1 / sqrt(E)``; ``causal`` is SDPA's ``is_causal``, aligned
top-left: query ``i`` sees keys ``j <= i``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._pytree import tree_flatten

from bigtrain_lab.memory import LiveTensorPeak

__all__ = ["ATTENTION_METHODS", "LargestNewTensor", "attention_memory", "naive_attention", "online_softmax",
           "online_softmax_attention", "online_softmax_states", "peak_memory"]

ATTENTION_METHODS = ("naive", "online", "sdpa")
PEAK_METHODS = ("live", "allocator")


# ----------------------------------------------------------------------------------------------------
# One row: the recurrence


def _as_blocks(x_blocks: Iterable[Any]) -> list[torch.Tensor]:
    if isinstance(x_blocks, torch.Tensor):
        raise TypeError("x_blocks must be a list of 1-D blocks (e.g. list(x.split(3))), not one tensor")
    blocks = [torch.as_tensor(b, dtype=torch.float64) if not isinstance(b, torch.Tensor) else b for b in x_blocks]
    if not blocks or any(b.dim() != 1 or b.numel() == 0 for b in blocks):
        raise ValueError("x_blocks must be a non-empty list of non-empty 1-D blocks")
    return blocks


def online_softmax_states(x_blocks: Iterable[Any]) -> list[tuple[float, float]]:
    """The running ``(m, l)`` after each block of one row: ``m`` the maximum so far, ``l = sum exp(x - m)``.

    Each step: ``m_new = max(m, max(block))``; ``l = l * exp(m - m_new) + sum(exp(block - m_new))``. The last
    state gives ``logsumexp(x) = m + log(l)``, computed in one pass, without holding the whole row.
    """
    m, norm = -math.inf, 0.0  # norm: the l of the papers
    states = []
    for block in _as_blocks(x_blocks):
        block = block.double()
        m_new = max(m, float(block.max()))
        norm = norm * math.exp(m - m_new) + float(torch.exp(block - m_new).sum())  # rescale the old sum, add
        m = m_new
        states.append((m, norm))
    return states


def online_softmax(x_blocks: Iterable[Any]) -> torch.Tensor:
    """``softmax(cat(x_blocks))`` from the online statistics: one pass for ``(m, l)``, then ``exp(x - m) / l``.

    Returned in float64 (the demo's precision); equals ``torch.softmax(torch.cat(x_blocks), 0)``.
    """
    blocks = _as_blocks(x_blocks)
    m, norm = online_softmax_states(blocks)[-1]
    return torch.cat([torch.exp(b.double() - m) / norm for b in blocks])


# ----------------------------------------------------------------------------------------------------
# Attention, plain and by blocks


def _check_qkv(q: Any, k: Any, v: Any) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
        if t.dim() < 2:
            raise ValueError(f"{name} needs at least 2 dims (..., positions, features), got shape {tuple(t.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the feature dim E, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of positions S, got {k.shape[-2]} and {v.shape[-2]}")
    if k.shape[-2] < 1:
        raise ValueError("k and v need at least one position")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError as e:
        raise ValueError(f"the batch dims of q, k, v do not broadcast: {tuple(q.shape)}, {tuple(k.shape)}, "
                         f"{tuple(v.shape)}") from e


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """``softmax(q k^T / sqrt(E)) @ v`` the textbook way: the whole ``(..., L, S)`` score matrix exists."""
    _check_qkv(q, k, v)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (..., L, S): memory grows as L * S
    if causal:
        L, S = scores.shape[-2:]
        allowed = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def online_softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, block_size: int,
                             causal: bool = False) -> torch.Tensor:
    """Attention by an online softmax over key blocks: ``(..., L, Ev)``, equal to
    ``F.scaled_dot_product_attention(q, k, v, is_causal=causal)``.

    Keys and values are read ``block_size`` positions at a time (the last block may be shorter); per query
    row the loop keeps the running maximum ``m``, normaliser ``l`` (``norm``) and unnormalised output ``acc``, and
    rescales ``l`` and ``acc`` by ``exp(m_old - m_new)`` whenever a block raises the maximum. Only an
    ``(..., L, block_size)`` block of scores exists at any time. float16 / bfloat16 inputs are computed in
    float32; the result has q's dtype.
    """
    _check_qkv(q, k, v)
    if isinstance(block_size, bool) or not isinstance(block_size, int):
        raise TypeError(f"block_size must be an int, got {type(block_size).__name__}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    out_dtype, dtype = q.dtype, torch.promote_types(q.dtype, torch.float32)  # sums in at least float32
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    L, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])

    m = torch.full((*batch, L, 1), float("-inf"), dtype=dtype, device=q.device)  # running max per query row
    norm = torch.zeros((*batch, L, 1), dtype=dtype, device=q.device)             # running normaliser (l)
    acc = torch.zeros((*batch, L, v.shape[-1]), dtype=dtype, device=q.device)     # running sum of exp(s - m) v
    rows = torch.arange(L, device=q.device).unsqueeze(-1)                         # (L, 1) query positions
    for start in range(0, S, block_size):
        k_block = k[..., start:start + block_size, :]
        v_block = v[..., start:start + block_size, :]
        s = (q @ k_block.transpose(-2, -1)) * scale                               # (..., L, block): the only scores
        if causal:  # query i sees keys j <= i; key 0 is in the first block, so every row's m is finite from it on
            cols = torch.arange(start, start + k_block.shape[-2], device=q.device)
            s = s.masked_fill(cols > rows, float("-inf"))
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
        p = torch.exp(s - m_new)                                                  # this block's weights, unnormalised
        correction = torch.exp(m - m_new)                                         # 0 on the first block (m = -inf)
        norm = norm * correction + p.sum(dim=-1, keepdim=True)
        acc = acc * correction + p @ v_block
        m = m_new
    return (acc / norm).to(out_dtype)


# ----------------------------------------------------------------------------------------------------
# Instruments


class LargestNewTensor(LiveTensorPeak):
    """Context manager: ``LiveTensorPeak`` (``peak``: the peak bytes of tensors created inside and alive) that
    also records the largest tensor any operator creates (new storage only: views and in-place results of
    existing tensors are not counted): ``numel``, ``shape`` and ``op`` (the operator's name); ``numel`` is 0
    when nothing was created. Shows whether an ``(L, S)`` matrix ever existed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.numel = 0
        self.shape: tuple[int, ...] = ()
        self.op = ""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs or {}))[0]
                  if isinstance(t, torch.Tensor)}
        out = super().__torch_dispatch__(func, types, args, kwargs)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs and t.numel() > self.numel:
                self.numel, self.shape, self.op = t.numel(), tuple(t.shape), str(func.overloadpacket.__name__)
        return out


def _allocator_peak(fn: Callable[[], Any]) -> int:
    """Peak bytes the CPU allocator held for allocations made inside ``fn()``: torch.profiler's allocation
    events (``profile_memory=True``) carry the allocator's running total, and they also see the buffers a
    kernel allocates for itself. Reads them through the profiler's event tree (``experimental_event_tree``,
    a semi-private API of torch 2.x)."""
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # else the profiler prints "USDT: profiler_start" on stderr
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
        del out
    allocation = torch._C._profiler._EventType.Allocation
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size, node.extra_fields.total_allocated))
        stack.extend(node.children)
    if not events:
        return 0
    events.sort(key=lambda e: e[0])
    base = events[0][2] - events[0][1]  # the allocator's running total just before the first event
    return max(0, max(total for _, _, total in events) - base)


def peak_memory(fn: Callable[[], Any], *, method: str = "live") -> int:
    """Peak bytes of the memory ``fn()`` allocates (its result included), tensors that existed before excluded.

    ``method="live"``: ``bigtrain_lab.memory.LiveTensorPeak``, the tensors operators return; a kernel's own
    scratch buffers are invisible to it. ``method="allocator"``: torch.profiler's CPU allocation events (the
    allocator's running total), which include those scratch buffers; CPU tensors only.
    """
    if method not in PEAK_METHODS:
        raise ValueError(f"method must be one of {PEAK_METHODS}, got {method!r}")
    if method == "allocator":
        return _allocator_peak(fn)
    with LiveTensorPeak() as live:
        out = fn()
        del out
    return live.peak


def _attention_fn(method: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_size: int,
                  causal: bool) -> Callable[[], torch.Tensor]:
    if method == "naive":
        return lambda: naive_attention(q, k, v, causal)
    if method == "online":
        return lambda: online_softmax_attention(q, k, v, block_size=block_size, causal=causal)
    return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def attention_memory(lengths: Iterable[int], *, head_dim: int = 64, heads: int = 1, block_size: int = 128,
                     causal: bool = True, methods: Iterable[str] = ATTENTION_METHODS, repeats: int = 1,
                     seed: int = 0, max_naive_length: int | None = None,
                     progress: bool = False) -> list[dict[str, Any]]:
    """Peak memory and time of one attention call, per sequence length and method, on float32 CPU tensors.

    Self-attention: q, k, v of shape ``(1, heads, T, head_dim)`` for each ``T`` in ``lengths``. Methods:
    ``"naive"`` (``naive_attention``), ``"online"`` (``online_softmax_attention`` with ``block_size``) and
    ``"sdpa"`` (``F.scaled_dot_product_attention``). One row per (length, method): ``length``, ``method``,
    ``live_bytes`` (``LiveTensorPeak``), ``allocator_bytes`` (profiler: kernel scratch included),
    ``largest_shape`` (the largest tensor created, ``LargestNewTensor``), ``seconds`` (best of ``repeats``
    uninstrumented calls). ``max_naive_length`` skips naive attention above that length.
    """
    methods = tuple(methods)
    if not methods or any(m not in ATTENTION_METHODS for m in methods):
        raise ValueError(f"methods must be a non-empty subset of {ATTENTION_METHODS}, got {methods!r}")
    lengths = [int(n) for n in lengths]
    if not lengths or any(n < 1 for n in lengths):
        raise ValueError(f"lengths must be a non-empty list of positive integers, got {lengths!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    rows = []
    for T in tqdm(lengths, desc="attention memory", disable=not progress):
        # 4-D (batch, heads, T, head_dim): with 3-D input torch's CPU SDPA falls back to its math kernel
        q, k, v = (torch.randn(1, heads, T, head_dim, generator=g) for _ in range(3))
        for method in methods:
            if method == "naive" and max_naive_length is not None and max_naive_length < T:
                continue
            fn = _attention_fn(method, q, k, v, block_size, causal)
            with LargestNewTensor() as live:
                out = fn()
                del out
            row = {"length": T, "method": method, "live_bytes": live.peak,
                   "allocator_bytes": peak_memory(fn, method="allocator"), "largest_shape": live.shape}
            best = math.inf
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - start)
            row["seconds"] = best
            rows.append(row)
    return rows

