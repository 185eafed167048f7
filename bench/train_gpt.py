"""TinyGPT at nanoGPT's CPU shape: scripts/train_gpt.py's default path against a bare nanoGPT-style loop.

    python bench/train_gpt.py [--timing-iters 40] [--warmup-iters 5] [--repeats 5] [--iters 2000] [--out-dir DIR]
    bigtrain-lab bench train_gpt --repeats 5

At bigtrain_lab.recipes.NANOGPT_CPU_SHAPE and NANOGPT_CPU_BATCH_SIZE (fp32), measures:
  1. tokens/s of train_gpt.py's default path, exactly as the script builds it (its parser's defaults give
     the TrainConfig, the recipe and its schedule, then bigtrain_lab.train.train), of the same path with
     --compile flipped, and of bare_train_loop (nanoGPT's plain eager loop, loss.item() every step). The
     runs are interleaved, --repeats rounds in a rotating order, so that a drifting load hits all alike;
     each figure is the median step over all rounds, after --warmup-iters untimed steps. Step times come
     from the moments get_batch is called (once per step in every loop), so all are timed the same way.
     A compiled run's first step (compilation) is reported apart, with the steps it takes to pay back.
  2. the validation loss after --iters steps of the default path (evaluated on --eval-steps batches).
Saves OUT_DIR/train_gpt.json (default bench/results/) with the measurement conditions (bench/conditions.py).
"""

from __future__ import annotations

import os
import tempfile

# before torch is imported: compiled kernels go to a throwaway cache, not ~/.cache or the repo
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="bigtrain-inductor-"))

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

import torch  # noqa: E402
from conditions import Conditions, save_result  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from bigtrain_lab import seed_everything  # noqa: E402
from bigtrain_lab.data import CharCorpus, load_text_corpus  # noqa: E402
from bigtrain_lab.models import GPTConfig, TinyGPT  # noqa: E402
from bigtrain_lab.recipes import NANOGPT_CPU_BATCH_SIZE, NANOGPT_CPU_SHAPE, recipe_from_args  # noqa: E402
from bigtrain_lab.train import TrainResult, bare_train_loop, corpus_batches, train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHAPE, BATCH_SIZE = NANOGPT_CPU_SHAPE, NANOGPT_CPU_BATCH_SIZE


