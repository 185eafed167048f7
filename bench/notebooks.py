"""Execute every lesson and solution notebook headless and record its wall-clock time.

    python bench/notebooks.py [--fast] [--only PATTERN] [--out-dir DIR]
    bigtrain-lab bench notebooks [--fast] [--only PATTERN]

Prints a table and saves bench/results/notebooks.json (--fast) or notebooks_full.json, with the conditions
it ran under (bench/conditions.py; torch threads: the kernels' default). The budget is 90 s per notebook on a
2-core CPU.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="set BIGTRAIN_LAB_FAST=1 as the tests do")
    parser.add_argument("--only", default="", help="only notebooks whose path contains this")
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where the JSON goes")
    args = parser.parse_args()
    if args.fast:
        os.environ["BIGTRAIN_LAB_FAST"] = "1"
    paths = [p for d in ("notebooks", "solutions", "exercises") for p in sorted((ROOT / d).glob("*.ipynb"))
             if args.only in str(p)]
    rows = []
    conditions = Conditions.start(workers=2)  # nbclient and the kernel
    for path in tqdm(paths, desc="notebooks"):
        seconds, status = run_notebook(path)
        rows.append({"notebook": str(path.relative_to(ROOT)), "seconds": round(seconds, 1), "status": status,
                     "within_budget": seconds <= BUDGET_S})
    for r in rows:
        print(f"{r['notebook']:<40} {r['seconds']:>6.1f} s  {r['status']}"
              + ("" if r["within_budget"] else f"  OVER the {BUDGET_S:g} s budget"))
    conditions.finish()
    name = "notebooks" if args.fast else "notebooks_full"
    result = {"fast": args.fast, "only": args.only or None, "rows": rows}
    print(f"saved {save_result(name, result, conditions, out_dir=args.out_dir)}")


if __name__ == "__main__":
    main()
