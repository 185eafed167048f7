"""TinyGPT at nanoGPT's CPU configuration for shakespeare-char, on the standard library corpus.

    python bench/train_gpt.py [--iters 2000] [--timing-iters 40] [--repeats 3] [--skip-compile]
    bigtrain-lab bench train_gpt --iters 300

Measures, with n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout 0:
  1. ms per iteration and tokens/s of bigtrain_lab.train.train: fp32 vs bf16 autocast, eager vs
     torch.compile (median over --timing-iters steps after --warmup-iters, compilation excluded);
  2. the loop's overhead: train() against bare_train_loop(), the plainest loop of the same model
     (interleaved runs, --repeats each, median step time);
  3. the validation loss after --iters iterations (nanoGPT's recipe: AdamW lr 1e-3 -> 1e-4 cosine,
     100 warm-up steps, beta2 0.99, weight decay 0.1, clip 1.0; fp32, eager).
Prints a table and saves bench/results/train_gpt.json. Step times come from the moments get_batch is
called (once per step in both loops), so both loops are timed the same way.
"""

from __future__ import annotations

import os
import tempfile

# before torch is imported: compiled kernels go to a throwaway cache, not ~/.cache or the repo
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="bigtrain-inductor-"))

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from bigtrain_lab import environment_report, seed_everything  # noqa: E402
from bigtrain_lab.data import load_text_corpus  # noqa: E402
from bigtrain_lab.models import GPTConfig, TinyGPT  # noqa: E402
from bigtrain_lab.recipes import NANOGPT_CPU_BATCH_SIZE, NANOGPT_CPU_SHAPE  # noqa: E402
from bigtrain_lab.train import (  # noqa: E402
    TrainConfig,
    bare_train_loop,
    corpus_batches,
    cosine_schedule,
    train,
)

ROOT = Path(__file__).resolve().parent.parent
SHAPE, BATCH_SIZE = NANOGPT_CPU_SHAPE, NANOGPT_CPU_BATCH_SIZE


class StampedBatches:
    """Wraps a get_batch and records when each training batch is asked for (= when each step starts)."""

    def __init__(self, get_batch):
        self.get_batch = get_batch
        self.generator = getattr(get_batch, "generator", None)
        self.stamps: list[float] = []

    def __call__(self, split, step):
        if split == "train":
            self.stamps.append(time.perf_counter())
        return self.get_batch(split, step)

    def step_ms(self, warmup: int) -> list[float]:
        return [1000 * (b - a) for a, b in zip(self.stamps[warmup:-1], self.stamps[warmup + 1:], strict=True)]


def fresh_model(vocab_size: int) -> TinyGPT:
    seed_everything(0)
    return TinyGPT(GPTConfig(vocab_size=vocab_size, **SHAPE))


def time_kit(corpus, precision: str, compile_: bool, warmup: int, iters: int) -> list[float]:
    model = fresh_model(corpus.vocab_size)
    batches = StampedBatches(corpus_batches(corpus, SHAPE["block_size"], BATCH_SIZE, seed=0))
    # +1: the last step's end is the next step's start
    config = TrainConfig(steps=warmup + iters + 1, batch_size=BATCH_SIZE, precision=precision,
                         compile=compile_, log_every=10**9)
    train(model, batches, config, progress=False)
    return batches.step_ms(warmup)


def time_bare(corpus, warmup: int, iters: int) -> list[float]:
    model = fresh_model(corpus.vocab_size)
    batches = StampedBatches(corpus_batches(corpus, SHAPE["block_size"], BATCH_SIZE, seed=0))
    bare_train_loop(model, batches, warmup + iters + 1)
    return batches.step_ms(warmup)


