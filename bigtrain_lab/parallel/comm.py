"""Megatron-LM's conjugate collectives: autograd functions whose backward is the forward's "transpose".

Tensor parallelism (Shoeybi et al. 2019, section 3) needs two operators around a column-parallel ->
row-parallel pair of linear layers:

* ``f`` = ``copy_to_tensor_parallel_region``: identity forward (every rank already holds the whole input),
  **all-reduce backward** (each rank's input gradient is a partial sum over its output columns);
* ``g`` = ``reduce_from_tensor_parallel_region``: **all-reduce forward** (sum the row-parallel partial
  outputs), identity backward (the output gradient is the same on every rank).

Sequence parallelism (Korthikanti et al. 2022) replaces them, around regions that work on a shard of the
sequence (LayerNorm, dropout, the residual add):

* ``gather_from_sequence_parallel_region``: **all-gather** the sequence shards forward, **reduce-scatter**
  backward (or a plain split when what follows is replicated, ``tensor_parallel_output_grad=False``);
* ``reduce_scatter_to_sequence_parallel_region``: **reduce-scatter** forward, **all-gather** backward;
* ``scatter_to_sequence_parallel_region``: keep this rank's shard forward, all-gather backward.

An all-reduce IS a reduce-scatter followed by an all-gather (the ring algorithm does exactly that), so
SP moves the same bytes as TP and needs no extra communication.

``group`` is a ``torch.distributed`` process group (None: the default group) or a ``SimulatedGroup``
(``simulated_group(world, rank)``; ``SIMULATE`` is the one of size 1): no communication at all, for
running one rank's exact shapes in one process (all-reduces return the partial result, all-gathers repeat
the local shard, reduce-scatters keep the rank's slice of the partial result: shapes right, values not).
Every call is recorded by the ``count_collectives()`` counters active at that moment.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

import torch
import torch.distributed as dist

__all__ = [
    "SIMULATE",
    "SimulatedGroup",
    "copy_to_tensor_parallel_region",
    "count_collectives",
    "gather_from_sequence_parallel_region",
    "group_rank",
    "group_size",
    "reduce_from_tensor_parallel_region",
    "reduce_scatter_to_sequence_parallel_region",
    "scatter_to_sequence_parallel_region",
    "simulated_group",
]


class SimulatedGroup:
    """A ``group`` of ``world`` ranks that communicates nothing: rank ``rank``'s shapes in one process."""

    def __init__(self, world: int = 1, rank: int = 0):
        if isinstance(world, bool) or not isinstance(world, int) or world < 1 or not 0 <= rank < world:
            raise ValueError(f"need world >= 1 and 0 <= rank < world, got world={world!r}, rank={rank!r}")
        self.world, self.rank = world, rank

    def __repr__(self) -> str:
        return f"simulated_group({self.world}, {self.rank})"


def simulated_group(world: int, rank: int = 0) -> SimulatedGroup:
    """A stand-in group of ``world`` ranks for rank ``rank`` (see the module's docstring)."""
    return SimulatedGroup(world, rank)


def is_simulated(group) -> bool:
    return isinstance(group, SimulatedGroup)


SIMULATE = SimulatedGroup(1)
# torch 2.13 renamed the tensor-to-tensor collectives (the old names warn); older versions have only those
_ALL_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_REDUCE_SCATTER = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
_COUNTERS: list[Counter] = []


@contextlib.contextmanager
def count_collectives() -> Iterator[Counter]:
    """Count the collectives of this module called inside the block (forward and backward alike):
    keys ``"forward all_reduce"``, ``"backward all_reduce"``, ``"forward all_gather"``, ...

        with count_collectives() as calls:
            loss = model(x, y)[1]; loss.backward()
        calls["forward all_reduce"]
    """
    counter: Counter = Counter()
    _COUNTERS.append(counter)
    try:
        yield counter
    finally:
        _COUNTERS.remove(counter)


def _record(phase: str, kind: str) -> None:
    for counter in _COUNTERS:
        counter[f"{phase} {kind}"] += 1


def group_size(group) -> int:
    """Ranks in ``group`` (a simulated group's ``world``)."""
    return group.world if is_simulated(group) else dist.get_world_size(group)


def group_rank(group) -> int:
    return group.rank if is_simulated(group) else dist.get_rank(group)


def _all_reduce(x: torch.Tensor, group, phase: str) -> torch.Tensor:
    _record(phase, "all_reduce")
    if is_simulated(group) or dist.get_world_size(group) == 1:
        return x
    x = x.contiguous().clone()  # never reduce into a tensor autograd or the caller still holds
    dist.all_reduce(x, group=group)
    return x


