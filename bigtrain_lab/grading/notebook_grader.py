"""``bigtrain-lab grade``: run each notebook in a fresh, confined kernel; the grader computes every verdict.

For each notebook: the ``check("topic.name", fn)`` calls are found by parsing its code (``ast``); the
notebook runs in its own kernel (scratch folder and HOME, time / memory / output limits, optionally a
bubblewrap sandbox: ``kernel.py``); then, for each exercise, this process draws the cases with a secret
seed, computes the expected values with the reference, and asks the kernel only for ``fn``'s outputs on
them (``remote.py``: data-only messages). What the notebook printed, wrote or patched in its kernel
(a forged result, a replaced ``check``, a patched numpy) changes nothing here: a notebook earns exactly
what its function earns. A notebook that is not JSON, fails, hits a limit or has no checks gets a clear
row and the run goes on with the next notebook.
"""

from __future__ import annotations

import ast
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from bigtrain_lab.grading.check import CallerLost, run_cases
from bigtrain_lab.grading.imports import forbidden_use, parse_cell
from bigtrain_lab.grading.kernel import GradingClient, Limits, SandboxUnavailable, confined_kernel, kernel_log
from bigtrain_lab.grading.registry import UnknownExerciseError, get_exercise
from bigtrain_lab.grading.remote import CaseContext, KernelLost, KernelSession, RemoteFunction, RemoteTimeout
from bigtrain_lab.grading.sandbox import CallOutcome

DEFAULT_TIMEOUT = 600.0


@dataclass
class NotebookReport:
    """What grading one notebook gave: its status, every exercise's result, and errors."""

    path: str
    # "ok" | "cell error" | "timeout" | "memory limit" | "output limit" | "failed to execute" | "unreadable"
    # | "no checks"
    status: str
    message: str = ""
    seconds: float = 0.0
    checks: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "ok" and bool(self.checks) and all(c["passed"] for c in self.checks)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


# ---- which function each exercise grades ------------------------------------------------------------

def _is_check(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "check") or (
        isinstance(func, ast.Attribute) and func.attr == "check")


def checked_functions(nb: nbformat.NotebookNode) -> dict[str, str]:
    """Exercise id -> the source of the expression passed to ``check`` (the last call per id wins), in
    order of first appearance. Parsed with ``ast``: comments, strings and ``check`` shadowed by a
    variable of another name are not mistaken for calls."""
    found: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or (parsed := parse_cell(cell.source)) is None:
            continue
        source, tree = parsed
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _is_check(node.func)) or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            candidate = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "candidate"), None)
            if candidate is None:
                continue
            found[first.value] = ast.get_source_segment(source, candidate) or ast.unparse(candidate)
    return found


def expected_exercises(nb: nbformat.NotebookNode) -> list[str]:
    """Exercise ids a notebook calls ``check`` on, in order of first appearance."""
    return list(checked_functions(nb))


# ---- running ---------------------------------------------------------------------------------------

def _first_error(nb: nbformat.NotebookNode) -> str:
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {index + 1} raised {out.get('ename')}: {out.get('evalue')}"
    return ""


def _remote_call(fn: Any, args: tuple, kwargs: dict, limit: float) -> CallOutcome:  # noqa: ARG001
    """A ``Caller`` for a candidate in a kernel: each request carries its own time limit."""
    start = time.perf_counter()
    try:
        return CallOutcome(value=fn(*args, **kwargs), seconds=time.perf_counter() - start)
    except RemoteTimeout:
        return CallOutcome(timed_out=True, seconds=time.perf_counter() - start)
    except CallerLost:  # the kernel is gone (KernelLost): run_cases reports it
        raise
    except Exception as exc:  # the candidate's exception, raised again here (or a runner's)
        return CallOutcome(error=exc, error_location=getattr(exc, "bigtrain_where", ""),
                           seconds=time.perf_counter() - start)


