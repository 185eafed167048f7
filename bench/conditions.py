"""The conditions a bench measured under, recorded the same way by every bench (DESIGN.md, "Measured numbers").

    from conditions import Conditions, save_result      # a bench script's folder is on sys.path

    conditions = Conditions.start(threads=1)             # after setting threads, before measuring
    result = {...}                                       # measure
    save_result("NAME", result, conditions.finish())     # bench/results/NAME.json with "conditions"

A run is *loaded* when the 1-minute load average, before or after the measurement, exceeds the number of
logical cores: its figures are saved (with a loud warning) but ``bigtrain_lab.bench_results.read_bench``
refuses them. Run on its own (``python bench/conditions.py``), it prints this machine's conditions now:
whether it is idle enough to measure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bigtrain_lab.bench_results import write_json
from bigtrain_lab.conditions import Conditions, cpu_model, default_command, load_average

__all__ = ["Conditions", "RESULTS_DIR", "cpu_model", "default_command", "load_average", "save_result"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot save {type(obj).__name__} in a bench result")


def warning_line(name: str, conditions: Conditions) -> str:
    return (f"WARNING: LOADED MACHINE: load average {conditions.load_before} -> {conditions.load_after} on "
            f"{conditions.cores} cores ({conditions.workers} busy with this bench) while "
            f"measuring: {name}.json must not be quoted; re-run `{conditions.command}` on an idle machine")


def save_result(name: str, result: dict, conditions: Conditions, *, out_dir: str | Path | None = None) -> Path:
    """Write {**result, "conditions": conditions.as_dict()} to out_dir/NAME.json (default bench/results/),
    via a temporary file + rename; print a loud warning line when conditions.loaded."""
    if not conditions.finished:
        conditions.finish()
    folder = Path(out_dir) if out_dir is not None else RESULTS_DIR
    path = write_json(folder / f"{name}.json", {**result, "conditions": conditions.as_dict()}, default=_json_default)
    if conditions.loaded:
        print(warning_line(name, conditions), file=sys.stderr, flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    now = Conditions.start(command="python bench/conditions.py").finish()
    for key, value in now.as_dict().items():
        print(f"{key:14s} {value}")
    print("LOADED: wait for an idle machine before measuring" if now.loaded else "idle enough to measure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
