"""What a compression method is judged by, measured rather than assumed: size on disk, parameter counts,
sparsity, latency (median of repeated timed runs after a warm-up, with a fixed number of threads) and
accuracy."""

from __future__ import annotations

import gzip
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from bigtrain_lab.fit import accuracy


def size_on_disk(model: nn.Module | dict[str, Any]) -> int:
    """Bytes of ``torch.save(model.state_dict())`` written to a real file (a state dict may be given).

    A model pruned with ``torch.nn.utils.prune`` but not yet ``prune.remove``-d stores ``weight_orig``
    AND ``weight_mask``: about twice the dense size."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    fd, path = tempfile.mkstemp(suffix=".pt")
    os.close(fd)
    try:
        torch.save(state, path)
        return os.path.getsize(path)
    finally:
        os.remove(path)


def gzipped_size(model: nn.Module | dict[str, Any]) -> int:
    """Bytes of the saved state dict after gzip: what zeros from unstructured pruning can save in storage
    or download, although the tensors in memory stay dense."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    fd, path = tempfile.mkstemp(suffix=".pt")
    os.close(fd)
    try:
        torch.save(state, path)
        with open(path, "rb") as f:
            return len(gzip.compress(f.read(), compresslevel=6, mtime=0))
    finally:
        os.remove(path)


def count_parameters(model: nn.Module, *, trainable_only: bool = False, nonzero: bool = False) -> int:
    """Number of parameters (each shared tensor once). ``nonzero``: count only entries that are not 0, in
    the EFFECTIVE weights (a pruned layer's ``weight = weight_orig * weight_mask``)."""
    if nonzero:
        return sum(int(torch.count_nonzero(t)) for t in effective_weights(model).values())
    params = {id(p): p for p in model.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in params.values())


def effective_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` of every floating-point parameter as the forward pass uses it: for a layer pruned
    with ``torch.nn.utils.prune`` that is the masked ``weight`` attribute, not ``weight_orig``."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen:  # a tied weight (TinyGPT's lm_head / wte) counts once
                continue
            seen.add(id(param))
            attr = name[: -len("_orig")] if name.endswith("_orig") else name
            tensor = getattr(module, attr)
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                out[f"{module_name}.{attr}" if module_name else attr] = tensor.detach()
    return out


def sparsity(model: nn.Module, *, weights_only: bool = True) -> float:
    """Fraction of zero entries over the effective weights (``weights_only``: names ending in ``weight``,
    biases and norms left out, as pruning leaves them alone)."""
    tensors = [t for n, t in effective_weights(model).items() if not weights_only or n.endswith("weight")]
    total = sum(t.numel() for t in tensors)
    if total == 0:
        raise ValueError("the model has no weights to measure")
    return 1.0 - sum(int(torch.count_nonzero(t)) for t in tensors) / total


@contextmanager
def num_threads(n: int | None):
    """Run the block with ``torch.set_num_threads(n)`` (None: leave it) and restore the previous value."""
    previous = torch.get_num_threads()
    if n is not None:
        if int(n) < 1:
            raise ValueError(f"threads must be >= 1, got {n!r}")
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class Latency:
    """Milliseconds per call: the median of ``repeats`` timed calls, with the 10th and 90th percentiles."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    threads: int

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f}; {self.repeats} runs, " \
               f"{self.threads} thread{'s' if self.threads > 1 else ''})"


def measure_latency(model: nn.Module | Callable[..., Any], *inputs: Any, repeats: int = 50, warmup: int = 10,
                    threads: int | None = 1) -> Latency:
    """Time ``model(*inputs)`` under ``torch.no_grad()`` (eval mode for a module): ``warmup`` untimed calls
    (allocation, kernel choice, caches), then ``repeats`` timed ones with ``threads`` intra-op threads.

    The median, not the mean: one call slowed by another process would move a mean, not a median."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats!r}, warmup={warmup!r}")
    if isinstance(model, nn.Module):
        model.eval()
    times: list[float] = []
    with num_threads(threads), torch.no_grad():
        used = torch.get_num_threads()
        for _ in range(warmup):
            model(*inputs)
        for _ in range(repeats):
            start = time.perf_counter()
            model(*inputs)
            times.append((time.perf_counter() - start) * 1e3)
    q = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else [times[0]] * 9
    return Latency(statistics.median(times), q[0], q[-1], repeats, used)


def report(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, batch_sizes: tuple[int, ...] = (1, 64),
           repeats: int = 50, warmup: int = 10, threads: int | None = 1) -> dict[str, float]:
    """One row of a summary table: accuracy on ``(X, y)``, size on disk, parameters (all and non-zero)
    and the median latency at each batch size (rows of ``X`` repeated if needed)."""
    row: dict[str, float] = {
        "accuracy": accuracy(model, X, y),
        "size_bytes": float(size_on_disk(model)),
        "params": float(count_parameters(model)),
        "nonzero_params": float(count_parameters(model, nonzero=True)),
    }
    for b in batch_sizes:
        batch = X[torch.arange(b) % len(X)]
        row[f"latency_ms_b{b}"] = measure_latency(model, batch, repeats=repeats, warmup=warmup,
                                                  threads=threads).median_ms
    return row
