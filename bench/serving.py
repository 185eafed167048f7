"""Lesson 13's load sweep at full size: latency percentiles, throughput, errors, batch sizes and Little's law of
the kit's model server at every offered rate, without batching (max_batch 1) and with dynamic micro-batching
(max_batch 32, max_wait_ms 2 and 5); once with an artificial forward cost per call and once with the real model.

    python bench/serving.py [--quick] [--n N] [--rates 50,100,200,400,800] [--forward-ms 2,0.02] [--out-dir DIR]

Each config runs its own ``bigtrain-lab serve`` subprocess (one torch thread) on a loopback port; the open-loop
generator (``bigtrain_lab.serving.loadgen``, Poisson arrivals, seed 0) runs in this process, so the bench keeps
both cores busy. A warm-up of 20 requests precedes each server's runs.

Why ``--forward-ms 2,0.02`` (2 ms per call + 0.02 ms per request): the kit's MLP computes a batch in a few
microseconds, so batching could not show its point. A served network on an accelerator pays a fixed cost per
forward call (Python dispatch, a hundred-odd kernel launches of ~10 us each, host-device copies) of a few ms,
and little per extra sample until the device is full: batch 32 then costs 2.64 ms instead of 32 x 2.02 ms. The
no-batching server can serve at most ~1000 / 2.02 = 495 requests/s, less its HTTP work, so the rates 50 .. 800
cross its knee; the batching servers stay below theirs. The second sweep (real model only) shows what is left:
the HTTP and Python cost per request, where batching saves little.

Saves bench/results/serving.json: the main sweep (with the forward cost) at the top level in the schema of
``bigtrain_lab.serving.sweep`` (``configs``, ``rates``, ``forward_ms``, ``n_requests``, ``runs`` keyed by
``sweep_key``; each run holds the successful latencies, ``LoadResult.report()``, ``littles_law`` and the batch
sizes), the real-model sweep under ``real_model``, ``summary_lines`` for the lesson and the conditions
(bench/conditions.py). Full size: 2 sweeps x 3 configs x 5 rates x 400 requests, about 2.5 minutes on an idle
2-core CPU. ``--quick``: 2 rates, 40 requests (the smoke size).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
from conditions import Conditions, save_result

from bigtrain_lab.serving.servable import resolve_model
from bigtrain_lab.serving.sweep import NO_BATCHING, run_sweep, sweep_key

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = (dict(NO_BATCHING), {"max_batch": 32, "max_wait_ms": 2.0}, {"max_batch": 32, "max_wait_ms": 5.0})
FULL_RATES = (50.0, 100.0, 200.0, 400.0, 800.0)


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def summary_lines(result: dict[str, Any], title: str) -> list[str]:
    """One line per rate: p50 / p99, throughput, errors and mean batch of each config."""
    lines = [f"{title} ({result['n_requests']} requests per rate; p50 / p99 ms, served/s, errors, mean batch):"]
    for rate in result["rates"]:
        cells = []
        for c in result["configs"]:
            run = result["runs"][sweep_key(c["max_batch"], c["max_wait_ms"], rate)]
            rep = run["report"]
            name = "no batching" if c["max_batch"] == 1 else f"batch {c['max_batch']} wait {c['max_wait_ms']:g}"
            cells.append(f"{name}: {fmt(rep['p50'], '.1f')} / {fmt(rep['p99'], '.1f')}, "
                         f"{rep['throughput_per_s']:.0f}/s, {rep['error_rate']:.0%}, {run['mean_batch_size']:.1f}")
        lines.append(f"  {rate:5g}/s | " + " | ".join(cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the smoke size: 2 rates (50, 400), 40 requests each")
    parser.add_argument("--n", type=int, default=None, help="requests per rate (default 400)")
    parser.add_argument("--rates", default=None, help="offered rates in requests/s, comma-separated "
                                                      "(default 50,100,200,400,800)")
    parser.add_argument("--forward-ms", default="2,0.02",
                        help="artificial cost per forward call, FIXED[,PER_ITEM] ms, of the main sweep (default 2,0.02)")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where serving.json goes")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")] if args.rates else ([50.0, 400.0] if args.quick
                                                                          else list(FULL_RATES))
    n = args.n or (40 if args.quick else 400)
    os.environ["OMP_NUM_THREADS"] = "1"  # the servers' torch threads (they inherit the environment)
    torch.set_num_threads(1)
    model = resolve_model("digits-mlp")  # trained and cached before the clock starts
    conditions = Conditions.start(threads=1, workers=2)  # the server and the load generator
    main_sweep, real = (run_sweep(model, configs=CONFIGS, rates=rates, n_requests=n, forward_ms=forward_ms, threads=1)
                        for forward_ms in (args.forward_ms, None))
    conditions.finish()
    lines = (summary_lines(main_sweep, f"forward pass + {args.forward_ms} ms (fixed,per request) per call")
             + summary_lines(real, "the real model only"))
    print("\n".join(lines))
    document = {"command": conditions.command, "model": model.name, **main_sweep, "real_model": real,
                "summary_lines": lines}
    path = save_result("serving", document, conditions, out_dir=args.out_dir)
    print(f"saved {path} ({conditions.wall_seconds:.0f} s)")


if __name__ == "__main__":
    main()
