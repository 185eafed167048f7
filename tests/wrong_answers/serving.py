"""Plausible WRONG implementations of the ``serving.*`` exercises (each must be rejected by ``check``),
and several different CORRECT ones (each must be accepted)."""

import math
import statistics

import numpy as np


def _validate(arrival_ms, max_batch, max_wait_ms):
    if max_batch < 1 or max_wait_ms < 0:
        raise ValueError("bad knobs")
    if any(math.isnan(t) for t in arrival_ms) or any(b < a for a, b in zip(arrival_ms, arrival_ms[1:])):
        raise ValueError("arrivals must be non-decreasing")


def _greedy(arrival_ms, max_batch, max_wait_ms, *, joins, leaves):
    """The batching loop with two rules swapped in: ``joins(t, deadline)`` (does a request arriving at t join)
    and ``leaves(members, deadline)`` (the dispatch time)."""
    _validate(arrival_ms, max_batch, max_wait_ms)
    out, i = [], 0
    while i < len(arrival_ms):
        deadline, members = arrival_ms[i] + max_wait_ms, [i]
        i += 1
        while i < len(arrival_ms) and len(members) < max_batch and joins(arrival_ms[i], deadline):
            members.append(i)
            i += 1
        out.append((leaves(members, deadline), members))
    return out


def mb_strict_deadline(arrival_ms, *, max_batch, max_wait_ms):
    # an arrival exactly at the deadline is left for the next batch (< instead of <=)
    return _greedy(arrival_ms, max_batch, max_wait_ms, joins=lambda t, d: t < d,
                   leaves=lambda m, d: arrival_ms[m[-1]] if len(m) == max_batch else d)


def mb_always_waits(arrival_ms, *, max_batch, max_wait_ms):
    # a full batch still waits for its deadline (adds latency for nothing)
    return _greedy(arrival_ms, max_batch, max_wait_ms, joins=lambda t, d: t <= d, leaves=lambda m, d: d)


def mb_fixed_windows(arrival_ms, *, max_batch, max_wait_ms):
    # clock-aligned windows [k w, (k+1) w) instead of a window opened by the first request
    _validate(arrival_ms, max_batch, max_wait_ms)
    if max_wait_ms == 0:
        return mb_right_groups(arrival_ms, max_batch=max_batch, max_wait_ms=max_wait_ms)
    out, current, window = [], [], None
    for i, t in enumerate(arrival_ms):
        w = math.floor(t / max_wait_ms)
        if current and (w != window or len(current) == max_batch):
            out.append(((window + 1) * max_wait_ms, current))
            current = []
        window = w
        current.append(i)
    if current:
        out.append(((window + 1) * max_wait_ms, current))
    return out


def mb_last_arrival_dispatch(arrival_ms, *, max_batch, max_wait_ms):
    # dispatches when its last member arrived, as if the batcher knew nobody else would come
    return _greedy(arrival_ms, max_batch, max_wait_ms, joins=lambda t, d: t <= d, leaves=lambda m, d: arrival_ms[m[-1]])


def mb_no_validation(arrival_ms, *, max_batch, max_wait_ms):
    # right policy, but sorts the arrivals instead of refusing an out-of-order input
    return mb_right_loop(sorted(arrival_ms), max_batch=max(1, max_batch), max_wait_ms=abs(max_wait_ms))


def mb_right_loop(arrival_ms, *, max_batch, max_wait_ms):
    _validate(arrival_ms, max_batch, max_wait_ms)
    out, i = [], 0
    while i < len(arrival_ms):
        deadline, members = arrival_ms[i] + max_wait_ms, [i]
        i += 1
        while i < len(arrival_ms) and len(members) < max_batch and arrival_ms[i] <= deadline:
            members.append(i)
            i += 1
        out.append((float(arrival_ms[members[-1]] if len(members) == max_batch else deadline), members))
    return out


def mb_right_groups(arrival_ms, *, max_batch, max_wait_ms):
    _validate(arrival_ms, max_batch, max_wait_ms)
    t = np.asarray(arrival_ms, dtype=float)
    batches, start = [], 0
    while start < len(t):
        end = int(np.searchsorted(t, t[start] + max_wait_ms, side="right"))
        end = min(end, start + max_batch)
        full = end - start == max_batch
        batches.append((float(t[end - 1]) if full else float(t[start] + max_wait_ms), list(range(start, end))))
        start = end
    return batches


def _checked(latencies_ms):
    x = np.asarray(latencies_ms, dtype=float)
    if x.size == 0 or not np.isfinite(x).all() or (x < 0).any():
        raise ValueError("need finite, non-negative latencies")
    return x


def lr_nearest_rank(latencies_ms):
    x = _checked(latencies_ms)
    p50, p95, p99 = np.percentile(x, [50, 95, 99], method="nearest")
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(x.mean()), "max": float(x.max())}


def lr_index_of_sorted(latencies_ms):
    x = np.sort(_checked(latencies_ms))
    pick = [float(x[min(len(x) - 1, int(q * len(x)))]) for q in (0.5, 0.95, 0.99)]
    return {"p50": pick[0], "p95": pick[1], "p99": pick[2], "mean": float(x.mean()), "max": float(x.max())}


def lr_statistics_quantiles(latencies_ms):
    x = _checked(latencies_ms)
    if x.size == 1:
        q = [float(x[0])] * 99
    else:
        q = statistics.quantiles(x.tolist(), n=100)  # method='exclusive'
    return {"p50": q[49], "p95": q[94], "p99": q[98], "mean": float(x.mean()), "max": float(x.max())}


def lr_median_as_mean(latencies_ms):
    x = _checked(latencies_ms)
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(p50), "max": float(x.max())}


def lr_no_validation(latencies_ms):
    x = np.asarray(latencies_ms, dtype=float)
    if x.size == 0:
        return {k: 0.0 for k in ("p50", "p95", "p99", "mean", "max")}
    p50, p95, p99 = np.nanpercentile(x, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(np.nanmean(x)),
            "max": float(np.nanmax(x))}


def lr_right_numpy(latencies_ms):
    x = _checked(latencies_ms)
    p50, p95, p99 = np.percentile(x, [50, 95, 99], method="linear")
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(np.mean(x)), "max": float(np.max(x))}


def lr_right_by_hand(latencies_ms):
    xs = sorted(float(v) for v in latencies_ms)
    if not xs or any(math.isnan(v) or math.isinf(v) or v < 0 for v in xs):
        raise ValueError("need finite, non-negative latencies")

    def pct(q):
        pos = q / 100 * (len(xs) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    return {"p50": pct(50), "p95": pct(95), "p99": pct(99), "mean": sum(xs) / len(xs), "max": xs[-1]}


WRONG = {
    "serving.micro_batches": [mb_strict_deadline, mb_always_waits, mb_fixed_windows, mb_last_arrival_dispatch,
                              mb_no_validation],
    "serving.latency_report": [lr_nearest_rank, lr_index_of_sorted, lr_statistics_quantiles, lr_median_as_mean,
                               lr_no_validation],
}
RIGHT = {
    "serving.micro_batches": [mb_right_loop, mb_right_groups],
    "serving.latency_report": [lr_right_numpy, lr_right_by_hand],
}
