"""The result of ``check``: passed, score and feedback, shown as HTML in a notebook and text in a terminal."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class CaseFailure:
    """The first failing case, with everything a learner needs to reproduce it."""

    label: str
    inputs: str
    expected: str
    got: str
    reason: str


@dataclass(frozen=True)
class CheckResult:
    """Outcome of ``check(exercise_id, candidate)``.

    ``passed`` is True only when every case passed; ``score`` is the fraction of cases passed.
    """

    exercise_id: str
    passed: bool
    score: float
    feedback: str
    n_cases: int = 0
    n_passed: int = 0
    seed: int | None = None
    first_failure: CaseFailure | None = None
    hint: str = ""
    lesson: str = ""
    passed_labels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict (used by the notebook grader and ``bigtrain-lab progress``)."""
        return asdict(self)

    def __str__(self) -> str:
        return self.feedback

    def __bool__(self) -> bool:
        return self.passed

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else "#cf222e"
        mark = "&#10004; passed" if self.passed else "&#10008; not yet"
        head = (f'<div class="bt-check" data-exercise="{html.escape(self.exercise_id)}" '
                f'data-passed="{str(self.passed).lower()}" style="border-left:4px solid {colour};'
                f'padding:4px 10px;margin:4px 0">'
                f'<b style="color:{colour}">{mark}</b> &nbsp;<code>{html.escape(self.exercise_id)}</code>'
                f" &mdash; {self.n_passed}/{self.n_cases} cases, score {self.score:.2f}")
        parts = [head]
        if self.first_failure is not None:
            f = self.first_failure
            rows = [("case", f.label), ("input", f.inputs), ("expected", f.expected), ("got", f.got),
                    ("problem", f.reason)]
            if self.hint:
                rows.append(("hint", self.hint))
            body = "".join(
                f"<tr><td style='text-align:left;vertical-align:top'><b>{k}</b></td>"
                f"<td style='text-align:left'><code style='white-space:pre-wrap'>{html.escape(v)}</code></td></tr>"
                for k, v in rows
            )
            parts.append(f"<table style='margin-top:4px'>{body}</table>")
        elif not self.passed:
            parts.append(f"<div>{html.escape(self.feedback)}</div>")
        if self.lesson and not self.passed:
            lesson = html.escape(self.lesson)  # notebooks/NN_x.ipynb#section; notebooks sit one level below the root
            parts.append(f"<div style='color:#57606a'>see <a href='../{lesson}' target='_blank'>"
                         f"<code>{lesson}</code></a></div>")
        if self.seed is not None:
            parts.append(f"<div style='color:#57606a;font-size:smaller'>random cases drawn with seed "
                         f"{self.seed} (pass seed={self.seed} to check() to repeat them)</div>")
        return "".join(parts) + "</div>"


def format_feedback(exercise_id: str, passed: bool, n_passed: int, n_cases: int,
                    failure: CaseFailure | None, hint: str, note: str = "") -> str:
    """The plain-text feedback (what a terminal shows and what the grader stores)."""
    if passed:
        return f"PASSED {exercise_id}: all {n_cases} cases passed."
    lines = [f"NOT YET {exercise_id}: {n_passed}/{n_cases} cases passed."]
    if note:
        lines.append(note)
    if failure is not None:
        lines += [
            f"First failing case: {failure.label}",
            f"  input:    {failure.inputs}",
            f"  expected: {failure.expected}",
            f"  got:      {failure.got}",
            f"  problem:  {failure.reason}",
        ]
    if hint:
        lines.append(f"Hint: {hint}")
    return "\n".join(lines)
