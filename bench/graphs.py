"""Eager vs torch.compile vs torch.export: compile time and milliseconds per call, on CPU (or CUDA).

    python bench/graphs.py [--iters 50] [--threads N] [--skip-train] [--out-dir DIR]
    bigtrain-lab bench graphs --threads 1

Models: an MLP 64-256-256-10 on a batch of 256, and TinyGPT at nanoGPT's CPU configuration for
shakespeare-char (n_layer=4, n_head=4, n_embd=128, block_size=64, batch 12; vocabulary 222, the stdlib
corpus's size). For each:
  1. inference (no grad): eager, torch.compile (Inductor) and torch.export (the ExportedProgram's
     module, run by the FX interpreter): median ms per call after warm-up, and the max |diff| vs eager;
  2. compile time, i.e. the first call of the compiled model, in a FRESH process each time: once with an
     empty Inductor cache (cold) and once more with the cache the first one filled (warm);
  3. (TinyGPT, unless --skip-train) one training step, forward + backward + AdamW, eager vs compiled:
     median ms per step after warm-up, and the compiled model's first step.
Prints a table and saves bench/results/graphs.json with the conditions it ran under (bench/conditions.py:
machine, threads, load average before and after; timings on a loaded machine are not to be quoted).
"""

from __future__ import annotations

import os
import tempfile

# before torch is imported: compiled kernels go to a throwaway cache, not ~/.cache or the repo
CACHE_DIR = os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="bigtrain-inductor-"))

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from conditions import Conditions, save_result  # noqa: E402

from bigtrain_lab import seed_everything  # noqa: E402
from bigtrain_lab.graphs import run_modes, time_per_call  # noqa: E402
from bigtrain_lab.models import MLP, GPTConfig, TinyGPT  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 222


def build(name: str) -> tuple[torch.nn.Module, tuple]:
    seed_everything(0)
    if name == "mlp":
        return MLP(64, (256, 256), 10), (torch.randn(256, 64),)
    if name == "tinygpt":
        model = TinyGPT(GPTConfig(vocab_size=VOCAB, n_layer=4, n_head=4, n_embd=128, block_size=64))
        return model, (torch.randint(0, VOCAB, (12, 64)),)
    raise ValueError(f"unknown model {name!r}")


def first_compiled_call(name: str) -> float:
    """Seconds of torch.compile(model) + its first inference call, in this process."""
    model, args = build(name)
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        torch.compile(model)(*args)
    return time.perf_counter() - start


def compile_time_in_fresh_process(name: str, threads: int) -> float:
    """Run ``first_compiled_call`` in a new Python process sharing this run's Inductor cache."""
    out = subprocess.run([sys.executable, __file__, "--child-compile", name, "--threads", str(threads)],
                         capture_output=True, text=True, check=True, env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": CACHE_DIR})
    return float(out.stdout.strip().splitlines()[-1])


def _training_step(forward, optimizer: torch.optim.Optimizer, idx: torch.Tensor, targets: torch.Tensor):
    def step() -> None:
        _, loss = forward(idx, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def train_step_timing(iters: int) -> dict:
    """TinyGPT training step (forward, backward, AdamW step), eager vs compiled."""
    result = {}
    for mode in ("eager", "compile"):
        model, (idx,) = build("tinygpt")
        model.train()
        targets = torch.roll(idx, -1, dims=1)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        step = _training_step(torch.compile(model) if mode == "compile" else model, optimizer, idx, targets)
        torch._dynamo.reset()
        start = time.perf_counter()
        step()
        first = time.perf_counter() - start
        result[mode] = {"first_step_s": round(first, 3),
                        "ms_per_step": round(time_per_call(step, warmup=3, iters=iters), 3)}
    result["speedup"] = round(result["eager"]["ms_per_step"] / result["compile"]["ms_per_step"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=50, help="timed calls per mode")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch.set_num_threads")
    parser.add_argument("--skip-train", action="store_true", help="skip the training-step comparison")
    parser.add_argument("--child-compile", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where graphs.json goes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child_compile:
        print(first_compiled_call(args.child_compile))
        return

    conditions = Conditions.start(threads=args.threads)
    results: dict = {}
    for name in ("mlp", "tinygpt"):
        cold = compile_time_in_fresh_process(name, args.threads)
        warm = compile_time_in_fresh_process(name, args.threads)
        model, example = build(name)
        modes = run_modes(model, example, iters=args.iters)
        by_mode = {r.mode: {"ms_per_call": round(r.ms_per_call, 4), "first_call_s": round(r.first_call_s, 3),
                            "max_abs_diff": r.max_abs_diff} for r in modes}
        results[name] = {
            "inference": by_mode,
            "compile_first_call_s": {"cold_cache": round(cold, 3), "warm_cache": round(warm, 3)},
            "compile_speedup": round(by_mode["eager"]["ms_per_call"] / by_mode["compile"]["ms_per_call"], 3),
            "export_speedup": round(by_mode["eager"]["ms_per_call"] / by_mode["export"]["ms_per_call"], 3),
        }
        print(f"{name}: compile first call {cold:.1f} s (cold cache), {warm:.1f} s (warm cache)")
        for mode, r in by_mode.items():
            print(f"  {mode:8s} {r['ms_per_call']:9.3f} ms/call  (max |diff| vs eager {r['max_abs_diff']:.1e})")
        print(f"  compile speed-up {results[name]['compile_speedup']:.2f}x, export {results[name]['export_speedup']:.2f}x")
    if not args.skip_train:
        results["tinygpt_train_step"] = train_step_timing(max(10, args.iters // 2))
        t = results["tinygpt_train_step"]
        print(f"tinygpt training step: eager {t['eager']['ms_per_step']:.1f} ms, compiled {t['compile']['ms_per_step']:.1f} ms "
              f"({t['speedup']:.2f}x); compiled first step {t['compile']['first_step_s']:.1f} s")

    path = save_result("graphs", {"device": "cpu", "iters": args.iters, "results": results}, conditions.finish(),
                       out_dir=args.out_dir)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