def grade_in_kernel(exercise_id: str, expression: str, session: KernelSession, seed: int) -> dict:
    """One exercise's row: the cases drawn and judged here, the outputs taken from the kernel."""
    exercise = get_exercise(exercise_id)
    candidate = RemoteFunction(session, expression, exercise.time_limit)

    def before_case(index: int, case: Any) -> None:
        session.context = CaseContext(exercise_id, seed, index, case)

    result = run_cases(exercise, candidate, seed, exercise.time_limit, _remote_call, before_case)
    failure = result.first_failure
    return {"exercise_id": exercise_id, "passed": result.passed, "score": result.score,
            "feedback": result.feedback, "first_failing_case": failure.label if failure else None}


def _missing(exercise_id: str, why: str) -> dict:
    return {"exercise_id": exercise_id, "passed": False, "score": 0.0, "feedback": why,
            "first_failing_case": None}


def _run_notebook(client: GradingClient, nb: nbformat.NotebookNode) -> tuple[str, str]:
    """Execute every cell; (status, message)."""
    try:
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
            if client.stopped is not None:
                break
    except CellTimeoutError:
        client.stop("time", f"stopped after the time limit of {client.limits.timeout:g} s")
    except DeadKernelError as exc:
        if client.stopped is None:
            return "failed to execute", f"the kernel died ({exc})"[:300]
    if client.stopped is not None:
        limit, message = client.stopped
        return {"time": "timeout", "memory": "memory limit", "output": "output limit"}[limit], message
    error = _first_error(nb)
    return ("cell error", error) if error else ("ok", "")


def grade_notebook(path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT, limits: Limits | None = None,
                   kernel_name: str = "python3", seed: int | None = None,
                   forbid_imports: bool = True) -> NotebookReport:
    """Execute one notebook in a fresh, confined kernel and grade each exercise it checks.

    ``limits`` (default: ``Limits(timeout=timeout)``) bounds the run; ``seed`` fixes the cases (default:
    a secret one per exercise, never sent to the kernel before its notebook has run); with
    ``forbid_imports`` an exercise whose graded cells use a forbidden import (``imports.py``) fails with
    the reason.
    """
    path = Path(path)
    limits = limits or Limits(timeout=timeout)
    start = time.perf_counter()
    try:
        nb = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        return NotebookReport(str(path), "unreadable", "file not found")
    except Exception as exc:  # not JSON, not a notebook
        return NotebookReport(str(path), "unreadable", f"not a valid notebook ({type(exc).__name__}: {exc})"[:300])
    wanted = checked_functions(nb)
    if not wanted:
        return NotebookReport(str(path), "no checks",
                              "no `check(\"topic.name\", ...)` call found: nothing to grade")

    sources = [c.source if c.cell_type == "code" else "" for c in nb.cells]
    breaches = {i: why for i, e in wanted.items()
                if forbid_imports and (why := forbidden_use(sources, e, i))}
    # an exercise whose graded cells break the import policy is not run at all: its row says why
    checks = [{"exercise_id": i, "passed": False, "score": 0.0, "first_failing_case": "forbidden import",
               "feedback": f"NOT ACCEPTED {i}: a graded cell uses a forbidden import: {why}. Write it "
                           "yourself; the library is the reference it is compared with."}
              for i, why in breaches.items()]
    to_grade = {i: e for i, e in wanted.items() if i not in breaches}
    with tempfile.TemporaryDirectory(prefix="bigtrain-grade-") as tmp:
        try:
            with confined_kernel(nb, Path(tmp), limits, kernel_name) as client:
                status, message = _run_notebook(client, nb)
                if client.stopped is None and to_grade:
                    checks += _grade_all(client, to_grade, Path(tmp) / "work", seed)
        except SandboxUnavailable:
            raise
        except Exception as exc:  # the kernel could not start, or died in a way nbclient reports oddly
            status, message = "failed to execute", f"{type(exc).__name__}: {exc}"[:300]
        if status == "failed to execute" and (log := kernel_log(Path(tmp))):
            message += f"; the kernel said: {log}"
    graded = {c["exercise_id"] for c in checks}
    never = ("this check never ran: the kernel was stopped" if status not in ("ok", "cell error")
             else "this check was not graded")
    checks += [_missing(i, f"{never} ({status}: {message})") for i in wanted if i not in graded]
    order = list(wanted)
    checks.sort(key=lambda c: order.index(c["exercise_id"]))
    return NotebookReport(str(path), status, message, time.perf_counter() - start, checks)


