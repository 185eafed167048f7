"""The HPO race of lesson 11 at full size: grid vs random vs TPE vs successive halving vs Hyperband (optuna), each
repeated over seeds at one budget, on the lesson's task (MLP on the digits, four hyperparameters).

    python bench/hpo.py [--fast] [--seeds N] [--budget TRIALS] [--out-dir DIR]
    bigtrain-lab bench hpo

Every run gets ``budget`` trials' worth of epochs (a trial = 9 epochs; the pruners spend them on more, shorter
trials). Saves bench/results/hpo.json: per strategy the best validation accuracy at the budget (``mean``,
``std`` and ``final`` per seed), the test accuracy of the selected trial per seed, the trials started and the
best-so-far ``curves`` (one per seed, at budgets 1..N trials' epochs) that the lesson's HPORace widget draws,
with the conditions it ran under (bench/conditions.py). One thread. Full size (8 seeds, 60 trials): about
2-3 minutes on an idle 2-core CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from conditions import Conditions, save_result
from tqdm.auto import tqdm

from bigtrain_lab.hpo import STRATEGIES, DigitsTask, race

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="2 seeds, 8 trials (the tests' budget)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per strategy (default 8)")
    parser.add_argument("--budget", type=int, default=None, help="trials' worth of epochs per run (default 60)")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where hpo.json goes")
    args = parser.parse_args()
    seeds = args.seeds or (2 if args.fast else 8)
    budget = args.budget or (8 if args.fast else 60)
    torch.set_num_threads(1)
    conditions = Conditions.start(threads=1)
    task = DigitsTask(max_epochs=9)
    results = race(task, list(STRATEGIES), n_trials=budget, seeds=range(seeds),
                   progress=lambda jobs: tqdm(jobs, desc="strategy x seed"))
    conditions.finish()
    for entry in results["strategies"].values():
        del entry["records"]  # every trial of every run: the lesson needs only the curves
    print(f"best validation accuracy at {budget} trials' epochs ({budget * task.max_epochs} epochs), {seeds} seeds:")
    for name, entry in results["strategies"].items():
        print(f"  {name:10s} {entry['mean']:.4f} +- {entry['std']:.4f}   test of the selected trial "
              f"{np.mean(entry['test']):.4f}   trials started {np.mean(entry['trials']):.0f}")
    head = {"command": conditions.command, "strategy_descriptions": dict(STRATEGIES)}
    path = save_result("hpo", {**head, **results}, conditions, out_dir=args.out_dir)
    print(f"saved {path} ({conditions.wall_seconds:.0f} s)")


if __name__ == "__main__":
    main()
