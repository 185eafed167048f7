"""Watch DDP's gradient buckets fire during the backward pass (the overlap of communication and compute).

DDP groups parameters into buckets of about ``bucket_cap_mb`` in REVERSE order of registration (the
last layers' gradients are ready first in backward), and launches each bucket's all-reduce as soon as
all its gradients exist, while backward continues on earlier layers. A communication hook sees every
bucket as it is launched; ``record_buckets`` records the order, the size and the moment, in a world of one
process (a HashStore, no network), which is enough to see the mechanism.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel as DDP


@dataclass(frozen=True)
class BucketEvent:
    """One bucket's all-reduce launch: its index, its parameters (names), elements and when (seconds
    after backward started)."""

    index: int
    parameters: tuple[str, ...]
    numel: int
    seconds: float


@contextlib.contextmanager
def single_process_group() -> Iterator[None]:
    """A gloo process group of one rank in this process (for demonstrations and tests), destroyed after."""
    if dist.is_initialized():
        raise RuntimeError("a process group is already running in this process")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def record_buckets(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, bucket_cap_mb: float = 25.0,
                   grad_accum: int = 1, use_no_sync: bool = True) -> tuple[list[BucketEvent], float]:
    """Run ``grad_accum`` forward/backward passes of ``model(x, y) -> (logits, loss)`` under DDP (needs a
    process group, e.g. ``single_process_group()``) and return ``(bucket launches, backward seconds)``:
    the buckets of every micro-batch whose gradients were all-reduced, and the length of the last backward.
    With ``use_no_sync``, all micro-batches but the last run under ``no_sync()``. The second iteration's
    buckets are recorded (DDP rebuilds its buckets in the real gradient order after the first)."""
    names = {p: n for n, p in model.named_parameters()}
    ddp = DDP(model, bucket_cap_mb=bucket_cap_mb)
    events: list[BucketEvent] = []
    start = [0.0]

    def hook(state, bucket):
        events.append(BucketEvent(bucket.index(), tuple(names[p] for p in bucket.parameters()),
                                  bucket.buffer().numel(), time.perf_counter() - start[0]))
        return allreduce_hook(None, bucket)

    ddp.register_comm_hook(None, hook)
    backward_s = 0.0
    for _ in range(2):  # the first iteration builds the buckets; keep the second's
        events.clear()
        for micro in range(grad_accum):
            last = micro == grad_accum - 1
            with contextlib.nullcontext() if last or not use_no_sync else ddp.no_sync():
                _, loss = ddp(x, y)
                start[0] = time.perf_counter()
                loss.backward()
                backward_s = time.perf_counter() - start[0]
        model.zero_grad(set_to_none=True)
    return events, backward_s
