"""A scaling-law grid of TinyGPTs on the character corpus, for lesson 15's scaling-laws section.

    python bench/scaling_grid.py [--steps 150 300 600 1200] [--seed 0] [--lr LR] [--out-dir DIR]
    bigtrain-lab bench scaling_grid

Trains bigtrain_lab.estimate.scaling.train_grid: five TinyGPT shapes (about 20K to 820K parameters, counted as
TinyGPT.num_parameters()) x four token budgets (--steps steps of 16 x 64 characters each), every run with warmup
then cosine decay to the end of its own budget, all from seed --seed, one torch thread; each run's validation
loss is the mean cross-entropy (nats per character) on the same 16 fixed validation batches. Then fits
L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, approach 3) and saves OUT_DIR/scaling_grid.json
(default bench/results/) with the points, the fit and the measurement conditions (bench/conditions.py).
The losses depend on the seed, not on the machine's load; the seconds per run do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from conditions import Conditions, save_result

from bigtrain_lab.data import load_text_corpus
from bigtrain_lab.estimate.scaling import CHINCHILLA, compute_optimal, fit_scaling_law, train_grid

ROOT = Path(__file__).resolve().parent.parent
SIZES = ((1, 2, 32), (2, 2, 48), (3, 4, 64), (3, 4, 96), (4, 4, 128))  # (n_layer, n_head, n_embd)
BLOCK_SIZE, BATCH_SIZE, LR, EVAL_BATCHES = 64, 16, 3e-3, 16


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[150, 300, 600, 1200],
                        help="token budgets, in steps of batch 16 x 64 characters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=LR, help="peak learning rate of every run")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where scaling_grid.json goes")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    corpus = load_text_corpus()
    budgets = [s * BATCH_SIZE * BLOCK_SIZE for s in args.steps]
    print(f"{corpus}\n{len(SIZES)} shapes x {len(budgets)} budgets {budgets} tokens, seed {args.seed}")
    conditions = Conditions.start(threads=1)
    points = train_grid(SIZES, budgets, corpus=corpus, block_size=BLOCK_SIZE, batch_size=BATCH_SIZE, lr=args.lr,
                        seed=args.seed, eval_batches=EVAL_BATCHES)
    conditions.finish()
    fit = fit_scaling_law(points)

    print(f"\n{'shape':<14}{'N':>9}{'D':>10}{'loss':>8}{'fit':>8}{'s':>7}")
    for p, r in zip(points, fit.residuals, strict=True):
        print(f"{str(p.shape):<14}{p.n_params:>9,}{p.n_tokens:>10,}{p.loss:>8.4f}{r:>+8.4f}{p.seconds:>7.1f}")
    print(f"fit: {fit.law}; rms log residual {fit.rms_residual:.4f}\nChinchilla: {CHINCHILLA}")
    optima = {f"{c:.0e}": compute_optimal(fit.law, c) for c in (1e14, 1e15, 1e16)}
    for c, (n, d) in optima.items():
        print(f"C = {c}: N_opt {n:,.0f}, D_opt {d:,.0f} ({d / n:.1f} tokens per parameter)")

    result = {"setup": {"sizes": [list(s) for s in SIZES], "steps": args.steps, "token_budgets": budgets,
                        "block_size": BLOCK_SIZE, "batch_size": BATCH_SIZE, "lr": args.lr, "schedule":
                        "linear warmup (10 % of steps) then cosine to 0.1 x lr at each run's own last step",
                        "eval_batches": EVAL_BATCHES, "seed": args.seed, "vocab_size": corpus.vocab_size,
                        "corpus_chars": len(corpus), "n_params": "TinyGPT.num_parameters() (no position embeddings)"},
              "points": [p.to_json() for p in points],
              "fit": {"E": fit.law.E, "A": fit.law.A, "B": fit.law.B, "alpha": fit.law.alpha, "beta": fit.law.beta,
                      "residuals": [round(float(r), 5) for r in fit.residuals],
                      "rms_residual": round(fit.rms_residual, 5), "n_starts": fit.n_starts, "n_agree": fit.n_agree}}
    print(f"saved {save_result('scaling_grid', result, conditions, out_dir=args.out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
