"""Tensor parallelism (Megatron-LM, Shoeybi et al. 2019): one linear layer's weight split over ranks.

A linear layer ``y = x W^T + b`` with ``W`` of shape ``(out, in)`` can be split two ways:

* **column-parallel** (split the *output* features): rank ``r`` holds rows ``W_r`` of ``W`` (its share of the
  output features) and the matching slice ``b_r`` of the bias, sees the whole input, and computes
  ``y_r = x W_r^T + b_r``; the full output is the concatenation of the ``y_r`` along the last dimension.
* **row-parallel** (split the *input* features): rank ``r`` holds columns ``W_r`` of ``W`` and sees the matching
  slice ``x_r`` of the input's last dimension; ``x_r W_r^T`` is a partial sum and the full output is their
  sum (an all-reduce), with the bias added once, after the sum.

A column-parallel layer followed by a row-parallel one (the MLP's ``c_fc`` then ``c_proj``; attention's
``q, k, v`` by heads then its output projection) needs no communication in between -- the elementwise GELU
and per-head attention work on each rank's slice -- and one all-reduce at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["column_parallel_linear", "row_parallel_linear"]


def _check_shards(name: str, shards: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(shards, torch.Tensor) or not isinstance(shards, Sequence) or len(shards) == 0:
        raise TypeError(f"{name} must be a non-empty list of tensors (one per rank), got {type(shards).__name__}")
    for i, t in enumerate(shards):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {type(t).__name__}")
    return list(shards)


def column_parallel_linear(x: torch.Tensor, weight_shards: Sequence[torch.Tensor],
                           bias_shards: Sequence[torch.Tensor] | None) -> torch.Tensor:
    """The output of a column-parallel linear layer, gathered: ``cat([x W_r^T + b_r for r], dim=-1)``.

    ``x (..., in)``; ``weight_shards[r] (out_r, in)``: rank r's rows of the full weight (output features
    ``sum(out_0 .. out_{r-1}) ..``); ``bias_shards[r] (out_r,)`` or ``bias_shards`` None. Equals
    ``F.linear(x, cat(weight_shards), cat(bias_shards))``.
    """
    weights = _check_shards("weight_shards", weight_shards)
    biases = [None] * len(weights) if bias_shards is None else _check_shards("bias_shards", bias_shards)
    if len(biases) != len(weights):
        raise ValueError(f"{len(weights)} weight shards but {len(biases)} bias shards")
    for i, w in enumerate(weights):
        if w.dim() != 2 or w.shape[1] != x.shape[-1]:
            raise ValueError(f"weight_shards[{i}] must be (out_r, {x.shape[-1]}), got {tuple(w.shape)}")
    return torch.cat([F.linear(x, w, b) for w, b in zip(weights, biases, strict=True)], dim=-1)


def row_parallel_linear(x_shards: Sequence[torch.Tensor], weight_shards: Sequence[torch.Tensor],
                        bias: torch.Tensor | None) -> torch.Tensor:
    """The output of a row-parallel linear layer, reduced: ``sum(x_r W_r^T for r) + b``.

    ``x_shards[r] (..., in_r)``: rank r's slice of the input's last dimension; ``weight_shards[r] (out, in_r)``:
    the matching columns of the full weight; ``bias (out,)`` or None, added once after the sum (adding it on
    every rank before the all-reduce would count it ``world_size`` times). Equals
    ``F.linear(cat(x_shards, -1), cat(weight_shards, 1), bias)``.
    """
    xs = _check_shards("x_shards", x_shards)
    weights = _check_shards("weight_shards", weight_shards)
    if len(xs) != len(weights):
        raise ValueError(f"{len(xs)} input shards but {len(weights)} weight shards")
    for i, (x, w) in enumerate(zip(xs, weights, strict=True)):
        if w.dim() != 2 or w.shape[1] != x.shape[-1]:
            raise ValueError(f"weight_shards[{i}] must be (out, {x.shape[-1]}) to match x_shards[{i}], "
                             f"got {tuple(w.shape)}")
    out = F.linear(xs[0], weights[0])
    for x, w in zip(xs[1:], weights[1:], strict=True):
        out = out + F.linear(x, w)
    return out if bias is None else out + bias
