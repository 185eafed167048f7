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

The modules below do it for real over a ``torch.distributed`` process group (or ``comm.simulated_group(world, rank)``:
one rank's exact shapes in one process): ``ColumnParallelLinear`` / ``RowParallelLinear`` are cut from a full
``nn.Linear`` for ``(rank, world)``, so a tensor-parallel TinyGPT starts from exactly the single-process
model's weights (``tensor_parallel_gpt``) and its full state_dict can be gathered back
(``gather_tensor_parallel_state_dict``). TinyGPT's ``c_attn`` is FUSED (rows ``q | k | v``, 3C of them): a
rank must take the q, k and v rows of ITS heads (``qkv_rows``), not a contiguous third of the fused matrix.
Embeddings, LayerNorms and the tied lm_head stay replicated: their gradients are the same on every rank,
because ``f`` all-reduces the gradient that flows back into the replicated residual stream.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.parallel.comm import (
    _all_gather,
    _reduce_scatter,
    copy_to_tensor_parallel_region,
    gather_from_sequence_parallel_region,
    group_size,
    is_simulated,
    reduce_from_tensor_parallel_region,
    reduce_scatter_to_sequence_parallel_region,
    scatter_to_sequence_parallel_region,
)

__all__ = [
    "ColumnParallelLinear",
    "RowParallelLinear",
    "TensorParallelAttention",
    "TensorParallelMLP",
    "clip_tensor_parallel_grads_",
    "column_parallel_linear",
    "dtensor_full_state_dict",
    "dtensor_tensor_parallel_gpt",
    "gather_tensor_parallel_state_dict",
    "head_grouped_qkv_permutation",
    "qkv_rows",
    "row_parallel_linear",
    "shard_slice",
    "sync_sequence_parallel_grads",
    "tensor_parallel_gpt",
    "tensor_parallel_grad_norm",
]


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


# ----------------------------------------------------------------------------------------------------
# Modules over a process group


def _check_rank(rank: int, world: int, group) -> None:
    for name, v in (("rank", rank), ("world", world)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"need 0 <= rank < world and world >= 1, got rank={rank}, world={world}")
    if is_simulated(group):
        if group.world not in (1, world):
            raise ValueError(f"world={world} but the simulated group has {group.world} ranks")
    elif dist.is_initialized() and group_size(group) != world:
        raise ValueError(f"world={world} but the process group has {group_size(group)} ranks")


def shard_slice(n: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s contiguous share of ``n`` features (``n`` must divide evenly)."""
    if n % world:
        raise ValueError(f"{n} features do not split evenly over {world} ranks")
    size = n // world
    return slice(rank * size, (rank + 1) * size)


def qkv_rows(n_embd: int, n_head: int, rank: int, world: int, *, contiguous: bool = False) -> torch.Tensor:
    """The rows of a fused ``c_attn`` weight (``3 n_embd`` rows, ``q | k | v``) that rank ``rank`` holds.

    Head-aware (correct): the q rows, then the k rows, then the v rows of the rank's ``n_head / world``
    heads. ``contiguous=True`` is the classic bug: a contiguous 1/world of the fused matrix (rank 0 of 2
    gets all of q and half of k), which the local ``split(C/world)`` then reads as q, k and v.
    """
    if n_head % world:
        raise ValueError(f"{n_head} heads do not split evenly over {world} ranks")
    if contiguous:
        return torch.arange(3 * n_embd)[shard_slice(3 * n_embd, rank, world)]
    own = torch.arange(n_embd)[shard_slice(n_embd, rank, world)]  # this rank's heads' features
    return torch.cat([own + j * n_embd for j in range(3)])


def head_grouped_qkv_permutation(n_embd: int, n_head: int, world: int) -> torch.Tensor:
    """Row order of ``c_attn`` such that its contiguous ``Shard(0)`` over ``world`` ranks gives every rank
    ``qkv_rows(..., rank, world)`` (what DTensor's ``ColwiseParallel`` needs for a fused q|k|v)."""
    return torch.cat([qkv_rows(n_embd, n_head, r, world) for r in range(world)])


class _GatheredLinear(torch.autograd.Function):
    """Megatron's sequence-parallel column-parallel linear: all-gather the input's sequence shards, then
    ``x W^T + b``, keeping only the SHARD for backward, which all-gathers it again (Korthikanti et al.
    2022, section 4.2.2: the gathered input is not stored) and reduce-scatters the input gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias, group):
        ctx.save_for_backward(x, weight)
        ctx.group, ctx.has_bias = group, bias is not None
        return F.linear(_all_gather(x, 1, group, "forward"), weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        total = _all_gather(x, 1, ctx.group, "backward")  # recomputed, not stored
        grad_input = _reduce_scatter(grad @ weight, 1, ctx.group, "backward")
        grad_weight = grad.reshape(-1, grad.shape[-1]).t() @ total.reshape(-1, total.shape[-1])
        grad_bias = grad.reshape(-1, grad.shape[-1]).sum(0) if ctx.has_bias else None
        return grad_input, grad_weight, grad_bias, None


def _owned_features(linear: nn.Linear, features: str, rank: int, world: int, group, index) -> torch.Tensor:
    """Check ``linear`` and the rank, then the indices of ``linear.<features>`` that rank ``rank`` holds:
    ``index``, or by default its contiguous share."""
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    _check_rank(rank, world, group)
    if index is not None:
        return torch.as_tensor(index, dtype=torch.long)
    n = getattr(linear, features)
    return torch.arange(n)[shard_slice(n, rank, world)]


class ColumnParallelLinear(nn.Module):
    """Rank ``rank``'s output features ``rows`` of ``linear`` (default: its contiguous share).

    Forward: ``f`` (identity; all-reduce of the input gradient in backward), or with ``sequence_parallel``
    an all-gather of the sequence shards (reduce-scatter backward; only the shard is kept for backward);
    then ``x W_r^T + b_r``, left sharded.
    """

    def __init__(self, linear: nn.Linear, rank: int, world: int, group=None, *, rows: torch.Tensor | None = None,
                 sequence_parallel: bool = False):
        super().__init__()
        rows = _owned_features(linear, "out_features", rank, world, group, rows)
        self.group, self.sequence_parallel = group, sequence_parallel
        self.register_buffer("rows", rows.clone(), persistent=False)
        self.weight = nn.Parameter(linear.weight.detach()[rows].clone())
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach()[rows].clone())
        for p in self.parameters():
            p.tensor_parallel = True  # sharded: its gradient norm adds up over ranks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sequence_parallel:
            return _GatheredLinear.apply(x, self.weight, self.bias, self.group)
        return F.linear(copy_to_tensor_parallel_region(x, self.group), self.weight, self.bias)


class RowParallelLinear(nn.Module):
    """Rank ``rank``'s input features ``cols`` of ``linear``; the bias is kept whole (added once).

    Forward: ``x_r W_r^T``, then ``g`` (all-reduce; identity backward), or with ``sequence_parallel`` a
    reduce-scatter to this rank's sequence shard (all-gather backward); then ``+ b``.
    """

    def __init__(self, linear: nn.Linear, rank: int, world: int, group=None, *, cols: torch.Tensor | None = None,
                 sequence_parallel: bool = False):
        super().__init__()
        cols = _owned_features(linear, "in_features", rank, world, group, cols)
        self.group, self.sequence_parallel = group, sequence_parallel
        self.register_buffer("cols", cols.clone(), persistent=False)
        self.weight = nn.Parameter(linear.weight.detach()[:, cols].clone())
        self.weight.tensor_parallel = True
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())
        if self.bias is not None:  # replicated; on a sequence shard its gradient is partial
            self.bias.sequence_parallel = sequence_parallel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight)
        if self.sequence_parallel:
            y = reduce_scatter_to_sequence_parallel_region(y, self.group, dim=1)
        else:
            y = reduce_from_tensor_parallel_region(y, self.group)
        return y if self.bias is None else y + self.bias


class TensorParallelMLP(nn.Module):
    """TinyGPT's ``GPTMLP`` split Megatron's way: ``c_fc`` column-parallel (4C/t hidden features per rank),
    GELU on the shard, ``c_proj`` row-parallel; one all-reduce forward (g) and one backward (f)."""

    def __init__(self, mlp: nn.Module, rank: int, world: int, group=None, *, sequence_parallel: bool = False):
        super().__init__()
        self.c_fc = ColumnParallelLinear(mlp.c_fc, rank, world, group, sequence_parallel=sequence_parallel)
        self.gelu = nn.GELU()
        self.c_proj = RowParallelLinear(mlp.c_proj, rank, world, group, sequence_parallel=sequence_parallel)
        self.dropout = nn.Dropout(mlp.dropout.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class TensorParallelAttention(nn.Module):
    """Causal self-attention over this rank's ``n_head / world`` heads: fused ``c_attn`` (q|k|v rows of
    its heads), attention per head, ``c_proj`` over the matching input features.

    Built by ``from_attention`` (Megatron modules over ``group``), or around any ``c_attn`` / ``c_proj``
    whose outputs are this rank's ``3 C/t`` and ``C`` features (DTensor's ``ColwiseParallel`` /
    ``RowwiseParallel`` on head-grouped rows). ``explicit``: softmax attention written out (the
    ``(T, T)`` scores and dropout mask are kept for backward, as Korthikanti et al. count) instead of SDPA.
    """

    def __init__(self, c_attn: nn.Module, c_proj: nn.Module, n_head: int, head_dim: int, dropout: float = 0.0,
                 *, explicit: bool = False):
        super().__init__()
        self.c_attn, self.c_proj = c_attn, c_proj
        self.n_head, self.head_dim, self.dropout, self.explicit = n_head, head_dim, dropout, explicit
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)

    @classmethod
    def from_attention(cls, attn: nn.Module, rank: int, world: int, group=None, *, sequence_parallel: bool = False,
                       contiguous_qkv: bool = False, explicit: bool = False) -> TensorParallelAttention:
        """Rank ``rank``'s share of TinyGPT's ``CausalSelfAttention`` ``attn``. ``contiguous_qkv=True``
        builds the classic bug (a contiguous 1/world block of the fused rows), to show that it is wrong."""
        C, nh = attn.n_embd, attn.n_head
        rows = qkv_rows(C, nh, rank, world, contiguous=contiguous_qkv)
        c_attn = ColumnParallelLinear(attn.c_attn, rank, world, group, rows=rows, sequence_parallel=sequence_parallel)
        c_proj = RowParallelLinear(attn.c_proj, rank, world, group, sequence_parallel=sequence_parallel)
        return cls(c_attn, c_proj, nh // world, C // nh, attn.dropout, explicit=explicit)

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        qkv = self.c_attn(x)  # (B, T, 3 C/t), T the full sequence (SP gathered it)
        B, T, _ = qkv.shape
        width = self.n_head * self.head_dim
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in qkv.split(width, dim=2))
        att = None
        if self.explicit or return_attention:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
            y = self.attn_dropout(att) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, width)
        return self.resid_dropout(self.c_proj(y)), (att if return_attention else None)


def _sequence_parallel_hooks(model: nn.Module, group) -> None:
    """Shard the residual stream along the sequence after the embeddings, gather it after ``ln_f``."""
    model.transformer.drop.register_forward_hook(
        lambda _m, _inp, out: scatter_to_sequence_parallel_region(out, group, dim=1))
    # the lm_head that follows is replicated: its input gradient is whole on every rank, so split, not sum
    model.transformer.ln_f.register_forward_hook(
        lambda _m, _inp, out: gather_from_sequence_parallel_region(out, group, dim=1,
                                                                   tensor_parallel_output_grad=False))


def tensor_parallel_gpt(model: nn.Module, rank: int, world: int, group=None, *, sequence_parallel: bool = False,
                        contiguous_qkv: bool = False, explicit_attention: bool = False) -> nn.Module:
    """A copy of TinyGPT ``model`` with every block's attention and MLP split for ``(rank, world)``.

    The same keys as TinyGPT (``c_attn.weight`` holds this rank's rows); embeddings, LayerNorms and the
    tied lm_head replicated. ``sequence_parallel``: the residual stream, LayerNorms and dropouts work on a
    ``1/world`` shard of the sequence (block_size must divide by world); the LayerNorms' and row-parallel
    biases' gradients are then partial: call ``sync_sequence_parallel_grads`` after backward.
    """
    if not hasattr(model, "transformer") or not hasattr(model.transformer, "h"):
        raise TypeError(f"model must be a TinyGPT, got {type(model).__name__}")
    _check_rank(rank, world, group)
    cfg = model.config
    if cfg.n_head % world:
        raise ValueError(f"n_head={cfg.n_head} must be divisible by the tensor-parallel size {world}")
    if sequence_parallel and cfg.block_size % world:
        raise ValueError(f"sequence parallelism needs block_size ({cfg.block_size}) divisible by {world}")
    tp = copy.deepcopy(model)
    for block in tp.transformer.h:
        block.attn = TensorParallelAttention.from_attention(block.attn, rank, world, group,
                                                            sequence_parallel=sequence_parallel,
                                                            contiguous_qkv=contiguous_qkv,
                                                            explicit=explicit_attention)
        block.mlp = TensorParallelMLP(block.mlp, rank, world, group, sequence_parallel=sequence_parallel)
    if sequence_parallel:
        for name, p in tp.named_parameters():
            if ".ln_" in name:
                p.sequence_parallel = True
        _sequence_parallel_hooks(tp, group)
    tp.tensor_parallel = (rank, world, sequence_parallel)
    return tp


def _gather_rows(local: torch.Tensor, index: torch.Tensor, dim: int, full: int, group) -> torch.Tensor:
    world = group_size(group)
    parts = [torch.empty_like(local) for _ in range(world)]
    idx = [torch.empty_like(index, device=local.device) for _ in range(world)]
    dist.all_gather(parts, local.detach().contiguous(), group=group)
    dist.all_gather(idx, index.to(local.device), group=group)  # NCCL moves CUDA tensors only
    shape = list(local.shape)
    shape[dim] = full
    out = local.new_empty(shape)
    for part, i in zip(parts, idx, strict=True):
        out.index_copy_(dim, i.to(out.device), part)
    return out


@torch.no_grad()
def gather_tensor_parallel_state_dict(model: nn.Module, group=None) -> dict[str, torch.Tensor]:
    """The full state_dict (TinyGPT's keys and shapes, on the CPU) of a ``tensor_parallel_gpt`` model; a
    collective: every rank of ``group`` calls it."""
    out = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for name, module in model.named_modules():
        if isinstance(module, ColumnParallelLinear):
            index, dim = module.rows, 0
        elif isinstance(module, RowParallelLinear):
            index, dim = module.cols, 1
        else:
            continue
        rows_total = group_size(group) * len(index)
        out[f"{name}.weight"] = _gather_rows(module.weight, index, dim, rows_total, group).cpu()
        if isinstance(module, ColumnParallelLinear) and module.bias is not None:
            out[f"{name}.bias"] = _gather_rows(module.bias, index, 0, rows_total, group).cpu()
    return out


def sync_sequence_parallel_grads(params: Iterable[torch.Tensor], group=None) -> int:
    """All-reduce the gradients of the replicated parameters used on a sequence shard (LayerNorms,
    row-parallel biases: ``p.sequence_parallel``), which hold partial sums; returns how many."""
    grads = [p.grad for p in params if getattr(p, "sequence_parallel", False) and p.grad is not None]
    if grads and not is_simulated(group) and group_size(group) > 1:
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, group=group)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
    return len(grads)


def _is_sharded(p: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    if isinstance(p, DTensor):
        return any(pl.is_shard() for pl in p.placements)
    return getattr(p, "tensor_parallel", False)


def tensor_parallel_grad_norm(params: Iterable[torch.Tensor], group=None) -> torch.Tensor:
    """The global gradient 2-norm of a tensor-parallel model: sharded gradients (Megatron's marked
    parameters, or DTensors with a ``Shard`` placement) summed over ranks, replicated ones counted once.
    ``clip_grad_norm_`` on one rank's parameters alone would see a different norm on each rank."""
    from torch.distributed.tensor import DTensor

    sharded = replicated = None
    for p in params:
        if p.grad is None:
            continue
        g = p.grad.to_local() if isinstance(p.grad, DTensor) else p.grad
        sq = g.detach().float().pow(2).sum()
        if _is_sharded(p):
            sharded = sq if sharded is None else sharded + sq
        else:
            replicated = sq if replicated is None else replicated + sq
    device = next((t.device for t in (sharded, replicated) if t is not None), torch.device("cpu"))
    sharded = torch.zeros((), device=device) if sharded is None else sharded
    replicated = torch.zeros((), device=device) if replicated is None else replicated
    if not is_simulated(group) and group_size(group) > 1:
        dist.all_reduce(sharded, group=group)
    return (sharded + replicated).sqrt()


def clip_tensor_parallel_grads_(params: Sequence[torch.Tensor], max_norm: float, group=None) -> torch.Tensor:
    """``clip_grad_norm_`` with the global norm of ``tensor_parallel_grad_norm`` (the same on every
    rank, so every rank scales by the same factor); returns the norm before clipping."""
    params = list(params)
    norm = tensor_parallel_grad_norm(params, group)
    scale = min(1.0, max_norm / (float(norm) + 1e-6))  # as clip_grad_norm_
    if scale < 1.0:
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale)
    return norm


# ----------------------------------------------------------------------------------------------------
# The same split with PyTorch's DTensor (torch.distributed.tensor.parallel)


def dtensor_tensor_parallel_gpt(model: nn.Module, mesh) -> nn.Module:
    """TinyGPT ``model`` (changed in place and returned) split over the 1-D ``DeviceMesh`` ``mesh`` with
    ``parallelize_module``: ``ColwiseParallel`` on ``c_attn`` and ``c_fc``, ``RowwiseParallel`` on both
    ``c_proj``. The fused ``c_attn``'s rows are first put in head-grouped order
    (``head_grouped_qkv_permutation``), so that the contiguous ``Shard(0)`` DTensor makes gives every rank
    whole heads, and the attention runs ``n_head / world`` local heads (``TensorParallelAttention``).

    DTensor does the rest: it shards the weights (``Shard(0)`` / ``Shard(1)``), inserts the collectives
    that the placements imply (the input's ``Replicate`` -> all-reduce of its gradient, the row-parallel
    ``Partial`` output -> all-reduce), and ``state_dict()`` holds DTensors whose ``full_tensor()`` gathers.
    """
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    world = mesh.size()
    cfg = model.config
    if cfg.n_head % world:
        raise ValueError(f"n_head={cfg.n_head} must be divisible by the tensor-parallel size {world}")
    perm = head_grouped_qkv_permutation(cfg.n_embd, cfg.n_head, world)
    for block in model.transformer.h:
        attn = block.attn
        with torch.no_grad():
            attn.c_attn.weight.copy_(attn.c_attn.weight[perm.to(attn.c_attn.weight.device)])
            if attn.c_attn.bias is not None:
                attn.c_attn.bias.copy_(attn.c_attn.bias[perm.to(attn.c_attn.bias.device)])
        block.attn = TensorParallelAttention(attn.c_attn, attn.c_proj, cfg.n_head // world, cfg.head_dim,
                                             attn.dropout)
        parallelize_module(block, mesh, {"attn.c_attn": ColwiseParallel(), "attn.c_proj": RowwiseParallel(),
                                         "mlp.c_fc": ColwiseParallel(), "mlp.c_proj": RowwiseParallel()})
    model.tensor_parallel = ("dtensor", world)
    return model


@torch.no_grad()
def dtensor_full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The full TinyGPT state_dict (CPU, original row order) of a ``dtensor_tensor_parallel_gpt`` model:
    ``full_tensor()`` of every DTensor (a collective), then ``c_attn``'s head-grouped rows put back."""
    from torch.distributed.tensor import DTensor

    world = model.tensor_parallel[1]
    cfg = model.config
    perm = head_grouped_qkv_permutation(cfg.n_embd, cfg.n_head, world)
    out = {}
    for k, v in model.state_dict().items():
        v = v.full_tensor() if isinstance(v, DTensor) else v
        v = v.detach().cpu().clone()
        if ".attn.c_attn." in k:
            original = torch.empty_like(v)
            original[perm] = v
            v = original
        out[k] = v
    return out