def _all_gather(x: torch.Tensor, dim: int, group, phase: str) -> torch.Tensor:
    _record(phase, "all_gather")
    world = group_size(group)
    if is_simulated(group):
        return torch.cat([x] * world, dim=dim) if world > 1 else x
    if world == 1:
        return x
    # all_gather_single (all_gather_into_tensor) stacks along dim 0: move the sequence dim to the front and back
    moved = x.movedim(dim, 0).contiguous()
    out = torch.empty((world * moved.shape[0], *moved.shape[1:]), dtype=x.dtype, device=x.device)
    _ALL_GATHER(out, moved, group=group)
    return out.movedim(0, dim).contiguous()


def _split(x: torch.Tensor, dim: int, group) -> torch.Tensor:
    world = group_size(group)
    if x.shape[dim] % world:
        raise ValueError(f"dimension {dim} of size {x.shape[dim]} does not split over {world} ranks")
    if world == 1:
        return x
    return x.chunk(world, dim=dim)[group_rank(group)].contiguous()


def _reduce_scatter(x: torch.Tensor, dim: int, group, phase: str) -> torch.Tensor:
    _record(phase, "reduce_scatter")
    world = group_size(group)
    if x.shape[dim] % world:
        raise ValueError(f"dimension {dim} of size {x.shape[dim]} does not split over {world} ranks")
    if is_simulated(group) or world == 1:
        return _split(x, dim, group)
    moved = x.movedim(dim, 0).contiguous()
    out = torch.empty((moved.shape[0] // world, *moved.shape[1:]), dtype=x.dtype, device=x.device)
    try:
        _REDUCE_SCATTER(out, moved, group=group)
    except (RuntimeError, NotImplementedError):
        # Older gloo builds have no reduce_scatter: all-reduce and keep this rank's slice (the same sum,
        # twice the traffic). torch 2.13's gloo has it; NCCL always has.
        moved = moved.clone()
        dist.all_reduce(moved, group=group)
        out = moved.chunk(world, dim=0)[dist.get_rank(group)]
    return out.movedim(0, dim).contiguous()


class _CopyToTP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return _all_reduce(grad, ctx.group, "backward"), None


class _ReduceFromTP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        return _all_reduce(x, group, "forward")

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class _GatherFromSP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, group, tensor_parallel_output_grad):
        ctx.dim, ctx.group, ctx.tp_grad = dim, group, tensor_parallel_output_grad
        return _all_gather(x, dim, group, "forward")

    @staticmethod
    def backward(ctx, grad):
        if ctx.tp_grad:  # what follows is tensor-parallel: each rank's gradient is a partial sum
            return _reduce_scatter(grad, ctx.dim, ctx.group, "backward"), None, None, None
        return _split(grad, ctx.dim, ctx.group), None, None, None  # replicated: the same on every rank


class _ReduceScatterToSP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, group):
        ctx.dim, ctx.group = dim, group
        return _reduce_scatter(x, dim, group, "forward")

    @staticmethod
    def backward(ctx, grad):
        return _all_gather(grad, ctx.dim, ctx.group, "backward"), None, None


class _ScatterToSP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, group):
        ctx.dim, ctx.group = dim, group
        return _split(x, dim, group)

    @staticmethod
    def backward(ctx, grad):
        return _all_gather(grad, ctx.dim, ctx.group, "backward"), None, None


def _check(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")


def copy_to_tensor_parallel_region(x: torch.Tensor, group=None) -> torch.Tensor:
    """Megatron's ``f``: identity forward, all-reduce of the gradient backward."""
    _check(x)
    return _CopyToTP.apply(x, group)


def reduce_from_tensor_parallel_region(x: torch.Tensor, group=None) -> torch.Tensor:
    """Megatron's ``g``: all-reduce (sum) forward, identity backward."""
    _check(x)
    return _ReduceFromTP.apply(x, group)


def gather_from_sequence_parallel_region(x: torch.Tensor, group=None, *, dim: int = 1,
                                         tensor_parallel_output_grad: bool = True) -> torch.Tensor:
    """All-gather the sequence shards along ``dim`` forward; backward reduce-scatter (``tensor_parallel_
    output_grad``: a tensor-parallel layer follows) or split (a replicated one follows, e.g. the lm_head)."""
    _check(x)
    return _GatherFromSP.apply(x, dim, group, tensor_parallel_output_grad)


def reduce_scatter_to_sequence_parallel_region(x: torch.Tensor, group=None, *, dim: int = 1) -> torch.Tensor:
    """Sum the partial outputs and keep this rank's sequence shard (reduce-scatter) forward; all-gather backward."""
    _check(x)
    return _ReduceScatterToSP.apply(x, dim, group)


def scatter_to_sequence_parallel_region(x: torch.Tensor, group=None, *, dim: int = 1) -> torch.Tensor:
    """Keep this rank's shard of a replicated tensor along ``dim`` forward; all-gather backward."""
    _check(x)
    return _ScatterToSP.apply(x, dim, group)
