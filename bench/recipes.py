"""Which training recipe reaches a validation loss first? nanoGPT's defaults vs the kit's, same TinyGPT.

    python bench/recipes.py [--iters 2000] [--eval-every 100] [--recipes nanogpt kit ...] [--out-dir DIR]
    bigtrain-lab bench recipes --iters 2000

TinyGPT at nanoGPT's CPU shakespeare-char shape (bigtrain_lab.recipes.NANOGPT_CPU_SHAPE, batch
NANOGPT_CPU_BATCH_SIZE) on the standard-library corpus, same initialisation and the same batches for
every recipe; only the optimizer settings and the learning-rate schedule differ (bigtrain_lab.recipes,
each for a run of --iters steps). Every ``--eval-every`` steps the validation loss is measured on the same
``--eval-steps`` batches. The result: each recipe's validation curve, and the steps each needs to reach the
loss nanoGPT's recipe ends at. Saves OUT_DIR/recipes.json (default bench/results/) with the measurement
conditions (bench/conditions.py). Step counts do not depend on the machine's load; times do.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch
from conditions import Conditions, save_result
from tqdm.auto import tqdm

from bigtrain_lab import seed_everything
from bigtrain_lab.data import CharCorpus, load_text_corpus
from bigtrain_lab.models import GPTConfig, TinyGPT
from bigtrain_lab.recipes import NANOGPT_CPU_BATCH_SIZE, NANOGPT_CPU_SHAPE, RECIPES, resolve_recipe
from bigtrain_lab.train import TrainConfig, corpus_batches, train

ROOT = Path(__file__).resolve().parent.parent
SHAPE, BATCH_SIZE = NANOGPT_CPU_SHAPE, NANOGPT_CPU_BATCH_SIZE


def run_recipe(name: str, corpus: CharCorpus, iters: int, eval_every: int, eval_steps: int) -> dict:
    """Train a fresh TinyGPT with recipe ``name`` for ``iters`` steps; the validation curve and timing."""
    seed_everything(0)
    model = TinyGPT(GPTConfig(vocab_size=corpus.vocab_size, **SHAPE))
    chosen = resolve_recipe(name, iters)
    config = TrainConfig(steps=iters, batch_size=BATCH_SIZE, eval_every=eval_every, eval_steps=eval_steps,
                         log_every=max(1, iters // 20), **chosen.train_settings())
    start = time.perf_counter()
    result = train(model, corpus_batches(corpus, SHAPE["block_size"], BATCH_SIZE, seed=0), config,
                   schedule=chosen.make_schedule(iters), progress=False)
    return {"recipe": name, "settings": dataclasses.asdict(chosen),
            "val_curve": [[int(e["step"]), round(float(e["val_loss"]), 4)] for e in result.evals],
            "final_val_loss": round(result.final_val_loss, 4),
            "wall_seconds": round(time.perf_counter() - start, 1)}


def steps_to_reach(curve: list[list[float]], target: float) -> int | None:
    """The first evaluated step whose validation loss is <= target (None if never)."""
    return next((int(step) for step, loss in curve if loss <= target), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-steps", type=int, default=40)
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=["nanogpt", "kit"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where recipes.json goes")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = load_text_corpus()
    conditions = Conditions.start(threads=torch.get_num_threads())
    runs = [run_recipe(name, corpus, args.iters, args.eval_every, args.eval_steps)
            for name in tqdm(args.recipes, desc="recipes")]
    conditions.finish()

    reference = next((r for r in runs if r["recipe"] == "nanogpt"), runs[0])
    target = reference["final_val_loss"]
    print(f"\ntarget: the validation loss {reference['recipe']} reaches after {args.iters} steps = {target:.4f}")
    print(f"{'recipe':<12}{'final val':>10}{'steps to target':>17}{'wall s':>8}  settings")
    for r in runs:
        r["steps_to_target"] = steps_to_reach(r["val_curve"], target)
        reached = r["steps_to_target"] if r["steps_to_target"] is not None else "never"
        print(f"{r['recipe']:<12}{r['final_val_loss']:>10.4f}{reached!s:>17}{r['wall_seconds']:>8.1f}  "
              f"{r['settings']}")
    result = {"model": {**SHAPE, "batch_size": BATCH_SIZE}, "iters": args.iters, "eval_every": args.eval_every,
              "eval_steps": args.eval_steps, "target": target, "runs": runs}
    print(f"saved {save_result('recipes', result, conditions, out_dir=args.out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
