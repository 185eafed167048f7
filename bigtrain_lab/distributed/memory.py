"""Model-state memory per rank: the ZeRO formula, and what a rank really holds (its local shards).

ZeRO (Rajbhandari et al., SC 2020, section 3.1) counts, per parameter, ``param_bytes`` (the weights),
``grad_bytes`` (their gradients) and ``optimizer_bytes`` (Adam's state; 12 for mixed precision: fp32
master weights, momentum and variance). Stage 1 shards the optimizer state over the ``world_size``
data-parallel ranks, stage 2 also the gradients, stage 3 (= FSDP's full sharding) also the weights.
Plain DDP is stage 0: every rank holds everything.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def model_state_bytes(n_params: float, *, zero_stage: int = 0, world_size: int = 1, param_bytes: float = 2,
                      grad_bytes: float = 2, optimizer_bytes: float = 12) -> float:
    """Bytes of weights + gradients + optimizer state held by one rank.

    The defaults are the paper's mixed-precision Adam (2 + 2 + 12 = 16 bytes per parameter). fp32
    training with AdamW: ``param_bytes=4, grad_bytes=4, optimizer_bytes=8`` (momentum and variance; the
    weights are their own master copy), also 16.
    """
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size!r}")
    sharded = (optimizer_bytes * (zero_stage >= 1) + grad_bytes * (zero_stage >= 2)
               + param_bytes * (zero_stage >= 3))
    replicated = param_bytes + grad_bytes + optimizer_bytes - sharded
    return float(n_params * replicated + n_params * sharded / world_size)


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t  # a DTensor's shard on this rank


def measured_model_state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes this rank holds for parameters, gradients and optimizer state (local shards of DTensors;
    scalar step counters are left out), and their total."""
    params = list(model.parameters())
    p_bytes = sum(_local(p).numel() * _local(p).element_size() for p in params)
    g_bytes = sum(_local(p.grad).numel() * _local(p.grad).element_size() for p in params if p.grad is not None)
    o_bytes = 0
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                o_bytes += _local(value).numel() * _local(value).element_size()
    return {"params": p_bytes, "grads": g_bytes, "optimizer": o_bytes, "total": p_bytes + g_bytes + o_bytes}