def load_train_gpt() -> ModuleType:
    """scripts/train_gpt.py as a module: its parser and config builders define "the default path"."""
    spec = importlib.util.spec_from_file_location("train_gpt_script", ROOT / "scripts" / "train_gpt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRAIN_GPT = load_train_gpt()


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


def run_kit(corpus: CharCorpus, flags: list[str], steps: int) -> tuple[StampedBatches, TrainResult]:
    """train_gpt.py's path with ``flags`` for ``steps`` steps: its TrainConfig, recipe and schedule."""
    args = TRAIN_GPT.build_parser().parse_args([*flags, "--steps", str(steps)])
    recipe = recipe_from_args(args, args.steps)
    config = TRAIN_GPT.train_config(args, recipe)
    model_config = TRAIN_GPT.model_config(args, corpus.vocab_size)
    if {k: getattr(model_config, k) for k in SHAPE} != SHAPE or config.batch_size != BATCH_SIZE:
        raise SystemExit("scripts/train_gpt.py's defaults are no longer nanoGPT's CPU shape: update this bench")
    torch._dynamo.reset()  # every compiled run compiles afresh (each repeat's model is a new one)
    seed_everything(args.seed)
    batches = StampedBatches(corpus_batches(corpus, args.block_size, args.batch_size, seed=args.seed))
    result = train(TinyGPT(model_config), batches, config, schedule=recipe.make_schedule(args.steps),
                   progress=False)
    return batches, result


def time_kit(flags: list[str]) -> Callable[[CharCorpus, int, int], tuple[list[float], float]]:
    def timed(corpus: CharCorpus, warmup: int, iters: int) -> tuple[list[float], float]:
        batches, result = run_kit(corpus, flags, warmup + iters + 1)  # +1: a step ends where the next starts
        return batches.step_ms(warmup), result.warmup_seconds
    return timed


def time_bare(corpus: CharCorpus, warmup: int, iters: int) -> tuple[list[float], float]:
    seed_everything(0)
    model = TinyGPT(GPTConfig(vocab_size=corpus.vocab_size, **SHAPE))
    batches = StampedBatches(corpus_batches(corpus, SHAPE["block_size"], BATCH_SIZE, seed=0))
    start = time.perf_counter()
    bare_train_loop(model, batches, warmup + iters + 1)
    return batches.step_ms(warmup), batches.stamps[1] - start


def compare(corpus: CharCorpus, args: argparse.Namespace) -> dict:
    """Interleaved rounds of the bare loop, the default path and the default path with --compile flipped."""
    default_compiles = TRAIN_GPT.build_parser().parse_args([]).compile
    variants = {"bare_loop": time_bare, "kit_default": time_kit([]),
                "kit_compile_flipped": time_kit(["--no-compile" if default_compiles else "--compile"])}
    step_ms: dict[str, list[float]] = {name: [] for name in variants}
    first_step_s: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in tqdm(range(args.repeats), desc="bare loop / default path / compile flipped"):
        names = list(variants)[round_ % 3:] + list(variants)[:round_ % 3]  # rotate the order
        for name in names:
            ms, first = variants[name](corpus, args.warmup_iters, args.timing_iters)
            step_ms[name] += ms
            first_step_s[name].append(round(first, 2))
    tokens_per_iter = BATCH_SIZE * SHAPE["block_size"]
    rows = {name: {"ms_per_iter": round(statistics.median(ms), 2),
                   "tokens_per_s": round(tokens_per_iter / statistics.median(ms) * 1000),
                   "first_step_seconds": first_step_s[name]} for name, ms in step_ms.items()}
    for name in ("kit_default", "kit_compile_flipped"):
        rows[name]["speedup_vs_bare_loop"] = round(rows["bare_loop"]["ms_per_iter"] / rows[name]["ms_per_iter"], 3)
    compiled, eager = (("kit_default", "kit_compile_flipped") if default_compiles
                       else ("kit_compile_flipped", "kit_default"))
    return {"iters_per_run": args.timing_iters, "warmup_iters": args.warmup_iters, "repeats": args.repeats,
            "default_compiles": default_compiles, **rows,
            "compile": compile_cost(first_step_s[compiled], first_step_s[eager],
                                    rows[eager]["ms_per_iter"] - rows[compiled]["ms_per_iter"])}


def compile_cost(compiled_first: list[float], eager_first: list[float], saved_ms: float) -> dict:
    """Compilation time (a compiled run's first step less an eager one's): in the first round with an empty
    kernel cache, as a first run of the script, and in the later rounds, with the kernels cached (as a
    script run again on the same machine); and the steps each takes to pay back."""
    eager = statistics.median(eager_first)
    cold = compiled_first[0] - eager
    cached = statistics.median(compiled_first[1:]) - eager if len(compiled_first) > 1 else None

    def pays_back(seconds: float | None) -> int | None:
        return round(1000 * seconds / saved_ms) if seconds is not None and saved_ms > 0 else None

    return {"cold_seconds": round(cold, 1), "cached_seconds": None if cached is None else round(cached, 1),
            "saved_ms_per_iter": round(saved_ms, 2), "pays_back_after_steps_cold": pays_back(cold),
            "pays_back_after_steps_cached": pays_back(cached)}


def validation_run(corpus: CharCorpus, args: argparse.Namespace) -> dict:
    """--iters steps of the default path, evaluated once at the end."""
    _, result = run_kit(corpus, ["--eval-every", str(args.iters), "--eval-steps", str(args.eval_steps),
                                 "--log-every", str(max(1, args.iters // 20))], args.iters)
    return {"iters": args.iters, "eval_steps": args.eval_steps, "val_loss": round(result.final_val_loss, 4),
            "train_loss_last_20": round(statistics.mean(result.losses[-20:]), 4),
            "initial_loss": round(result.losses[0], 4), "tokens_per_s": round(result.tokens_per_second),
            "first_step_seconds": round(result.warmup_seconds, 2), "wall_seconds": round(result.wall_time_s, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timing-iters", type=int, default=40, help="timed iterations per run")
    parser.add_argument("--warmup-iters", type=int, default=5, help="untimed iterations first")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds of the three loops")
    parser.add_argument("--iters", type=int, default=2000, help="iterations of the validation-loss run")
    parser.add_argument("--eval-steps", type=int, default=50, help="validation batches for the val loss")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where train_gpt.json goes")
    args = parser.parse_args(argv)

    corpus = load_text_corpus()
    flops_per_token = TinyGPT(GPTConfig(vocab_size=corpus.vocab_size, **SHAPE)).flops_per_token()
    print(f"{corpus}\nTinyGPT {SHAPE}, batch {BATCH_SIZE}: {BATCH_SIZE * SHAPE['block_size']} tokens/iter, "
          f"{flops_per_token / 1e6:.2f} MFLOP/token; torch {torch.__version__}, {torch.get_num_threads()} threads")
    conditions = Conditions.start(threads=torch.get_num_threads())
    comparison = compare(corpus, args)
    val_run = validation_run(corpus, args)
    conditions.finish()

    flipped = "eager" if comparison["default_compiles"] else "compiled"
    print(f"\n{'loop':<32}{'ms/iter':>9}{'tokens/s':>10}{'vs bare':>9}  first steps (s)")
    for name, label in (("bare_loop", "bare_train_loop"), ("kit_default", "train_gpt.py default path"),
                        ("kit_compile_flipped", f"default path, {flipped}")):
        row = comparison[name]
        ratio = f"{row['speedup_vs_bare_loop']:.3f}x" if "speedup_vs_bare_loop" in row else ""
        print(f"{label:<32}{row['ms_per_iter']:>9.1f}{row['tokens_per_s']:>10,}{ratio:>9}  {row['first_step_seconds']}")
    cost = comparison["compile"]
    print(f"(median of {args.repeats} interleaved runs x {args.timing_iters} iterations after {args.warmup_iters} "
          f"warm-up)\ntorch.compile: {cost['cold_seconds']} s cold, {cost['cached_seconds']} s with cached kernels; "
          f"saves {cost['saved_ms_per_iter']:.1f} ms/iter: pays back after {cost['pays_back_after_steps_cold']} "
          f"steps cold, {cost['pays_back_after_steps_cached']} cached (None: never)")
    print(f"\nafter {args.iters} iterations of the default path: val loss {val_run['val_loss']:.4f} (mean of "
          f"{args.eval_steps} batches), train loss {val_run['train_loss_last_20']:.4f} (last 20 steps), from "
          f"{val_run['initial_loss']:.4f}; {val_run['tokens_per_s']:,} tokens/s, {val_run['wall_seconds']:.1f} s")

    result = {"model": {**SHAPE, "batch_size": BATCH_SIZE, "vocab_size": corpus.vocab_size,
                        "tokens_per_iter": BATCH_SIZE * SHAPE["block_size"], "flops_per_token": flops_per_token,
                        "corpus_chars": len(corpus)},
              "comparison": comparison, "val_run": val_run}
    print(f"saved {save_result('train_gpt', result, conditions, out_dir=args.out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
