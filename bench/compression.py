"""Every compression method of lesson 06, measured on this CPU: size on disk, latency, accuracy.

    python bench/compression.py [--fast] [--out-dir DIR]
    bigtrain-lab bench compression

Trains the digits MLP 64-512-512-10 and applies each method to it (unstructured and structured pruning
with fine-tuning, int8 dynamic / weight-only / static via torchao, QAT, the deprecated torch.ao
quantize_dynamic, SVD), compares the CNN with a depthwise-separable CNN, times fp32 vs int8 on a
Linear-heavy MLP 512-2048-2048-10 (eager, and after torch.compile with freezing: torchao's CPU fast path),
runs the distillation experiment (200 labelled rows, the rest an unlabelled transfer set, 3 seeds) and
TinyGPT int8 and LoRA vs full fine-tuning. Latency:
median of repeated calls after a warm-up, ONE intra-op thread, batch 1 and 64. Saves
bench/results/compression.json (everything) and bench/results/compression_sweep.json (the sweep the
lesson's trade-off widget draws), each with the conditions it ran under (bench/conditions.py). Full size:
about 2-3 minutes on an idle 2-core CPU (the torch.compile rows compile for several seconds each;
``--no-compile`` leaves them out).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from conditions import Conditions, save_result

from bigtrain_lab.compress.experiments import Budget, run_all

ROOT = Path(__file__).resolve().parent.parent


def _fmt_bytes(n: float) -> str:
    return f"{n / 1024:,.1f} KiB"


def print_summary(results: dict) -> None:
    rows = results["summary"]
    print(f"\n{'method':<58} {'acc':>6} {'size':>12} {'params':>9} {'b1 ms':>7} {'b64 ms':>7}")
    for r in rows:
        print(f"{r['method']:<58} {r['accuracy']:6.3f} {_fmt_bytes(r['size_bytes']):>12} {r['params']:>9,} "
              f"{r['latency_ms_b1']:7.3f} {r['latency_ms_b64']:7.3f}  {r['note']}")
    print("\nLinear-heavy MLP 512-2048-2048-10 (1 thread):")
    for name, e in results["linear_heavy"].items():
        print(f"  {name:<38} {_fmt_bytes(e['size_bytes']):>12}  b1 {e['latency_ms_b1']:.3f} ms  "
              f"b64 {e['latency_ms_b64']:.3f} ms")
    kd = results["distillation"]
    print(f"\ndistillation: {kd['config']['n_labelled']} labelled rows, {kd['config']['n_unlabelled']} unlabelled "
          f"(transfer set), alpha {kd['config']['alpha']}, seeds {kd['config']['seeds']}")
    for method, e in kd["summary"].items():
        print(f"  {method:<14} accuracy {e['accuracy_mean']:.3f} +- {e['accuracy_std']:.3f}   "
              f"KL to teacher {e['kl_mean']:.3f} +- {e['kl_std']:.3f}")
    print("\nTinyGPT:", json.dumps(results["tinygpt"], indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="the small budget the tests use")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    args = parser.parse_args()
    budget = Budget.fast() if args.fast else Budget.full()
    if args.no_compile:
        budget.compile = False
    torch.set_num_threads(1)  # run_all times latency on one intra-op thread
    conditions = Conditions.start(threads=1)
    results = run_all(budget)
    conditions.finish()
    print_summary(results)
    # "command" stays at the top level too: the lesson and tests/test_widgets_compress.py print and check it
    head = {"command": conditions.command, "budget": {k: v for k, v in vars(budget).items() if k != "extra"}}
    path = save_result("compression", {**head, **results}, conditions, out_dir=args.out_dir)
    save_result("compression_sweep", {**head, **results["sweep"]}, conditions, out_dir=args.out_dir)
    print(f"\nsaved {path} and compression_sweep.json ({conditions.wall_seconds:.0f} s)")


if __name__ == "__main__":
    main()
