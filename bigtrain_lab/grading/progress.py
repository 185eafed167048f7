"""``bigtrain-lab progress``: which exercises a learner has passed, from their last grade runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bigtrain_lab.grading.notebook_grader import NotebookReport
from bigtrain_lab.grading.registry import exercise_ids
from bigtrain_lab.kit_home import kit_home


def progress_file() -> Path:
    """``$BIGTRAIN_LAB_HOME/progress.json`` (default ``~/.bigtrain-lab/progress.json``)."""
    return kit_home() / "progress.json"


def load_progress(path: Path | None = None) -> dict[str, dict]:
    """Exercise id -> the latest graded result ``{passed, score, notebook, time}``."""
    path = path or progress_file()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"progress file {path} is corrupt ({exc}); delete it to start afresh") from exc


def record_reports(reports: list[NotebookReport], path: Path | None = None) -> Path:
    """Merge the checks of a grade run into the progress file (the latest result per exercise wins)."""
    path = path or progress_file()
    progress = load_progress(path)
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    for report in reports:
        for c in report.checks:
            progress[c["exercise_id"]] = {"passed": c["passed"], "score": c["score"],
                                          "notebook": report.path, "time": now}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(progress, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves a half-written file
    return path


def format_progress(progress: dict[str, dict]) -> str:
    """One line per registered exercise: passed, tried (score) or not attempted."""
    ids = exercise_ids()
    width = max(len(i) for i in ids)
    lines = []
    for exercise_id in ids:
        entry = progress.get(exercise_id)
        if entry is None:
            state = "not attempted"
        elif entry["passed"]:
            state = f"passed        ({entry['time']})"
        else:
            state = f"not yet {entry['score']:.2f} ({entry['time']})"
        lines.append(f"{exercise_id:<{width}}  {state}")
    done = sum(1 for i in ids if progress.get(i, {}).get("passed"))
    lines.append(f"\n{done}/{len(ids)} exercises passed.")
    return "\n".join(lines)
