"""Plausible WRONG implementations of the distributed exercises (each must be rejected by ``check``), and
several different CORRECT ones (each must be accepted)."""

import math

import numpy as np
import torch

# ---- distributed.shard_indices ---------------------------------------------------------------------


def _perm(n, shuffle, seed, epoch):
    if not shuffle:
        return list(range(n))
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    return torch.randperm(n, generator=g).tolist()


def _check(rank, world_size):
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError("bad rank or world_size")


def si_forgets_epoch(n, *, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    # the classic bug: no set_epoch, so every epoch repeats the first one's order
    _check(rank, world_size)
    idx = _perm(n, shuffle, seed, 0)
    total = math.ceil(n / world_size) * world_size if not drop_last else (n // world_size) * world_size
    idx = (idx * (total // max(n, 1) + 1))[:total] if n else []
    return idx[rank::world_size]


def si_contiguous_blocks(n, *, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    # each rank a contiguous block of the permutation instead of every world_size-th index
    _check(rank, world_size)
    idx = _perm(n, shuffle, seed, epoch)
    per = math.ceil(n / world_size) if not drop_last else n // world_size
    total = per * world_size
    idx = (idx * (total // max(n, 1) + 1))[:total] if n else []
    return idx[rank * per:(rank + 1) * per]


def si_numpy_shuffle(n, *, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    # the right recipe with NumPy's generator: a different permutation than torch.randperm
    _check(rank, world_size)
    idx = list(np.random.default_rng(seed + epoch).permutation(n)) if shuffle else list(range(n))
    total = math.ceil(n / world_size) * world_size if not drop_last else (n // world_size) * world_size
    idx = (idx * (total // max(n, 1) + 1))[:total] if n else []
    return [int(i) for i in idx[rank::world_size]]


def si_no_padding(n, *, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    # ranks get different numbers of samples: they fall out of step (a hang in the last all-reduce)
    _check(rank, world_size)
    return _perm(n, shuffle, seed, epoch)[rank::world_size]


def si_pads_once(n, *, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    # pads with indices[:padding] only: too short when there are fewer samples than ranks
    _check(rank, world_size)
    idx = _perm(n, shuffle, seed, epoch)
    if drop_last:
        idx = idx[:(n // world_size) * world_size]
    else:
        idx += idx[:math.ceil(n / world_size) * world_size - n]
    return idx[rank::world_size]


def si_no_validation(n, *, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    # correct indices, but a rank >= world_size quietly returns something
    world_size = max(world_size, 1)
    idx = _perm(n, shuffle, seed, epoch)
    total = math.ceil(n / world_size) * world_size if not drop_last else (n // world_size) * world_size
    idx = (idx * (total // max(n, 1) + 1))[:total] if n else []
    return idx[rank % world_size::world_size]


SHARD_WRONG = [si_forgets_epoch, si_contiguous_blocks, si_numpy_shuffle, si_no_padding, si_pads_once,
               si_no_validation]


def si_library(n, *, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    from torch.utils.data import DistributedSampler

    if world_size < 1:
        raise ValueError("world_size must be >= 1")
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=drop_last)
    sampler.set_epoch(epoch)
    return list(sampler)


def si_by_hand(n, *, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    _check(rank, world_size)
    idx = _perm(n, shuffle, seed, epoch)
    if drop_last:
        idx = idx[:(n // world_size) * world_size]
    else:
        total = math.ceil(n / world_size) * world_size
        while len(idx) < total:
            idx += idx[:total - len(idx)]
    return np.array(idx[rank::world_size], dtype=np.int64)  # an array is accepted too


SHARD_RIGHT = [si_library, si_by_hand]

# ---- distributed.ring_allreduce ---------------------------------------------------------------------


def ra_naive_ring(rank, n, tensor, send, recv):
    # correct sum and neighbours only, but the WHOLE tensor goes around: (N-1) x the tensor per worker
    total = tensor.clone()
    passing = tensor.clone()
    for _ in range(n - 1):
        send((rank + 1) % n, passing)
        passing = recv((rank - 1) % n)
        total += passing
    for _ in range(n - 1):  # pads the step count to 2(N-1), still whole tensors
        send((rank + 1) % n, tensor[:0])
        recv((rank - 1) % n)
    return total


def ra_parameter_server(rank, n, tensor, send, recv):
    # everyone sends to rank 0, which sums and sends back: correct sum, not a ring
    if rank == 0:
        total = tensor.clone()
        for src in range(1, n):
            total += recv(src)
        for dst in range(1, n):
            send(dst, total)
        return total
    send(0, tensor)
    return recv(0)


def ra_all_to_all(rank, n, tensor, send, recv):
    # every worker sends its tensor to every other one
    for dst in range(n):
        if dst != rank:
            send(dst, tensor)
    total = tensor.clone()
    for src in range(n):
        if src != rank:
            total += recv(src)
    return total


def ra_gather_adds(rank, n, tensor, send, recv):
    # the all-gather ADDS what it receives instead of copying: wrong sums
    chunks = list(torch.tensor_split(tensor.flatten().clone(), n))
    right, left = (rank + 1) % n, (rank - 1) % n
    for s in range(n - 1):
        send(right, chunks[(rank - s) % n])
        chunks[(rank - s - 1) % n] += recv(left)
    for s in range(n - 1):
        send(right, chunks[(rank + 1 - s) % n])
        chunks[(rank - s) % n] += recv(left)
    return torch.cat(chunks).view_as(tensor)


def ra_reduce_scatter_only(rank, n, tensor, send, recv):
    # stops after the reduce-scatter: each worker has one complete chunk, the rest partial
    chunks = list(torch.tensor_split(tensor.flatten().clone(), n))
    for s in range(n - 1):
        send((rank + 1) % n, chunks[(rank - s) % n])
        chunks[(rank - s - 1) % n] += recv((rank - 1) % n)
    return torch.cat(chunks).view_as(tensor)


def ra_off_by_one(rank, n, tensor, send, recv):
    # sends chunk (rank - s - 1) instead of (rank - s): adds chunks into the wrong places
    chunks = list(torch.tensor_split(tensor.flatten().clone(), n))
    for s in range(n - 1):
        send((rank + 1) % n, chunks[(rank - s - 1) % n])
        chunks[(rank - s - 1) % n] += recv((rank - 1) % n)
    for s in range(n - 1):
        send((rank + 1) % n, chunks[(rank + 1 - s) % n])
        chunks[(rank - s) % n] = recv((rank - 1) % n)
    return torch.cat(chunks).view_as(tensor)


def ra_cheat_sum_locally(rank, n, tensor, send, recv):
    # no communication at all: returns its own tensor times n
    return tensor * n


RING_WRONG = [ra_naive_ring, ra_parameter_server, ra_all_to_all, ra_gather_adds, ra_reduce_scatter_only,
              ra_off_by_one, ra_cheat_sum_locally]


def ra_reference_style(rank, n, tensor, send, recv):
    chunks = list(torch.tensor_split(tensor.flatten().clone(), n))
    right, left = (rank + 1) % n, (rank - 1) % n
    for s in range(n - 1):
        send(right, chunks[(rank - s) % n])
        chunks[(rank - s - 1) % n] += recv(left)
    for s in range(n - 1):
        send(right, chunks[(rank + 1 - s) % n])
        chunks[(rank - s) % n] = recv(left)
    return torch.cat(chunks).view_as(tensor)


def ra_shifted_schedule(rank, n, tensor, send, recv):
    # another valid schedule: start by sending chunk rank + 1 (worker r ends owning chunk r + 2), explicit
    # chunk boundaries instead of tensor_split, results written back into a fresh tensor
    flat = tensor.reshape(-1).clone()
    bounds = [flat.numel() * i // n for i in range(n + 1)]
    chunk = [flat[bounds[i]:bounds[i + 1]] for i in range(n)]
    right, left = (rank + 1) % n, (rank - 1) % n
    for s in range(n - 1):
        send(right, chunk[(rank + 1 - s) % n].clone())
        incoming = recv(left)
        chunk[(rank - s) % n].add_(incoming)
    for s in range(n - 1):
        send(right, chunk[(rank + 2 - s) % n].clone())
        chunk[(rank + 1 - s) % n].copy_(recv(left))
    return flat.reshape(tensor.shape)


RING_RIGHT = [ra_reference_style, ra_shifted_schedule]

WRONG = {"distributed.shard_indices": SHARD_WRONG, "distributed.ring_allreduce": RING_WRONG}
RIGHT = {"distributed.shard_indices": SHARD_RIGHT, "distributed.ring_allreduce": RING_RIGHT}
