"""The data a rank sees: fixed windows of a character corpus, split across ranks by ``DistributedSampler``.

Random windows (``CharCorpus.get_batch``) are fine on one process; with several, each rank must see a
different part of the data and all of it must be seen once per epoch. ``DistributedSampler`` does that
for a map-style dataset: every rank draws the same permutation (seeded with ``seed + epoch``, so
``set_epoch`` must be called each epoch or every epoch repeats the first one's order) and keeps every
``world_size``-th index starting at its rank.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class CharWindows(Dataset):
    """Non-overlapping windows of a token-id array: item ``i`` is ``(x, y)`` with
    ``x = ids[i*T : i*T + T]`` and ``y = ids[i*T + 1 : i*T + T + 1]`` (``T = block_size``), int64."""

    def __init__(self, ids: np.ndarray, block_size: int):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size!r}")
        if len(ids) <= block_size:
            raise ValueError(f"{len(ids)} tokens make no window of block_size + 1 = {block_size + 1}")
        self.ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        self.block_size = block_size

    def __len__(self) -> int:
        return (len(self.ids) - 1) // self.block_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} of {len(self)}")
        start = (i % len(self)) * self.block_size
        chunk = self.ids[start:start + self.block_size + 1]
        return chunk[:-1], chunk[1:]


def micro_batches(dataset: Dataset, *, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                  shuffle: bool = True, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The endless stream of ``(x, y)`` micro-batches of one rank, epoch after epoch.

    ``DistributedSampler(dataset, world_size, rank, shuffle, seed)`` picks the rank's indices and
    ``set_epoch`` reshuffles each epoch; a ``DataLoader`` batches them (``drop_last``: every rank takes
    the same number of steps). ``start`` skips that many micro-batches: a resumed run continues exactly
    where the checkpointed one stopped. Micro-batch ``k`` of rank ``r`` with ``world_size`` W, together
    with the same micro-batch of the other ranks, covers positions ``k*W*b .. (k+1)*W*b - 1`` of the
    epoch's permutation: the global batch one process would take with batch size ``W*b``.
    """
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)
    per_epoch = len(loader)
    if per_epoch == 0:
        raise ValueError(f"{len(dataset)} samples over {world_size} ranks leave fewer than batch_size="
                         f"{batch_size} per rank: use a smaller batch or more data")
    epoch, skip = divmod(start, per_epoch)
    while True:
        sampler.set_epoch(epoch)  # the same new permutation on every rank
        yield from islice(loader, skip, None)
        epoch, skip = epoch + 1, 0


def as_get_batch(stream: Iterator[tuple[torch.Tensor, torch.Tensor]]
                 ) -> Callable[[str, int], tuple[torch.Tensor, torch.Tensor]]:
    """``get_batch(split, step)`` for ``bigtrain_lab.train.train`` that takes the next batch of ``stream``
    for training (no validation split: run it with ``eval_every=0``)."""

    def get_batch(split: str, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if split != "train":
            raise ValueError("this stream has training batches only: set TrainConfig(eval_every=0)")
        return next(stream)

    return get_batch


def global_batch_indices(dataset_len: int, *, step: int, batch_size: int, world_size: int,
                         grad_accum: int = 1, seed: int = 0) -> list[list[int]]:
    """The sample indices of optimizer step ``step`` of an epoch-0 run, one list per rank (micro-batches
    concatenated): what ``micro_batches`` gives each rank, for showing who reads what."""
    out = []
    for rank in range(world_size):
        sampler = DistributedSampler(range(dataset_len), num_replicas=world_size, rank=rank, seed=seed)
        indices = list(sampler)
        lo = step * grad_accum * batch_size
        out.append(indices[lo:lo + grad_accum * batch_size])
    return out
