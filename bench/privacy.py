"""Lesson 12's privacy figures at full size: DP-SGD test accuracy against epsilon over seeds (with the clipped-only
and non-private models), and the loss-threshold membership attack on every target of the lesson.

    python bench/privacy.py [--quick] [--seeds N] [--epsilons 0.5,1,2,4,8] [--epochs 5] [--mia-epochs 300]
                            [--out-dir DIR]
    bigtrain-lab bench privacy

The task and recipe are the lesson's (``bigtrain_lab.privacy.experiments``): softmax regression on sklearn's
digits (1,257 training examples), expected batch 256 by Poisson sampling, SGD lr 1 momentum 0.9, clipping norm 1,
delta 1e-5, the noise multiplier from opacus's RDP accountant for each target epsilon. The attack's targets train
on 200 members and are attacked against the other 1,057 training digits.

Saves bench/results/privacy.json: ``sweep`` (``run_sweep``'s schema, which the lesson's EpsilonDial reads),
``membership`` (per target: advantage, AUC, Yeom's advantage, train / test accuracy per seed, and for DP targets
epsilon and the bound), ``summary_lines`` for the lesson, and the conditions (bench/conditions.py). One thread.
Full size (5 seeds, 5 epsilons, 100 epochs for the overfit targets): a few minutes on an idle 2-core CPU.
``--quick``: 1 seed, epsilons 1 and 8, 1 epoch, 10 overfit epochs (a smoke test; never quote it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from conditions import Conditions, save_result
from tqdm.auto import tqdm

from bigtrain_lab.compress.digits import load_digits
from bigtrain_lab.privacy.experiments import eps_key, membership_models, membership_split, run_sweep

ROOT = Path(__file__).resolve().parent.parent
FULL_EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0)


def _ms(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def summary_lines(sweep: dict[str, Any], membership: dict[str, dict[str, list[float]]]) -> list[str]:
    """Accuracy per epsilon with its noise multiplier, then the attack's advantage per target."""
    lines = [f"digits, softmax regression, {sweep['steps']} DP-SGD steps at q = {sweep['sample_rate']:.3f}, delta "
             f"{sweep['delta']:g}, {len(sweep['seeds'])} seeds (test accuracy, mean ± std):"]
    for eps in sweep["epsilons"]:
        k = eps_key(eps)
        lines.append(f"  epsilon {k:>4}: noise multiplier {sweep['noise_multipliers'][k]:.3f}, "
                     f"accuracy {_ms(sweep['accuracy'][k])}")
    lines.append(f"  clipped, no noise: {_ms(sweep['clip_only_accuracy'])}; non-private: "
                 f"{_ms(sweep['nonprivate_accuracy'])}")
    mia = sweep["mia"]
    lines.append(f"membership attack, {mia['members']} members vs {mia['nonmembers']} non-members (best-threshold "
                 f"advantage, AUC; a coin: {mia['chance']:.3f}):")
    for name, runs in membership.items():
        bound = f", DP bound {np.mean(runs['bound']):.3f}" if "bound" in runs else ""
        lines.append(f"  {name:>18}: advantage {_ms(runs['advantage'])}, AUC {np.mean(runs['auc']):.3f}, "
                     f"test accuracy {np.mean(runs['test_accuracy']):.3f}{bound}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the smoke size (1 seed, eps 1 and 8, 1 epoch)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 5)")
    parser.add_argument("--epsilons", default=None, help="target epsilons, comma-separated (default 0.5,1,2,4,8)")
    parser.add_argument("--epochs", type=int, default=None, help="DP-SGD epochs on the full training set (default 5)")
    parser.add_argument("--mia-epochs", type=int, default=None, help="epochs of the overfit targets (default 100)")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where privacy.json goes")
    args = parser.parse_args()
    seeds = range(args.seeds or (1 if args.quick else 5))
    epsilons = ([float(e) for e in args.epsilons.split(",")] if args.epsilons
                else ([1.0, 8.0] if args.quick else list(FULL_EPSILONS)))
    epochs = args.epochs or (1 if args.quick else 5)
    mia_epochs = args.mia_epochs or (10 if args.quick else 100)
    torch.set_num_threads(1)
    conditions = Conditions.start(threads=1)
    sweep = run_sweep(epsilons, seeds, epochs=epochs)
    digits = load_digits()
    membership: dict[str, dict[str, list[float]]] = {}
    for seed in tqdm(seeds, desc="membership targets"):
        split = membership_split(digits, sweep["mia"]["members"], seed)
        for name, r in membership_models(digits, split, epochs=mia_epochs, epsilons=epsilons, seed=seed).items():
            entry = membership.setdefault(name, {})
            for key in ("advantage", "auc", "yeom_advantage", "train_accuracy", "test_accuracy", "epsilon", "bound",
                        "noise_multiplier"):
                if key in r:
                    entry.setdefault(key, []).append(r[key])
    conditions.finish()
    lines = summary_lines(sweep, membership)
    print("\n".join(lines))
    document = {"command": conditions.command, "sweep": sweep, "membership": membership,
                "mia_epochs": mia_epochs, "summary_lines": lines}
    path = save_result("privacy", document, conditions, out_dir=args.out_dir)
    print(f"saved {path} ({conditions.wall_seconds:.0f} s)")


if __name__ == "__main__":
    main()
