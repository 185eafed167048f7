"""A load sweep over the server's batching knobs and arrival rates, and the view the lesson's widget draws.

Lesson 13 (``notebooks/13_serving.ipynb``). A sweep result is plain data (JSON-able)::

    {"configs": [{"max_batch": 1, "max_wait_ms": 0.0}, ...], "rates": [50.0, ...], "forward_ms": [fixed, per_item],
     "runs": {sweep_key(max_batch, max_wait_ms, rate): {"latencies_ms": [...], "report": {...},
              "batch_sizes": [...]}, ...}}

where a run's ``report`` is ``LoadResult.report()`` (p50 / p95 / p99 / mean / max, throughput, error rate, ...).
``explorer_data`` is the plain function behind ``bigtrain_lab.widgets.serving.BatchingExplorer``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["NO_BATCHING", "explorer_data", "rate_curve", "run_sweep", "sweep_key"]

#: The baseline every sweep holds: one request per forward pass.
NO_BATCHING: dict[str, float] = {"max_batch": 1, "max_wait_ms": 0.0}


def sweep_key(max_batch: int, max_wait_ms: float, rate: float) -> str:
    """The key of one run of a sweep: ``"max_batch|max_wait_ms|rate"``."""
    return f"{int(max_batch)}|{float(max_wait_ms):g}|{float(rate):g}"


def _batch_sizes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[int]:
    """The size of every batch the server ran between two ``/stats`` answers."""
    old = before.get("batch_size_counts", {})
    sizes: list[int] = []
    for size, count in after.get("batch_size_counts", {}).items():
        sizes += [int(size)] * (int(count) - int(old.get(size, 0)))
    return sorted(sizes)


def run_sweep(model: str | os.PathLike = "digits-mlp", *, configs: Iterable[Mapping[str, float]],
              rates: Sequence[float], n_requests: int, forward_ms: str | None = None, queue_size: int = 256,
              threads: int | None = None, warmup: int = 20, max_duration_s: float = 30.0, seed: int = 0,
              progress: bool = True) -> dict[str, Any]:
    """Load-test one server per batching config (``{"max_batch", "max_wait_ms"}``; no batching is always
    added) at every offered rate: a real ``bigtrain-lab serve`` subprocess on a loopback port (``threads``:
    its torch threads) and the open-loop generator, after ``warmup`` requests to each new server. Returns
    the sweep schema of this module (JSON-able); each run also records its ``mean_batch_size``, the requests
    the server ``rejected`` and the load generator's ``client_errors``."""
    from tqdm.auto import tqdm

    from bigtrain_lab.serving.loadgen import run_load
    from bigtrain_lab.serving.server import ServerProcess

    configs = [dict(NO_BATCHING)] + [dict(c) for c in configs if int(c["max_batch"]) != 1]
    runs: dict[str, Any] = {}
    bar = tqdm(total=len(configs) * len(rates), desc=f"load runs (forward {forward_ms or 'real'})",
               disable=not progress)
    for config in configs:
        batch, wait = int(config["max_batch"]), float(config["max_wait_ms"])
        with ServerProcess(model, max_batch=batch, max_wait_ms=wait, queue_size=queue_size, forward_ms=forward_ms,
                           threads=threads) as server:
            if warmup:
                run_load(server.url + "/predict", rate_per_s=100.0, n_requests=warmup, seed=seed + 99)
            for rate in rates:
                bar.set_postfix_str(f"batch {batch}, wait {wait:g}, {rate:g}/s")
                before = server.get("/stats")
                result = run_load(server.url + "/predict", rate_per_s=float(rate), n_requests=n_requests, seed=seed,
                                  max_duration_s=max_duration_s)
                after = server.get("/stats")
                sizes = _batch_sizes(before, after)
                runs[sweep_key(batch, wait, rate)] = {
                    "latencies_ms": np.round(result.latency_ms[result.ok], 3).tolist(),
                    "report": result.report(), "littles_law": result.littles_law(), "batch_sizes": sizes,
                    "mean_batch_size": float(np.mean(sizes)) if sizes else 0.0,
                    "rejected": after["rejected"] - before["rejected"], "client_errors": result.errors}
                bar.update()
    bar.close()
    return {"configs": [{"max_batch": int(c["max_batch"]), "max_wait_ms": float(c["max_wait_ms"])} for c in configs],
            "rates": [float(r) for r in rates], "forward_ms": forward_ms, "n_requests": n_requests, "runs": runs}


