"""Exercises of the distributed-training lesson.

``distributed.shard_indices``: the reference is ``torch.utils.data.DistributedSampler`` itself (after
``set_epoch(epoch)``), on ``range(dataset_len)``.

``distributed.ring_allreduce``: the learner writes ONE worker's program, ``fn(rank, world_size, tensor,
send, recv) -> Tensor``; the runner (``bigtrain_lab.distributed.allreduce.run_workers``) runs it on 2..8 threads that
can only talk through ``send(dst, t)`` / ``recv(src)`` and records every message. The check compares each
worker's result with ``torch.stack(tensors).sum(0)`` AND the communication pattern: every message goes to
the right neighbour ``(rank + 1) % N``, each worker sends exactly 2(N-1) messages of at most one chunk
(``ceil(numel / N)`` elements), and all workers together send 2(N-1) x the tensor (so each sends
2(N-1)/N of it on average).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from bigtrain_lab.distributed.allreduce import Message, RingRun, ring_allreduce
from bigtrain_lab.grading import probe
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe

# ---- distributed.shard_indices ----------------------------------------------------------------------------

def _shard_indices(dataset_len, *, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False) -> list[int]:
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size!r}")
    sampler = DistributedSampler(range(dataset_len), num_replicas=world_size, rank=rank, shuffle=shuffle,
                                 seed=seed, drop_last=drop_last)  # raises ValueError for a bad rank
    sampler.set_epoch(epoch)
    return [int(i) for i in sampler]


def _index_list(got, expected) -> str | None:
    if isinstance(got, np.ndarray | torch.Tensor):
        if got.ndim != 1:
            return f"expected a list of indices, got an array of shape {tuple(got.shape)}"
        got = got.tolist()
    if not isinstance(got, list | tuple):
        return f"expected a list of int indices, got {type(got).__name__}: {describe(got, 80)}"
    if not all(isinstance(i, int | np.integer) and not isinstance(i, bool) for i in got):
        return "every index must be an int"
    got = [int(i) for i in got]
    if len(got) != len(expected):
        return (f"expected {len(expected)} indices for this rank, got {len(got)} (padding to an equal share "
                f"per rank, or drop_last?)")
    if got != expected:
        first = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)
        same_set = sorted(got) == sorted(expected)
        return (f"index {first} differs: expected {expected[first]}, got {got[first]}"
                + (" (the right indices in the wrong order)" if same_set else ""))
    return None


def _shard_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("10 samples, rank 0 of 2, no shuffle", (10,), {"rank": 0, "world_size": 2, "shuffle": False}),
        Case("10 samples, rank 1 of 2, no shuffle: every 2nd index from 1", (10,),
             {"rank": 1, "world_size": 2, "shuffle": False}),
        Case("10 samples, rank 2 of 3, no shuffle: padded with the first indices", (10,),
             {"rank": 2, "world_size": 3, "shuffle": False}),
        Case("10 samples, rank 2 of 3, no shuffle, drop_last", (10,),
             {"rank": 2, "world_size": 3, "shuffle": False, "drop_last": True}),
        Case("shuffled, seed 0, epoch 0", (20,), {"rank": 1, "world_size": 4}),
        Case("shuffled, seed 0, epoch 1 (set_epoch reshuffles)", (20,), {"rank": 1, "world_size": 4, "epoch": 1}),
        Case("shuffled, seed 7, epoch 3", (50,), {"rank": 3, "world_size": 4, "seed": 7, "epoch": 3}),
        Case("fewer samples than ranks: padding repeats the list", (3,), {"rank": 6, "world_size": 8}),
        Case("fewer samples than ranks, drop_last: nothing left", (3,),
             {"rank": 1, "world_size": 8, "drop_last": True}),
        Case("one rank gets the whole permutation", (17,), {"rank": 0, "world_size": 1, "seed": 3}),
        Case("an empty dataset", (0,), {"rank": 0, "world_size": 2}),
        Case("rank == world_size is not a rank", (10,), {"rank": 2, "world_size": 2}, raises=ValueError),
        Case("a negative rank", (10,), {"rank": -1, "world_size": 2}, raises=ValueError),
        Case("world_size 0", (10,), {"rank": 0, "world_size": 0}, raises=ValueError),
    ]
    for i in range(14):
        world = int(rng.integers(1, 9))
        kwargs = {"rank": int(rng.integers(0, world)), "world_size": world, "shuffle": bool(rng.random() < 0.8),
                  "seed": int(rng.integers(0, 1000)), "epoch": int(rng.integers(0, 5)),
                  "drop_last": bool(rng.random() < 0.3)}
        n = int(rng.integers(1, 300))
        cases.append(Case(f"random #{i + 1} ({n} samples, rank {kwargs['rank']} of {world})", (n,), kwargs))
    return cases


register(Exercise(
    id="distributed.shard_indices",
    reference=_shard_indices,
    make_cases=_shard_cases,
    compare=_index_list,
    hint="Like DistributedSampler: the permutation is torch.randperm(n, generator=g) with "
         "g.manual_seed(seed + epoch) (or list(range(n)) without shuffle). Without drop_last, pad it to "
         "ceil(n / world_size) * world_size by repeating it from its beginning (as many times as needed); "
         "with drop_last, cut it to (n // world_size) * world_size. Then rank r takes "
         "indices[r::world_size] (strided, not a contiguous block). ValueError for a rank outside "
         "[0, world_size) or world_size < 1.",
    section="who-reads-what-distributedsampler",
))


# ---- distributed.ring_allreduce ------------------------------------------------------------------------

def _run_ring(fn, tensors):
    """Every worker's result and every message, from the ring run where ``fn`` lives (``probe.run_ring``)."""
    results, messages = probe.run_ring(fn, tensors)
    return RingRun(world_size=len(tensors), numel=tensors[0].numel(), results=list(results),
                   messages=[Message(*m) for m in messages],
                   expected_sum=torch.stack([t.detach() for t in tensors]).sum(0))


