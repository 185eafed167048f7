"""Exercises of the serving topic (lesson 13). References: ``bigtrain_lab.serving.batching``.

- ``serving.micro_batches(arrival_ms, *, max_batch, max_wait_ms)``: the batches the lesson's batcher forms
  (a batch opens at its first request's arrival, takes later arrivals up to and including the deadline
  ``open + max_wait_ms``, and leaves at the deadline or as soon as it holds ``max_batch`` requests), as
  ``[(dispatch_ms, [indices]), ...]``. Cases: an empty input, ``max_batch`` 1, ``max_wait_ms`` 0 with
  simultaneous arrivals, an arrival exactly at the deadline, a full batch leaving before its deadline,
  bursts and quiet gaps, Poisson arrivals at several rates; ValueError for decreasing or NaN arrivals and
  for ``max_batch`` < 1 or a negative wait.
- ``serving.latency_report(latencies_ms)``: ``p50``, ``p95``, ``p99``, ``mean``, ``max`` as floats, the
  percentiles equal to ``numpy.percentile(..., method="linear")`` (rtol 1e-9). Nearest-rank percentiles,
  ``sorted(x)[int(0.99 * n)]`` and ``statistics.quantiles`` (the exclusive method) differ on the cases
  drawn; ValueError on an empty input, NaN or a negative latency.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bigtrain_lab.grading.compare import as_real
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe
from bigtrain_lab.serving.batching import latency_report, micro_batches

# ---- serving.micro_batches ---------------------------------------------------------------------------


def _batches_reason(got: Any, expected: list) -> str | None:
    what = "a list of (dispatch_ms, [request indices]) pairs, one per batch"
    if not isinstance(got, list | tuple):
        return f"expected {what}, got {type(got).__name__}: {describe(got, 80)}"
    if len(got) != len(expected):
        return f"expected {len(expected)} batches, got {len(got)}"
    for i, (pair, (t_exp, idx_exp)) in enumerate(zip(got, expected, strict=True)):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            return f"batch {i}: expected a pair (dispatch_ms, [indices]), got {describe(pair, 80)}"
        try:
            t = as_real(pair[0], "a number for dispatch_ms")
            idx = [int(as_real(j, "request indices")) for j in pair[1]]
        except Exception as e:  # noqa: BLE001 - WrongKind with its message
            return f"batch {i}: {e}"
        if idx != idx_exp:
            return f"batch {i}: expected requests {idx_exp}, got {idx}"
        if not math.isclose(t, t_exp, rel_tol=1e-9, abs_tol=1e-9):
            return f"batch {i} (requests {idx_exp}): expected dispatch at {t_exp!r} ms, got {t!r}"
    return None


def _poisson(rng: np.random.Generator, n: int, rate_per_ms: float) -> list[float]:
    return [round(float(t), 3) for t in np.cumsum(rng.exponential(1.0 / rate_per_ms, size=n))]


def _batch_cases(rng: np.random.Generator) -> list[Case]:
    def case(label, arrivals, max_batch, max_wait_ms, raises=None):
        return Case(label, (list(arrivals),), {"max_batch": max_batch, "max_wait_ms": max_wait_ms}, raises)

    cases = [
        case("no requests", [], 8, 5.0),
        case("one request waits the full max_wait_ms", [3.0], 8, 5.0),
        case("max_batch 1: every request leaves on arrival", [0.0, 0.5, 0.5, 4.0], 1, 10.0),
        case("max_wait_ms 0: only simultaneous arrivals share a batch", [1.0, 1.0, 1.0, 2.0, 2.5, 2.5], 8, 0.0),
        case("an arrival exactly at the deadline is in the batch", [0.0, 2.0, 5.0, 5.5], 8, 5.0),
        case("a full batch leaves before its deadline", [0.0, 1.0, 2.0, 3.0, 4.0], 3, 10.0),
        case("a burst of 10 at once, max_batch 4", [7.0] * 10, 4, 2.0),
        case("quiet gaps longer than the wait", [0.0, 20.0, 40.0, 41.0], 4, 5.0),
        case("decreasing arrivals", [0.0, 2.0, 1.0], 4, 5.0, ValueError),
        case("NaN arrival", [0.0, float("nan")], 4, 5.0, ValueError),
        case("max_batch 0", [0.0, 1.0], 0, 5.0, ValueError),
        case("negative max_wait_ms", [0.0, 1.0], 4, -1.0, ValueError),
    ]
    for i, rate in enumerate((0.05, 0.5, 2.0, 8.0)):
        n = int(rng.integers(20, 80))
        max_batch = int(rng.choice([2, 4, 8, 16, 32]))
        wait = float(rng.choice([0.5, 1.0, 2.0, 5.0, 10.0]))
        cases.append(case(f"random #{i + 1}: {n} Poisson arrivals at {rate * 1000:g}/s, max_batch {max_batch}, "
                          f"max_wait_ms {wait:g}", _poisson(rng, n, rate), max_batch, wait))
    return cases


register(Exercise(
    id="serving.micro_batches",
    reference=micro_batches,
    make_cases=_batch_cases,
    compare=_batches_reason,
    hint="Loop over the requests in arrival order. A batch opens at the arrival t0 of the first request not yet "
         "served: deadline = t0 + max_wait_ms. Add the next requests while the batch has fewer than max_batch and "
         "their arrival <= deadline. It leaves at the arrival of its max_batch-th request if it filled up, else at "
         "the deadline. Validate: max_batch >= 1, max_wait_ms >= 0, arrivals finite and non-decreasing.",
    section="micro-batching",
))

# ---- serving.latency_report -----------------------------------------------------------------------------

_KEYS = ("p50", "p95", "p99", "mean", "max")


def _report_reason(got: Any, expected: dict) -> str | None:
    if not isinstance(got, dict):
        return f"expected a dict with keys {', '.join(_KEYS)}, got {type(got).__name__}: {describe(got, 80)}"
    missing = [k for k in _KEYS if k not in got]
    if missing:
        return f"the report has no {', '.join(missing)} (keys needed: {', '.join(_KEYS)})"
    for key in _KEYS:
        value = got[key]
        if isinstance(value, bool) or not isinstance(value, float | int | np.floating | np.integer):
            return f"{key} should be a float, got {type(value).__name__}: {describe(value, 60)}"
        value = float(value)
        if not math.isclose(value, expected[key], rel_tol=1e-9, abs_tol=1e-9):
            extra = " (numpy.percentile's default, method='linear', interpolates between ranks)" \
                if key.startswith("p") else ""
            return f"{key}: expected {expected[key]!r}, got {value!r}{extra}"
    return None


def _report_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("one latency", ([12.5],)),
        Case("two latencies", ([10.0, 20.0],)),
        Case("all equal", ([4.0] * 7,)),
        Case("ten integers 1..10 (p95 interpolates: 9.55)", (list(range(1, 11)),)),
        Case("a zero latency is valid", ([0.0, 3.0, 5.0],)),
        Case("a numpy array", (np.array([5.0, 1.0, 9.0, 3.0, 7.0]),)),
        Case("a tuple with a tail", ((1.0,) * 98 + (100.0, 500.0),)),
        Case("empty", ([],), raises=ValueError),
        Case("a NaN", ([1.0, float("nan"), 2.0],), raises=ValueError),
        Case("a negative latency", ([1.0, -0.5],), raises=ValueError),
    ]
    for i, n in enumerate((int(rng.integers(3, 30)), int(rng.integers(30, 200)), int(rng.integers(200, 2000)))):
        values = rng.lognormal(mean=2.0, sigma=0.8, size=n).round(3).tolist()
        cases.append(Case(f"random #{i + 1}: {n} log-normal latencies", (values,)))
    return cases


register(Exercise(
    id="serving.latency_report",
    reference=latency_report,
    make_cases=_report_cases,
    compare=_report_reason,
    hint="x = np.asarray(latencies_ms, dtype=float); raise ValueError if x.size == 0, ~np.isfinite(x).all() or "
         "(x < 0).any(); p50, p95, p99 = np.percentile(x, [50, 95, 99]) (linear interpolation, numpy's default); "
         "return floats: {'p50': float(p50), ..., 'mean': float(x.mean()), 'max': float(x.max())}.",
    section="latency-percentiles",
))
