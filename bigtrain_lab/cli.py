"""The ``bigtrain-lab`` command: lab | grade | progress | quiz | errata | build-exercises | curriculum | bench | serve."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def project_root() -> Path:
    """The checkout holding notebooks/ (the package's parent), else the current directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "notebooks").is_dir() else Path.cwd()


def _cmd_lab(args: argparse.Namespace) -> int:
    root = project_root()
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root}",
           f"--ServerApp.ip={args.ip}", f"--ServerApp.port={args.port}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if getattr(os, "geteuid", lambda: -1)() == 0:  # CI and containers run as root
        cmd.append("--allow-root")
    start = root / "notebooks" / "00_start_here.ipynb"
    if start.exists() and not args.no_browser:
        cmd.append(str(start.relative_to(root)))
    print("starting:", " ".join(cmd), flush=True)
    print("Jupyter prints the URL (with its token) below; Ctrl-C twice stops the server.", flush=True)
    if os.name == "posix":  # become the server: signals (Ctrl-C, SIGTERM) then reach Jupyter itself
        os.chdir(root)
        os.execv(sys.executable, cmd)
    try:
        return subprocess.call(cmd, cwd=root)
    except KeyboardInterrupt:
        return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    from bigtrain_lab.grading.kernel import Limits, sandbox_problem
    from bigtrain_lab.grading.notebook_grader import (
        class_summary,
        find_notebooks,
        format_table,
        grade_notebook,
    )
    from bigtrain_lab.grading.progress import record_reports

    notebooks = find_notebooks(args.paths)
    if not notebooks:
        print("no notebooks found in: " + ", ".join(args.paths), file=sys.stderr)
        return 2
    if args.sandbox:
        problem = sandbox_problem()
        if problem:
            print(f"--sandbox is not available here: {problem}", file=sys.stderr)
            return 2
        print("sandbox: each kernel runs under bubblewrap, without network, and can write only to its own "
              "scratch folder")
    else:
        print("no sandbox: each kernel runs in its own scratch folder with its own HOME, but with your user's "
              "rights (it could read or write your files, or use the network); use --sandbox for code you "
              "do not trust")
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb, output_bytes=int(args.output_mb * 1e6),
                    sandbox=args.sandbox)
    reports = []
    for i, path in enumerate(notebooks, start=1):
        print(f"[{i}/{len(notebooks)}] grading {path} ...", flush=True)
        report = grade_notebook(path, limits=limits, forbid_imports=not args.allow_imports)
        print(f"    {report.status} in {report.seconds:.1f} s" + (f": {report.message}" if report.message else ""),
              flush=True)
        reports.append(report)
    print()
    print(format_table(reports))
    if args.json:
        payload = {"notebooks": [r.to_dict() for r in reports], "passed": all(r.passed for r in reports),
                   "class_summary": class_summary(reports),
                   "limits": {"timeout_s": limits.timeout, "memory_mb": limits.memory_mb,
                              "output_bytes": limits.output_bytes, "sandbox": limits.sandbox}}
        Path(args.json).write_text(json.dumps(payload, indent=1), encoding="utf-8")
        print(f"JSON written to {args.json}")
    if not args.no_progress:
        record_reports(reports)
    return 0 if all(r.passed for r in reports) else 1


def _cmd_progress(args: argparse.Namespace) -> int:
    from bigtrain_lab.grading.progress import format_progress, load_progress, progress_file
    from bigtrain_lab.quiz.progress_view import format_topic_progress, topic_progress
    from bigtrain_lab.quiz.review import review_file

    path = progress_file()
    print(f"progress from {path}" + ("" if path.exists() else " (no grade run yet)"))
    try:
        progress = load_progress(path)
    except ValueError as exc:  # a corrupt file: say which, still show the rest
        print(f"error: {exc}", file=sys.stderr)
        progress = None
    print(format_progress(progress or {}))
    review = review_file()
    print(f"\nper topic (quiz schedule from {review}" + ("" if review.exists() else ", no quiz answered yet") + ")")
    report = topic_progress(progress=progress)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    print(format_topic_progress(report.rows))
    return 1 if progress is None or report.errors else 0


