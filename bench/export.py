"""Lesson 13's inference engines on this CPU: eager PyTorch, torch.compile, onnxruntime fp32 and int8, torchao
int8 (eager and compiled with freezing), on the digits MLP 64-256-256-10; and the checkpoint formats.

    python bench/export.py [--quick] [--no-compile] [--repeat-s S] [--out-dir DIR]

One intra-op thread for every engine (torch and onnxruntime), batch 1 and 64; median latency of
``torch.utils.benchmark.Timer.blocked_autorange`` (at least ``--repeat-s`` seconds per cell, default 1),
the torch.compile rows' compile time (their first call at each batch size; inductor's on-disk caches
are disabled unless ``--warm-cache``, so it is a cold compile), size on disk, max |logit
difference| and argmax agreement with eager and accuracy on the 270 held-out digits
(``bigtrain_lab.deploy.latency_table``). Also ``checkpoint_formats`` (torch.save vs safetensors, file size
and load time). Saves bench/results/export.json with the conditions it ran under (bench/conditions.py).
Full size: about a minute on an idle 2-core CPU (compiling takes most of it). ``--quick``: the tests' size
(short timings, no torch.compile), for a smoke run into a temporary ``--out-dir``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

if "--warm-cache" not in sys.argv:  # before torch is imported: compile times are cold compiles
    os.environ["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
    warnings.filterwarnings("ignore", message="dynamo_pgo force disabled")  # what the line above asks for

import torch  # noqa: E402
from conditions import Conditions, save_result  # noqa: E402

from bigtrain_lab.deploy import checkpoint_formats, latency_table, train_digits_mlp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BATCH_SIZES = (1, 64)


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_table(rows: list[dict]) -> None:
    print(f"\n{'engine':<24} {'batch':>5} {'median ms':>10} {'compile s':>9} {'file KiB':>9} {'max|diff|':>10} "
          f"{'agree':>6} {'acc':>6}")
    for r in rows:
        size = None if r["file_bytes"] is None else r["file_bytes"] / 1024
        print(f"{r['engine']:<24} {r['batch_size']:>5} {_fmt(r['median_ms'], '10.4f')} "
              f"{_fmt(r['compile_s'], '9.2f')} {_fmt(size, '9.1f')} {_fmt(r['max_abs_diff'], '10.2e')} "
              f"{_fmt(r['argmax_agreement'], '6.3f')} {_fmt(r['accuracy'], '6.3f')}"
              + (f"  ERROR {r['error']}" if r["error"] else ""))


def summary_lines(rows: list[dict]) -> list[str]:
    """One line per engine for the lesson: latency at each batch size, size, agreement with eager, accuracy."""
    lines = []
    for engine in dict.fromkeys(r["engine"] for r in rows):
        mine = [r for r in rows if r["engine"] == engine]
        if mine[0]["error"]:
            lines.append(f"{engine}: did not run ({mine[0]['error'][:80]})")
            continue
        times = ", ".join(f"batch {r['batch_size']} {r['median_ms']:.3f} ms" for r in mine)
        compiled = [r["compile_s"] for r in mine if r["compile_s"] is not None]
        cold = f", first call (compiles) {compiled[0]:.1f} s" if compiled else ""
        lines.append(f"{engine}: {times}; {mine[0]['file_bytes'] / 1024:.0f} KiB; agrees with eager on "
                     f"{mine[0]['argmax_agreement']:.1%}, accuracy {mine[0]['accuracy']:.3f}{cold}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the tests' size: 0.02 s per cell, no torch.compile")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    parser.add_argument("--repeat-s", type=float, default=None,
                        help="minimum seconds of timed calls per engine and batch size (default 1; --quick 0.02)")
    parser.add_argument("--warm-cache", action="store_true",
                        help="let torch.compile reuse inductor's on-disk caches (default: off, so compile_s is a "
                             "cold compile; a warm cache cuts it several-fold)")
    parser.add_argument("--out-dir", "--out", default=str(ROOT / "bench" / "results"), help="where export.json goes")
    args = parser.parse_args()
    repeat_s = args.repeat_s or (0.02 if args.quick else 1.0)
    compile = not (args.quick or args.no_compile)
    torch.set_num_threads(1)
    model, data = train_digits_mlp()  # before the clock starts
    conditions = Conditions.start(threads=1)
    rows = latency_table(model, BATCH_SIZES, X_test=data.X_test, y_test=data.y_test, compile=compile,
                         repeat_s=repeat_s, threads=1)
    with tempfile.TemporaryDirectory(prefix="bigtrain-bench-export-") as tmp:
        formats = checkpoint_formats(model, tmp, repeat=5 if args.quick else 50)
    conditions.finish()
    print_table(rows)
    print("\ncheckpoint formats (MLP 64-256-256-10 state_dict):")
    for f in formats:
        print(f"  {f['format']:<36} {f['file_bytes']:>8} B  load {f['load_ms']:.3f} ms  ({f['reads']})")
    import onnx
    import onnxruntime
    import torchao

    result = {"command": conditions.command, "model": "MLP 64-256-256-10 on digits (train_digits_mlp)",
              "batch_sizes": list(BATCH_SIZES), "repeat_s": repeat_s, "compile": compile, "threads": 1,
              "inductor_caches": "warm allowed" if args.warm_cache else "disabled (cold compiles)",
              "versions": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                           "torchao": torchao.__version__},
              "rows": rows, "checkpoint_formats": formats, "summary_lines": summary_lines(rows)}
    path = save_result("export", result, conditions, out_dir=args.out_dir)
    print(f"saved {path} ({conditions.wall_seconds:.0f} s)")


if __name__ == "__main__":
    main()
