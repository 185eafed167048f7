"""Progress per topic: exercises passed, quiz accuracy and cards due, as a table (``bigtrain-lab progress``)
and as a widget with a plotly bar chart (``progress_widget()``, in ``00_start_here``).

Read-only: it reads ``progress.json`` (the grader's runs) and ``review.json`` (the schedule) from
``$BIGTRAIN_LAB_HOME`` and never writes there; a missing store shows zeros, a corrupt one an error that
names the file. An exercise counts as passed when a ``bigtrain-lab grade`` run passed it or when its last
``check()`` passed (its card left box 1). Quiz accuracy is hits / answers over the topic's question cards.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ipywidgets as widgets

from bigtrain_lab import curriculum
from bigtrain_lab.quiz.bank import load_bank
from bigtrain_lab.quiz.review import EXERCISE_PREFIX, Card, ReviewStoreError, load_cards, review_file, today

if TYPE_CHECKING:
    import plotly.graph_objects as go


@dataclass(frozen=True)
class TopicProgress:
    """One topic's row: exercises passed of total, quiz hits of answers, cards due now, cards never seen."""

    topic: str
    title: str
    exercises_passed: int
    exercises_total: int
    quiz_hits: int
    quiz_answers: int
    due: int
    new: int

    @property
    def accuracy(self) -> float | None:
        """Quiz hits / answers, None before the first answer."""
        return self.quiz_hits / self.quiz_answers if self.quiz_answers else None


@dataclass(frozen=True)
class ProgressReport:
    """The rows, and the problems met reading the store (each names its file)."""

    rows: list[TopicProgress]
    errors: list[str]


def _load_exercise_progress(path: Path | None) -> tuple[dict[str, dict], str | None]:
    from bigtrain_lab.grading.progress import load_progress, progress_file

    try:
        return load_progress(path or progress_file()), None
    except (OSError, ValueError) as exc:
        return {}, str(exc)


def topic_progress(*, on: dt.date | None = None, progress: Mapping[str, dict] | None = None,
                   cards: Mapping[str, Card] | None = None) -> ProgressReport:
    """One row per curriculum topic, read from the store unless ``progress`` / ``cards`` are given."""
    on = on or today()
    errors: list[str] = []
    if progress is None:
        progress, error = _load_exercise_progress(None)
        errors += [error] if error else []
    if cards is None:
        try:
            cards = load_cards()
        except ReviewStoreError as exc:
            cards = {}
            errors.append(str(exc))
    bank_topics = {q.id: q.topic for q in load_bank()}
    rows = []
    for lesson in curriculum.LESSONS:
        for t in lesson.topics:
            exercises = [e for e in lesson.exercises if e.split(".", 1)[0] == t.key]
            passed = sum(bool(progress.get(e, {}).get("passed"))
                         or (EXERCISE_PREFIX + e in cards and cards[EXERCISE_PREFIX + e].box > 1)
                         for e in exercises)
            question_cards = [c for cid, c in cards.items() if bank_topics.get(cid) == t.key]
            exercise_cards = [c for cid, c in cards.items()
                              if cid.startswith(EXERCISE_PREFIX)
                              and cid.removeprefix(EXERCISE_PREFIX).split(".", 1)[0] == t.key]
            n_questions = sum(topic == t.key for topic in bank_topics.values())
            rows.append(TopicProgress(
                topic=t.key, title=t.title, exercises_passed=passed, exercises_total=len(exercises),
                quiz_hits=sum(c.hits for c in question_cards),
                quiz_answers=sum(c.hits + c.misses for c in question_cards),
                due=sum(c.is_due(on) for c in question_cards + exercise_cards),
                new=n_questions - len(question_cards)))
    return ProgressReport(rows, errors)


def _accuracy_text(row: TopicProgress) -> str:
    return "-" if row.accuracy is None else f"{row.accuracy:.0%} of {row.quiz_answers}"


def format_topic_progress(rows: Sequence[TopicProgress]) -> str:
    """A plain-text table: topic, exercises passed / total, quiz accuracy, cards due, new questions."""
    header = ("topic", "exercises", "quiz accuracy", "due", "new")
    body = [(r.topic, f"{r.exercises_passed}/{r.exercises_total}" if r.exercises_total else "-",
             _accuracy_text(r), str(r.due), str(r.new)) for r in rows]
    widths = [max(len(line[k]) for line in [header, *body]) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if k == 0 else cell.rjust(w) for k, (cell, w) in enumerate(zip(line, widths,
                                                                                                   strict=True)))
             for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    due = sum(r.due for r in rows)
    lines.append(f"\n{due} card(s) due now; `bigtrain-lab quiz` or quiz() in a notebook drills them first.")
    return "\n".join(lines)


def progress_figure(rows: Sequence[TopicProgress]) -> go.Figure:
    """Three bar charts over the topics: exercises passed (of total), quiz accuracy (%), cards due."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    x = [r.topic for r in rows]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("exercises passed (of total)", "quiz accuracy (%)", "cards due now"))
    fig.add_trace(go.Bar(x=x, y=[r.exercises_total for r in rows], name="exercises (total)",
                         marker_color="#d0d7de"), row=1, col=1)
    fig.add_trace(go.Bar(x=x, y=[r.exercises_passed for r in rows], name="exercises passed",
                         marker_color="#1a7f37"), row=1, col=1)
    fig.add_trace(go.Bar(x=x, y=[100 * r.accuracy if r.accuracy is not None else 0 for r in rows],
                         name="quiz accuracy", marker_color="#0969da",
                         text=[_accuracy_text(r) for r in rows], hoverinfo="x+text"), row=2, col=1)
    fig.add_trace(go.Bar(x=x, y=[r.due for r in rows], name="cards due", marker_color="#cf222e"), row=3, col=1)
    fig.update_layout(barmode="overlay", height=560, margin={"l": 50, "r": 20, "t": 40, "b": 40},
                      showlegend=False, template="plotly_white")
    fig.update_yaxes(range=[0, 100], row=2, col=1)
    return fig


def progress_html(report: ProgressReport) -> str:
    """The table as HTML, with the store's location and any error reading it."""
    rows = "".join(
        f"<tr><td><code>{html.escape(r.topic)}</code></td><td>{r.exercises_passed}/{r.exercises_total}</td>"
        f"<td>{html.escape(_accuracy_text(r))}</td><td>{r.due}</td><td>{r.new}</td></tr>" for r in report.rows)
    errors = "".join(f"<div style='color:#cf222e'>{html.escape(e)}</div>" for e in report.errors)
    return (f"<div class='bt-progress'>{errors}<table><thead><tr><th>topic</th><th>exercises passed</th>"
            f"<th>quiz accuracy</th><th>due</th><th>new</th></tr></thead><tbody>{rows}</tbody></table>"
            f"<div style='color:#57606a;font-size:0.85em'>from {html.escape(str(review_file().parent))} "
            "(<code>$BIGTRAIN_LAB_HOME</code>)</div></div>")


def progress_widget(*, on: dt.date | None = None) -> widgets.VBox:
    """Per topic: exercises passed, quiz accuracy and cards due, as a table and a plotly bar chart
    (``.report`` holds the numbers, ``.figure`` the chart). Only reads the store (an empty or missing one
    shows zeros)."""
    import plotly.graph_objects as go

    report = topic_progress(on=on)
    figure = go.FigureWidget(progress_figure(report.rows))
    box = widgets.VBox([widgets.HTML(progress_html(report)), figure])
    box.report, box.figure = report, figure
    return box