def _cmd_quiz(args: argparse.Namespace) -> int:
    from bigtrain_lab.quiz.bank import draw
    from bigtrain_lab.quiz.review import ReviewStore, drill
    from bigtrain_lab.quiz.terminal import run_drill

    try:
        plan = drill(args.topic, args.n, args.seed)
        items = plan.questions if args.seed is None else draw(args.topic, args.n, args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = None if args.no_record or plan.warning else ReviewStore()
    run_drill(items, args.lang, reminders=plan.reminders, store=store, warning=plan.warning)
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from bigtrain_lab.grading.build import build_exercises

    changed = build_exercises(args.solutions, args.exercises, check_only=args.check)
    if args.check:
        if changed:
            print("exercises/ is out of date with solutions/: " + ", ".join(map(str, changed)))
            print("run `bigtrain-lab build-exercises` and commit the result")
            return 1
        print("exercises/ is up to date")
        return 0
    print(f"wrote {len(changed)} notebook(s)" + "".join(f"\n  {p}" for p in changed))
    return 0


def _cmd_curriculum(args: argparse.Namespace) -> int:
    from bigtrain_lab import curriculum

    if not (args.write_readme or args.check):
        print(curriculum.readme_table(), end="")
        return 0
    readme = project_root() / "README.md"
    text = readme.read_text(encoding="utf-8")
    try:
        wanted = curriculum.with_readme_section(text)
    except ValueError as exc:
        print(f"{readme}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if wanted != text:
            print(f"{readme}: the curriculum section differs from bigtrain_lab/curriculum.py; "
                  "run `bigtrain-lab curriculum --write-readme`", file=sys.stderr)
            return 1
        print(f"{readme}: the curriculum section is up to date")
        return 0
    if wanted != text:
        readme.write_text(wanted, encoding="utf-8")
        print(f"rewrote the curriculum section of {readme}")
    else:
        print(f"{readme}: already up to date")
    return 0


def _cmd_errata(args: argparse.Namespace) -> int:
    from bigtrain_lab.quiz.errata import ErrataError, errata_rows, format_errata, load_errata

    try:
        errata = load_errata(args.file)
    except ErrataError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(errata_rows(errata), indent=1, ensure_ascii=False))
    else:
        print(format_errata(errata))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    bench_dir = project_root() / "bench"
    available = sorted(p.stem for p in bench_dir.glob("*.py") if not p.name.startswith("_"))
    if args.name is None:
        print("available benchmarks: " + (", ".join(available) or "none"))
        print("run one with: bigtrain-lab bench NAME [args...]")
        return 0
    if args.name not in available:
        print(f"unknown benchmark {args.name!r}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(bench_dir / f"{args.name}.py"), *args.rest],
                           cwd=project_root())


def _cmd_serve(args: argparse.Namespace) -> int:
    from bigtrain_lab.serving.server import as_servable, serve

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        servable = as_servable(args.model, args.forward_ms)
        serve(servable, host=args.host, port=args.port, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
              queue_size=args.queue_size, blocking=args.blocking, announce=lambda line: print(line, flush=True))
    except (ValueError, FileNotFoundError) as why:
        print(f"bigtrain-lab serve: {why}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bigtrain-lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", help="start JupyterLab on the curriculum")
    lab.add_argument("--no-browser", action="store_true", help="headless: print the URL and keep serving")
    lab.add_argument("--port", type=int, default=8888)
    lab.add_argument("--ip", default="127.0.0.1")
    lab.set_defaults(func=_cmd_lab)

    grade = sub.add_parser("grade", help="execute notebooks in fresh kernels and grade their checks")
    grade.add_argument("paths", nargs="+", help="notebooks or folders of notebooks")
    grade.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    grade.add_argument("--timeout", type=float, default=600.0, metavar="S",
                       help="time limit for each notebook in seconds (default 600)")
    grade.add_argument("--memory-mb", type=int, default=4096, metavar="MB",
                       help="stop a kernel whose processes use more resident memory than this (default 4096)")
    grade.add_argument("--output-mb", type=float, default=2.0, metavar="MB",
                       help="stop a notebook that prints more than this (default 2)")
    grade.add_argument("--sandbox", action="store_true",
                       help="run each kernel under bubblewrap: no network, file system read-only outside its "
                            "scratch folder (refused where bubblewrap cannot run)")
    grade.add_argument("--allow-imports", action="store_true",
                       help="do not fail exercises whose graded cells import the library that is the answer "
                            "(e.g. sklearn.metrics for the metrics exercises)")
    grade.add_argument("--no-progress", action="store_true", help="do not record results for `progress`")
    grade.set_defaults(func=_cmd_grade)

    prog = sub.add_parser("progress", help="show exercises passed, quiz accuracy and cards due, per topic")
    prog.set_defaults(func=_cmd_progress)

    drill = sub.add_parser("quiz", help="drill interview questions in the terminal (due cards first)")
    drill.add_argument("--topic", help="one topic, e.g. metrics (default: all)")
    drill.add_argument("--n", type=int, default=10, help="how many questions (default 10)")
    drill.add_argument("--lang", choices=("en", "zh"), default="en")
    drill.add_argument("--seed", type=int, help="a repeatable random draw instead of the schedule's order")
    drill.add_argument("--no-record", action="store_true", help="do not update the review schedule")
    drill.set_defaults(func=_cmd_quiz)

    errata = sub.add_parser("errata", help="list the circulating wrong answers and the lesson section that runs each")
    errata.add_argument("--json", action="store_true", help="print the index as JSON")
    errata.add_argument("--file", help=argparse.SUPPRESS)  # another errata.yaml (the tests' toy files)
    errata.set_defaults(func=_cmd_errata)

    build = sub.add_parser("build-exercises", help="generate exercises/ from solutions/")
    build.add_argument("--solutions", default=str(project_root() / "solutions"))
    build.add_argument("--exercises", default=str(project_root() / "exercises"))
    build.add_argument("--check", action="store_true", help="only report whether exercises/ is up to date")
    build.set_defaults(func=_cmd_build)

    cur = sub.add_parser("curriculum", help="print the curriculum table, or write it into README.md")
    mode = cur.add_mutually_exclusive_group()
    mode.add_argument("--write-readme", action="store_true", help="rewrite README.md's curriculum section")
    mode.add_argument("--check", action="store_true", help="exit 1 when README.md's section is out of date")
    cur.set_defaults(func=_cmd_curriculum)

    bench = sub.add_parser("bench", help="list or run a benchmark from bench/")
    bench.add_argument("name", nargs="?")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=_cmd_bench)

    srv = sub.add_parser("serve", help="serve a model over HTTP with dynamic micro-batching (lesson 13)")
    srv.add_argument("model", help="a built-in name (digits-mlp) or a .safetensors file made by save_servable")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--max-batch", type=int, default=32, help="largest micro-batch; 1 = no batching (default 32)")
    srv.add_argument("--max-wait-ms", type=float, default=5.0,
                     help="how long a batch waits for more requests after its first (default 5)")
    srv.add_argument("--queue-size", type=int, default=256,
                     help="requests that may wait; more get 503 with Retry-After (default 256)")
    srv.add_argument("--forward-ms", metavar="FIXED[,PER_ITEM]",
                     help="add an artificial cost to every forward pass, e.g. 2,0.02 (default: the real model only)")
    srv.add_argument("--threads", type=int, help="torch intra-op threads for the forward pass (default: torch's)")
    srv.add_argument("--blocking", action="store_true",
                     help="serve the wrong way instead: the forward pass inside async def, blocking the event loop")
    srv.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bigtrain-lab`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