def _ring_reason(got: RingRun, expected: RingRun) -> str | None:
    n, numel = expected.world_size, expected.numel
    truth = expected.expected_sum
    for rank, result in enumerate(got.results):
        if not isinstance(result, torch.Tensor):
            return f"worker {rank} returned {type(result).__name__}, expected the summed tensor"
        if tuple(result.shape) != tuple(truth.shape):
            return f"worker {rank} returned shape {tuple(result.shape)}, expected {tuple(truth.shape)}"
        if result.dtype != truth.dtype:
            return f"worker {rank} returned dtype {result.dtype}, expected {truth.dtype} (keep the input's)"
        exact = not truth.is_floating_point()
        if (exact and not torch.equal(result, truth)) or (
                not exact and not torch.allclose(result, truth, rtol=1e-5, atol=1e-6)):
            err = float((result.double() - truth.double()).abs().max())
            return f"worker {rank}'s result is not the sum of all workers' tensors (max error {err:.3g})"
    if not all(torch.equal(r, got.results[0]) for r in got.results):
        return ("the workers ended with different tensors: after the reduce-scatter each chunk's sum exists "
                "once, and the all-gather copies it (it must not be re-added)")
    for m in got.messages:
        if m.dst != (m.src + 1) % n:
            return (f"worker {m.src} sent to worker {m.dst}: in a ring every worker sends only to its right "
                    f"neighbour (rank + 1) % {n} = {(m.src + 1) % n}")
    chunk = math.ceil(numel / n)
    for rank in range(n):
        sends = got.sends_of(rank)
        if len(sends) != 2 * (n - 1):
            return (f"worker {rank} sent {len(sends)} messages; a ring all-reduce takes 2(N-1) = {2 * (n - 1)} "
                    f"steps of one message each (N-1 of reduce-scatter, N-1 of all-gather)")
        big = [m for m in sends if m.numel > chunk]
        if big:
            return (f"worker {rank} sent a message of {big[0].numel} elements; each message is one chunk "
                    f"(at most ceil({numel}/{n}) = {chunk} elements), not the whole tensor")
    if got.elements_sent != 2 * (n - 1) * numel:
        return (f"the workers sent {got.elements_sent} elements in all, expected 2(N-1) x {numel} = "
                f"{2 * (n - 1) * numel} (each worker sends 2(N-1)/N of the tensor)")
    return None


def _ring_cases(rng: np.random.Generator) -> list[Case]:
    def tensors(n, shape, dtype=torch.float64):
        g = torch.Generator().manual_seed(int(rng.integers(0, 2**31)))
        if dtype == torch.int64:
            return [torch.randint(-50, 50, shape, generator=g) for _ in range(n)]
        return [torch.randn(shape, generator=g, dtype=dtype) for _ in range(n)]

    cases = [
        Case("2 workers, 4 elements", (tensors(2, (4,)),)),
        Case("3 workers, 6 elements (2 per chunk)", (tensors(3, (6,)),)),
        Case("4 workers, 10 elements (chunks of 3, 3, 2, 2)", (tensors(4, (10,)),)),
        Case("8 workers, 64 elements", (tensors(8, (64,)),)),
        Case("5 workers, fewer elements than workers (empty chunks)", (tensors(5, (3,)),)),
        Case("3 workers, a 2-D tensor (4, 5)", (tensors(3, (4, 5)),)),
        Case("4 workers, float32", (tensors(4, (33,), torch.float32),)),
        Case("6 workers, int64 (exact sum)", (tensors(6, (20,), torch.int64),)),
        Case("7 workers, one element", (tensors(7, (1,)),)),
    ]
    for i in range(6):
        n = int(rng.integers(2, 9))
        numel = int(rng.integers(1, 200))
        cases.append(Case(f"random #{i + 1} ({n} workers, {numel} elements)", (tensors(n, (numel,)),)))
    return cases


register(Exercise(
    id="distributed.ring_allreduce",
    reference=ring_allreduce,
    make_cases=_ring_cases,
    compare=_ring_reason,
    hint="Split the flattened tensor into world_size chunks (torch.tensor_split). right = (rank + 1) % N, "
         "left = (rank - 1) % N. Reduce-scatter, for step s in 0..N-2: send(right, chunk[(rank - s) % N]) "
         "then chunk[(rank - s - 1) % N] += recv(left). Now chunk (rank + 1) % N is complete. All-gather, "
         "for s in 0..N-2: send(right, chunk[(rank + 1 - s) % N]) then chunk[(rank - s) % N] = recv(left) "
         "(a copy, not a sum). Return the chunks concatenated, in the input's shape.",
    section="ring-all-reduce",
    time_limit=15.0,
    run=_run_ring,
))