def time_variant(corpus, precision: str, compile_: bool, args: argparse.Namespace) -> dict:
    tokens_per_iter = BATCH_SIZE * SHAPE["block_size"]
    flops_per_iter = fresh_model(corpus.vocab_size).flops_per_token() * tokens_per_iter
    start = time.perf_counter()
    steps = time_kit(corpus, precision, compile_, args.warmup_iters, args.timing_iters)
    ms = statistics.median(steps)
    return {"precision": precision, "compile": compile_, "iters": len(steps), "ms_per_iter": round(ms, 2),
            "tokens_per_s": round(tokens_per_iter / ms * 1000),
            "achieved_gflops": round(flops_per_iter / ms / 1e6, 2),
            "run_seconds_incl_compile": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=2000, help="iterations of the validation-loss run")
    parser.add_argument("--timing-iters", type=int, default=40, help="timed iterations per variant")
    parser.add_argument("--warmup-iters", type=int, default=5, help="untimed iterations first")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each loop (overhead)")
    parser.add_argument("--eval-steps", type=int, default=50, help="validation batches for the val loss")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_gpt.json"))
    args = parser.parse_args()

    corpus = load_text_corpus()
    tokens_per_iter = BATCH_SIZE * SHAPE["block_size"]
    flops_per_token = fresh_model(corpus.vocab_size).flops_per_token()
    print(f"{corpus}\nTinyGPT {SHAPE}, batch {BATCH_SIZE}: {tokens_per_iter} tokens/iter, "
          f"{flops_per_token / 1e6:.2f} MFLOP/token; torch {torch.__version__}, {torch.get_num_threads()} threads")

    # 1. precision x compilation: the eager variants now, the compiled ones last (compilation leaves
    # worker processes behind that could disturb the other measurements)
    eager = [("fp32", False), ("bf16", False)]
    compiled = [] if args.skip_compile else [("fp32", True), ("bf16", True)]
    timing = [time_variant(corpus, p, c, args) for p, c in tqdm(eager, desc="eager fp32 / bf16")]

    # 2. the loop's overhead, runs interleaved so that drifts of a shared CPU hit both alike
    bare_ms, kit_ms = [], []
    for _ in tqdm(range(args.repeats), desc="kit loop vs bare loop"):
        bare_ms += time_bare(corpus, args.warmup_iters, args.timing_iters)
        kit_ms += time_kit(corpus, "fp32", False, args.warmup_iters, args.timing_iters)
    bare, kit = statistics.median(bare_ms), statistics.median(kit_ms)
    overhead = {"iters_per_run": args.timing_iters, "repeats": args.repeats, "bare_ms_per_iter": round(bare, 2),
                "kit_ms_per_iter": round(kit, 2), "overhead_pct": round(100 * (kit - bare) / bare, 1)}

    # 3. validation loss after --iters iterations
    model = fresh_model(corpus.vocab_size)
    batches = corpus_batches(corpus, SHAPE["block_size"], BATCH_SIZE, seed=0)
    config = TrainConfig(steps=args.iters, batch_size=BATCH_SIZE, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.99),
                         grad_clip=1.0, eval_every=args.iters, eval_steps=args.eval_steps,
                         log_every=max(1, args.iters // 20))
    result = train(model, batches, config, schedule=cosine_schedule(1e-3, 1e-4, min(100, args.iters // 10),
                                                                    args.iters))
    val_run = {"iters": args.iters, "eval_steps": args.eval_steps, "val_loss": round(result.final_val_loss, 4),
               "train_loss_last_20": round(statistics.mean(result.losses[-20:]), 4),
               "initial_loss": round(result.losses[0], 4),
               "tokens_per_s": round(result.tokens_per_second), "wall_seconds": round(result.wall_time_s, 1)}

    timing += [time_variant(corpus, p, c, args) for p, c in tqdm(compiled, desc="compiled fp32 / bf16")]
    base = timing[0]["ms_per_iter"]
    for row in timing:
        row["speedup_vs_fp32_eager"] = round(base / row["ms_per_iter"], 2)

    print(f"\n{'precision':<10}{'compile':<9}{'ms/iter':>9}{'tokens/s':>10}{'GFLOP/s':>9}{'speed-up':>10}"
          f"{'run s':>8}")
    for r in timing:
        print(f"{r['precision']:<10}{'yes' if r['compile'] else 'no':<9}{r['ms_per_iter']:>9.1f}"
              f"{r['tokens_per_s']:>10,}{r['achieved_gflops']:>9.1f}{r['speedup_vs_fp32_eager']:>9.2f}x"
              f"{r['run_seconds_incl_compile']:>8.1f}")
    print(f"(median of {args.timing_iters} iterations after {args.warmup_iters} warm-up; run s includes "
          f"compilation)")
    print(f"\nloop overhead: train() {kit:.1f} ms/iter vs bare_train_loop {bare:.1f} ms/iter -> "
          f"{overhead['overhead_pct']:+.1f} % ({args.repeats} interleaved runs x {args.timing_iters} iterations)")
    print(f"\nafter {args.iters} iterations (fp32, eager): val loss {val_run['val_loss']:.4f} "
          f"(mean of {args.eval_steps} batches), train loss {val_run['train_loss_last_20']:.4f} "
          f"(last 20 steps), from {val_run['initial_loss']:.4f}; {val_run['tokens_per_s']:,} tokens/s, "
          f"{val_run['wall_seconds']:.1f} s")

    env = environment_report()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"cpu": env.cpu, "cpu_count": env.cpu_count, "cpu_flags": env.cpu_flags,
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version(),
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "model": {**SHAPE, "batch_size": BATCH_SIZE, "vocab_size": corpus.vocab_size,
                  "tokens_per_iter": tokens_per_iter, "flops_per_token": flops_per_token,
                  "corpus_chars": len(corpus)},
        "timing": timing, "overhead": overhead, "val_run": val_run,
    }, indent=1) + "\n")
    print(f"saved {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
