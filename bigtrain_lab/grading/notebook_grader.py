"""``bigtrain-lab grade``: execute notebooks in fresh kernels and collect every ``check`` result.

Each notebook runs in its own kernel with ``BIGTRAIN_LAB_RESULTS`` pointing at a scratch file, to which
``check`` appends its results; the grader reads them back. A notebook that is not JSON, fails to
execute, times out or has no checks gives a clear row and the run goes on with the next notebook.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from bigtrain_lab.grading.check import RESULTS_ENV_VAR

CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([A-Za-z_][\w]*\.[A-Za-z_][\w]*)["']""")
DEFAULT_TIMEOUT = 600.0


@dataclass
class NotebookReport:
    """What grading one notebook gave: its status, every check's latest result, and errors."""

    path: str
    status: str  # "ok" | "cell error" | "timeout" | "failed to execute" | "unreadable" | "no checks"
    message: str = ""
    seconds: float = 0.0
    checks: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "ok" and bool(self.checks) and all(c["passed"] for c in self.checks)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def expected_exercises(nb: nbformat.NotebookNode) -> list[str]:
    """Exercise ids a notebook calls ``check`` on, in order of first appearance."""
    ids: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            for exercise_id in CHECK_CALL.findall(cell.source):
                if exercise_id not in ids:
                    ids.append(exercise_id)
    return ids


def _first_error(nb: nbformat.NotebookNode) -> str:
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {index + 1} raised {out.get('ename')}: {out.get('evalue')}"
    return ""


def _read_results(path: Path) -> dict[str, dict]:
    """The latest result per exercise id from the scratch file ``check`` wrote."""
    latest: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                latest[entry["exercise_id"]] = entry
    return latest


def grade_notebook(path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT,
                   kernel_name: str = "python3") -> NotebookReport:
    """Execute one notebook in a fresh kernel (at most ``timeout`` seconds) and collect its checks."""
    path = Path(path)
    start = time.perf_counter()
    try:
        nb = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        return NotebookReport(str(path), "unreadable", "file not found")
    except Exception as exc:  # not JSON, not a notebook
        return NotebookReport(str(path), "unreadable", f"not a valid notebook ({type(exc).__name__}: {exc})"[:300])
    wanted = expected_exercises(nb)
    if not wanted:
        return NotebookReport(str(path), "no checks",
                              "no `check(\"topic.name\", ...)` call found: nothing to grade")

    deadline = time.monotonic() + timeout
    status, message = "ok", ""
    with tempfile.TemporaryDirectory(prefix="bigtrain-grade-") as tmp:
        results_file = Path(tmp) / "results.jsonl"
        env = {**os.environ, RESULTS_ENV_VAR: str(results_file)}
        client = NotebookClient(
            nb, kernel_name=kernel_name, allow_errors=True, timeout=None,
            timeout_func=lambda _cell: max(1, int(deadline - time.monotonic())),
            resources={"metadata": {"path": str(path.parent.resolve())}},
        )
        try:
            client.execute(env=env)
            error = _first_error(nb)
            if error:
                status, message = "cell error", error
        except CellTimeoutError:
            status, message = "timeout", f"stopped after the time limit of {timeout:g} s"
        except DeadKernelError as exc:
            status, message = "failed to execute", f"the kernel died ({exc})"[:300]
        except Exception as exc:
            status, message = "failed to execute", f"{type(exc).__name__}: {exc}"[:300]
        results = _read_results(results_file)

    checks = []
    for exercise_id in wanted + [i for i in results if i not in wanted]:
        if exercise_id in results:
            entry = results[exercise_id]
            checks.append({k: entry[k] for k in ("exercise_id", "passed", "score", "feedback")})
        else:
            checks.append({"exercise_id": exercise_id, "passed": False, "score": 0.0,
                           "feedback": "this check never ran (an earlier cell failed or the run stopped)"})
    return NotebookReport(str(path), status, message, time.perf_counter() - start, checks)


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
    lines.append(f"\n{n_passed}/{n_checks} exercises passed in {len(reports)} notebook(s); "
                 f"{sum(r.passed for r in reports)} notebook(s) fully passed.")
    return "\n".join(lines)