def _grade_all(client: GradingClient, wanted: dict[str, str], workdir: Path, seed: int | None) -> list[dict]:
    """A row per exercise, graded in the kernel; a kernel lost on the way fails the rest (``run_cases``
    reports it on the case where it happened)."""
    session = KernelSession(client.run_code, workdir)
    try:
        session.install()
    except (KernelLost, DeadKernelError) as exc:
        return [_missing(i, f"not graded: {exc}") for i in wanted]
    rows = []
    for exercise_id, expression in wanted.items():
        try:
            rows.append(grade_in_kernel(exercise_id, expression, session,
                                        secrets.randbits(31) if seed is None else seed))
        except UnknownExerciseError as exc:
            rows.append(_missing(exercise_id, str(exc)))
    return rows


def class_summary(reports: list[NotebookReport]) -> dict[str, dict]:
    """Per exercise: notebooks graded, how many passed, and the most common first failing case."""
    summary: dict[str, dict] = {}
    for report in reports:
        for c in report.checks:
            entry = summary.setdefault(c["exercise_id"], {"notebooks": 0, "passed": 0, "failing": Counter()})
            entry["notebooks"] += 1
            entry["passed"] += bool(c["passed"])
            if not c["passed"] and c.get("first_failing_case"):
                entry["failing"][c["first_failing_case"]] += 1
    out = {}
    for exercise_id, entry in sorted(summary.items()):
        common = entry["failing"].most_common(1)
        out[exercise_id] = {"notebooks": entry["notebooks"], "passed": entry["passed"],
                            "most_common_first_failure": common[0][0] if common else None,
                            "most_common_first_failure_count": common[0][1] if common else 0}
    return out


def find_notebooks(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand directories into the notebooks they hold (sorted, checkpoints skipped)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        else:
            found.append(p)
    return found


def _short_path(path: str) -> str:
    """The path relative to the working directory when it lies under it (shorter, still unique)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def format_table(reports: list[NotebookReport]) -> str:
    """A plain-text table: one row per exercise, one row per notebook-level problem."""
    rows = [("notebook", "exercise", "passed", "score")]
    problems = []
    for rep in reports:
        name = _short_path(rep.path)
        for c in rep.checks:
            rows.append((name, c["exercise_id"], "yes" if c["passed"] else "NO", f"{c['score']:.2f}"))
        if rep.status != "ok":
            rows.append((name, f"[{rep.status}]", "NO", "-"))
            problems.append(f"  {name}: {rep.status}: {rep.message}")
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    n_checks = sum(len(r.checks) for r in reports)
    n_passed = sum(c["passed"] for r in reports for c in r.checks)
    if problems:
        lines += ["", "Problems:", *problems]
    if len(reports) > 1:
        lines += ["", "Class summary (passed / notebooks; the first failing case most often missed):"]
        for exercise_id, entry in class_summary(reports).items():
            missed = entry["most_common_first_failure"]
            lines.append(f"  {exercise_id}: {entry['passed']}/{entry['notebooks']}"
                         + (f"; {entry['most_common_first_failure_count']} x '{missed}'" if missed else ""))
    lines.append(f"\n{n_passed}/{n_checks} exercises passed in {len(reports)} notebook(s); "
                 f"{sum(r.passed for r in reports)} notebook(s) fully passed.")
    return "\n".join(lines)
