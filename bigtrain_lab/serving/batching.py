"""Dynamic micro-batching as a policy on arrival times, and the latency report of a load test.

Lesson 13 (``notebooks/13_serving.ipynb``). ``micro_batches`` is the batching policy of the kit's server
(``bigtrain_lab.serving.server``) written as a pure function of arrival times, with a zero-time forward pass:
a batch opens when its first request arrives, takes every later request that arrives no later than
``max_wait_ms`` after that (a tie with the deadline is in), and leaves at the deadline, or at once when it
holds ``max_batch`` requests. The server's batcher does the same with a real clock; there a batch opens when
the batcher picks up its first request, which is the arrival time whenever the batcher was idle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["latency_report", "micro_batches"]


def micro_batches(arrival_ms: Sequence[float], *, max_batch: int, max_wait_ms: float) -> list[tuple[float, list[int]]]:
    """The batches the server's batcher forms: ``[(dispatch_ms, [request indices]), ...]`` in dispatch order.

    ``arrival_ms`` must be finite and non-decreasing (requests numbered in arrival order); ``max_batch`` >= 1
    and ``max_wait_ms`` >= 0 (0: only requests that arrive at the same instant share a batch).

    >>> micro_batches([0, 1, 2, 10], max_batch=2, max_wait_ms=5)
    [(1.0, [0, 1]), (7.0, [2]), (15.0, [3])]
    """
    if isinstance(max_batch, bool) or not isinstance(max_batch, int | np.integer) or max_batch < 1:
        raise ValueError(f"max_batch must be an integer >= 1, got {max_batch!r}")
    wait = float(max_wait_ms)
    if not math.isfinite(wait) or wait < 0:
        raise ValueError(f"max_wait_ms must be a finite number >= 0, got {max_wait_ms!r}")
    times = [float(t) for t in arrival_ms]
    if not all(math.isfinite(t) for t in times):
        raise ValueError("arrival_ms must be finite numbers")
    if any(b < a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError("arrival_ms must be non-decreasing (requests numbered in arrival order)")
    batches: list[tuple[float, list[int]]] = []
    i = 0
    while i < len(times):
        deadline = times[i] + wait
        members = [i]
        i += 1
        while i < len(times) and len(members) < max_batch and times[i] <= deadline:
            members.append(i)
            i += 1
        dispatch = times[members[-1]] if len(members) == max_batch else deadline
        batches.append((dispatch, members))
    return batches


def latency_report(latencies_ms: Sequence[float]) -> dict[str, float]:
    """``p50``, ``p95``, ``p99`` (``numpy.percentile``, linear interpolation), ``mean`` and ``max`` of the
    latencies, as floats. ValueError on an empty input, NaN / infinity or a negative latency.

    >>> latency_report([10, 20, 30, 40])["p50"]
    25.0
    """
    values = np.asarray(latencies_ms, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("no latencies: the report needs at least one")
    if not np.all(np.isfinite(values)):
        raise ValueError("latencies must be finite (got NaN or infinity)")
    if np.any(values < 0):
        raise ValueError(f"latencies cannot be negative (got {values.min():g} ms)")
    p50, p95, p99 = np.percentile(values, [50, 95, 99], method="linear")
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(values.mean()),
            "max": float(values.max())}
