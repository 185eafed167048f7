"""The transfer learning curves of lesson 10 at full size: every strategy (scratch, linear probe, fine-tuning,
discriminative LRs, gradual unfreezing, LoRA) at every label budget, over seeds, from the digits 0-4 backbone
to the digits 5-9; then the same on shifted digits (every target image moved by up to 2 pixels) from the
``digits_0_4_shifted`` backbone.

    python bench/transfer.py [--quick] [--seeds N] [--budgets 1,2,5] [--steps N] [--out-dir DIR]

Saves bench/results/transfer.json: ``accuracy[strategy][budget index]`` = test accuracy per seed on the fixed
350-image test set (``bigtrain_lab.transfer.learning_curves``' result, which the lesson reads with
``curve_figure_data``), the same under ``shifted`` for the shifted digits, the pretraining recipes, and the conditions it ran under (bench/conditions.py). One
thread. Full size (6 strategies x 7 budgets x 8 seeds, 100 steps, twice): about 2.5 minutes on an idle 2-core CPU.
``--quick`` is the tests' size (2 strategies, 1 budget, 1 seed, a few steps, fast pretraining).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import torch
from conditions import Conditions, save_result
from tqdm.auto import tqdm

from bigtrain_lab.transfer import (
    MAX_SHIFT,
    STRATEGIES,
    curve_figure_data,
    learning_curves,
    pretrained_cnn,
    shift_images,
)
from bigtrain_lab.transfer.pretrain import cnn_recipe

ROOT = Path(__file__).resolve().parent.parent
FULL_BUDGETS = (1, 2, 5, 10, 20, 50, 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tests' size: scratch and probe, 1 budget, 1 seed")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per strategy and budget (default 8)")
    parser.add_argument("--budgets", default=None, help="labels per class, comma-separated (default 1,2,5,10,20,50,100)")
    parser.add_argument("--steps", type=int, default=None, help="AdamW steps per run (default 100, as the lesson)")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where transfer.json goes")
    args = parser.parse_args()
    strategies = ["scratch", "probe"] if args.quick else list(STRATEGIES)
    seeds = args.seeds or (1 if args.quick else 8)
    budgets = [int(b) for b in args.budgets.split(",")] if args.budgets else ([2] if args.quick else FULL_BUDGETS)
    steps = args.steps or (5 if args.quick else 100)
    fast = args.quick
    torch.set_num_threads(1)
    for recipe in ("digits_0_4", "digits_0_4_shifted"):
        pretrained_cnn(recipe, fast=fast)  # train (or verify) the cached backbones before the clock starts
    conditions = Conditions.start(threads=1)
    runs = {}
    for recipe, transform in (("digits_0_4", None),
                              ("digits_0_4_shifted", functools.partial(shift_images, max_shift=MAX_SHIFT, seed=1))):
        runs[recipe] = learning_curves(strategies, budgets, range(seeds), steps=steps, transform=transform,
                                       backbone=lambda recipe=recipe: pretrained_cnn(recipe, fast=fast),
                                       progress=lambda jobs, r=recipe: tqdm(jobs, desc=f"{r}: budget x seed x strategy"))
    conditions.finish()
    for recipe, results in runs.items():
        data = curve_figure_data(results)
        print(f"{recipe}: test accuracy, mean +- std over {seeds} seeds, per labels per class {budgets}:")
        for name, s in data["series"].items():
            print(f"  {name:15s} " + "  ".join(f"{m:.3f}+-{sd:.3f}" for m, sd in zip(s["mean"], s["std"], strict=True)))
    head = {"command": conditions.command, "strategy_descriptions": {k: STRATEGIES[k] for k in strategies},
            "pretraining": cnn_recipe("digits_0_4", fast),
            "shifted_pretraining": cnn_recipe("digits_0_4_shifted", fast), "max_shift": MAX_SHIFT}
    path = save_result("transfer", {**head, **runs["digits_0_4"], "shifted": runs["digits_0_4_shifted"]}, conditions,
                       out_dir=args.out_dir)
    print(f"saved {path} ({conditions.wall_seconds:.0f} s)")


if __name__ == "__main__":
    main()
