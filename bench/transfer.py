"""The transfer learning curves of lesson 10 at full size: every strategy (scratch, linear probe, fine-tuning,
discriminative LRs, gradual unfreezing, LoRA) at every label budget, over seeds, from the digits 0-4 backbone
to the digits 5-9.

    python bench/transfer.py [--quick] [--seeds N] [--budgets 1,2,5] [--steps N] [--out-dir DIR]

Saves bench/results/transfer.json: ``accuracy[strategy][budget index]`` = test accuracy per seed on the fixed
350-image test set (``bigtrain_lab.transfer.learning_curves``' result, which the lesson reads with
``curve_figure_data``), the pretraining recipe, and the conditions it ran under (bench/conditions.py). One
thread. Full size (6 strategies x 7 budgets x 8 seeds, 100 steps): about 2 minutes on an idle 2-core CPU.
``--quick`` is the tests' size (2 strategies, 1 budget, 1 seed, a few steps, fast pretraining).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from conditions import Conditions, save_result
from tqdm.auto import tqdm

from bigtrain_lab.transfer import STRATEGIES, curve_figure_data, learning_curves, pretrained_cnn
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
    pretrained_cnn("digits_0_4", fast=fast)  # train (or verify) the cached backbone before the clock starts
    conditions = Conditions.start(threads=1)
    results = learning_curves(strategies, budgets, range(seeds), steps=steps,
                              backbone=lambda: pretrained_cnn("digits_0_4", fast=fast),
                              progress=lambda jobs: tqdm(jobs, desc="budget x seed x strategy"))
    conditions.finish()
    data = curve_figure_data(results)
    print(f"test accuracy, mean +- std over {seeds} seeds, per labels per class {budgets}:")
    for name, s in data["series"].items():
        print(f"  {name:15s} " + "  ".join(f"{m:.3f}+-{sd:.3f}" for m, sd in zip(s["mean"], s["std"], strict=True)))
    head = {"command": conditions.command, "strategy_descriptions": {k: STRATEGIES[k] for k in strategies},
            "pretraining": cnn_recipe("digits_0_4", fast)}
    path = save_result("transfer", {**head, **results}, conditions, out_dir=args.out_dir)
    print(f"saved {path} ({conditions.wall_seconds:.0f} s)")


if __name__ == "__main__":
    main()