def _run(sweep: Mapping[str, Any], max_batch: int, max_wait_ms: float, rate: float) -> Mapping[str, Any]:
    key = sweep_key(max_batch, max_wait_ms, rate)
    try:
        return sweep["runs"][key]
    except KeyError:
        raise ValueError(f"the sweep has no run {key!r} (max_batch|max_wait_ms|rate); it has: "
                         f"{', '.join(sorted(sweep['runs']))}") from None


def rate_curve(sweep: Mapping[str, Any], max_batch: int, max_wait_ms: float, metric: str) -> list[float]:
    """``metric`` of the report (e.g. ``"p99"``, ``"throughput_per_s"``) at every rate of the sweep (NaN where
    a run served no request, so has no percentiles)."""
    values = [_run(sweep, max_batch, max_wait_ms, r)["report"][metric] for r in sweep["rates"]]
    return [math.nan if v is None else float(v) for v in values]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _histogram(a: Sequence[float], b: Sequence[float], bins: int = 30) -> dict[str, list[float]]:
    both = np.concatenate([np.asarray(a, float), np.asarray(b, float)])
    if both.size == 0:
        return {"centres": [], "counts": [], "baseline_counts": []}
    hi = float(np.percentile(both, 99.5)) if both.size > 10 else float(both.max())
    edges = np.linspace(0.0, max(hi, 1e-3), bins + 1)
    clip = edges[-1]
    counts = np.histogram(np.minimum(a, clip), edges)[0] if len(a) else np.zeros(bins)
    base = np.histogram(np.minimum(b, clip), edges)[0] if len(b) else np.zeros(bins)
    return {"centres": ((edges[:-1] + edges[1:]) / 2).round(3).tolist(), "counts": counts.tolist(),
            "baseline_counts": base.tolist()}


def explorer_data(sweep: Mapping[str, Any], *, max_batch: int, max_wait_ms: float, rate: float) -> dict[str, Any]:
    """What the batching explorer shows for one knob setting at one arrival rate, against no batching
    (``max_batch`` 1) at the same rate: both latency histograms, p50 / p99 and throughput vs rate for both,
    and a one-line HTML summary. ValueError naming the runs when the sweep has no such run."""
    run = _run(sweep, max_batch, max_wait_ms, rate)
    baseline = _run(sweep, 1, 0.0, rate)
    rep, base = run["report"], baseline["report"]
    sizes = run.get("batch_sizes") or [1]
    summary = (f"<b>max_batch {max_batch}, max_wait_ms {max_wait_ms:g} at {rate:g} req/s</b>: "
               f"p50 {_ms(rep['p50'])}, p99 {_ms(rep['p99'])}, {rep['throughput_per_s']:.0f} req/s served, "
               f"{rep['error_rate']:.1%} rejected, mean batch {float(np.mean(sizes)):.1f} &nbsp;|&nbsp; "
               f"no batching: p50 {_ms(base['p50'])}, p99 {_ms(base['p99'])}, "
               f"{base['throughput_per_s']:.0f} req/s, {base['error_rate']:.1%} rejected")
    return {
        "key": sweep_key(max_batch, max_wait_ms, rate),
        "hist": _histogram(run["latencies_ms"], baseline["latencies_ms"]),
        "rates": [float(r) for r in sweep["rates"]],
        "p50": rate_curve(sweep, max_batch, max_wait_ms, "p50"),
        "p99": rate_curve(sweep, max_batch, max_wait_ms, "p99"),
        "throughput": rate_curve(sweep, max_batch, max_wait_ms, "throughput_per_s"),
        "baseline_p99": rate_curve(sweep, 1, 0.0, "p99"),
        "baseline_throughput": rate_curve(sweep, 1, 0.0, "throughput_per_s"),
        "rate": float(rate),
        "summary": summary,
    }
