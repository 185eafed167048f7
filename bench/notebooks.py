"""Execute every lesson and solution notebook headless and record its wall-clock time.

    python bench/notebooks.py [--fast] [--only PATTERN] [--settle LOAD] [--out-dir DIR]
    bigtrain-lab bench notebooks [--fast] [--only PATTERN]

Prints a table and saves bench/results/notebooks.json (--fast) or notebooks_full.json, with the conditions
it ran under (bench/conditions.py; torch threads: the kernels' default). The budget is 90 s per notebook on a
2-core CPU.

The full run (without --fast) also records each lesson's full-run figures (bigtrain_lab.full_run, in
bench/results/full_runs/), with the load average when that lesson started: before each notebook it waits until
the 1-minute load average, raised by the notebook before, has fallen to --settle (default: half the cores),
so that no lesson's figures are marked loaded by the bench itself.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from conditions import Conditions, save_result
from nbclient import NotebookClient
from tqdm.auto import tqdm

from bigtrain_lab.conditions import load_average

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 90.0


def run_notebook(path: Path) -> tuple[float, str]:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        status = "ok"
    except Exception as exc:  # report, keep timing the others
        status = f"error: {type(exc).__name__}"
    return time.perf_counter() - start, status


def settle(load: float, most_seconds: float = 300.0) -> None:
    """Wait until the 1-minute load average is at most ``load``, or ``most_seconds`` have passed."""
    start = time.perf_counter()
    while (now := load_average()) is not None and now > load and time.perf_counter() - start < most_seconds:
        time.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="set BIGTRAIN_LAB_FAST=1 as the tests do")
    parser.add_argument("--only", default="", help="only notebooks whose path contains this")
    parser.add_argument("--settle", type=float, default=None,
                        help="wait for this 1-minute load average before each notebook (default: half the cores "
                             "in the full run, no wait with --fast)")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where the JSON goes")
    args = parser.parse_args()
    os.environ["BIGTRAIN_LAB_FAST"] = "1" if args.fast else "0"
    settle_load = args.settle if args.settle is not None else (None if args.fast else (os.cpu_count() or 2) / 2)
    paths = [p for d in ("notebooks", "solutions", "exercises") for p in sorted((ROOT / d).glob("*.ipynb"))
             if args.only in str(p)]
    rows = []
    conditions = Conditions.start(workers=2)  # nbclient and the kernel
    for path in tqdm(paths, desc="notebooks"):
        if settle_load is not None:
            settle(settle_load)
        seconds, status = run_notebook(path)
        rows.append({"notebook": str(path.relative_to(ROOT)), "seconds": round(seconds, 1), "status": status,
                     "within_budget": seconds <= BUDGET_S})
    for r in rows:
        print(f"{r['notebook']:<40} {r['seconds']:>6.1f} s  {r['status']}"
              + ("" if r["within_budget"] else f"  OVER the {BUDGET_S:g} s budget"))
    conditions.finish()
    name = "notebooks" if args.fast else "notebooks_full"
    result = {"fast": args.fast, "only": args.only or None, "settle_load": settle_load, "rows": rows}
    print(f"saved {save_result(name, result, conditions, out_dir=args.out_dir)}")


if __name__ == "__main__":
    main()
