"""The widgets of lesson 15 (tensor, sequence and pipeline parallelism), each a thin view over a plain function
that the unit tests call (``tests/test_widgets_parallel.py``):

* ``PipelineTimeline`` over ``timeline_state(num_stages, num_microbatches, schedule, backward_ratio)``: stages,
  micro-batches, GPipe or 1F1B and the backward / forward time ratio -> the simulated schedule as a Gantt
  chart (one row per stage, forwards and backwards coloured, micro-batch numbers on the bars;
  ``bigtrain_lab.parallel.pipeline.simulate``), the bubble measured on it next to ``(p - 1) / (m + p - 1)``,
  and the most micro-batches each stage holds activations for.
* ``timeline_figure(events, ...)``: the same Gantt chart for any timeline, e.g. the real one that
  ``scripts/pp_train.py`` writes into its summary JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from bigtrain_lab.estimate.formulas import bubble_fraction as bubble_formula
from bigtrain_lab.parallel.pipeline import (
    SCHEDULES,
    Event,
    bubble_fraction,
    max_in_flight,
    pipeline_schedule,
    simulate,
    stage_bubbles,
)

__all__ = ["PipelineTimeline", "timeline_figure", "timeline_state"]

_F, _B = "#1f77b4", "#ff7f0e"
STAGES = (2, 8)
MICROBATCHES = (1, 32)
RATIOS = (0.5, 4.0)


def timeline_state(num_stages: int = 4, num_microbatches: int = 8, schedule: str = "1f1b",
                   backward_ratio: float = 2.0) -> dict[str, Any]:
    """Everything ``PipelineTimeline`` shows, as plain data.

    Keys: ``events`` (dicts ``stage, op, mb, start, end``; a forward takes 1 time unit, a backward
    ``backward_ratio``), ``step_time``, ``bubble_simulated`` (idle share averaged over the stages),
    ``bubble_per_stage``, ``bubble_formula`` (``(p - 1) / (m + p - 1)``), ``in_flight`` (most micro-batches
    held per stage), ``ops`` (the schedule) and ``summary`` (one HTML line).
    """
    ops = pipeline_schedule(num_stages, num_microbatches, schedule)  # ValueError on bad sizes / kind
    if isinstance(backward_ratio, bool) or not isinstance(backward_ratio, (int, float)) or not backward_ratio > 0:
        raise ValueError(f"backward_ratio must be > 0, got {backward_ratio!r}")
    events = simulate(ops, 1.0, float(backward_ratio))
    simulated = bubble_fraction(events, num_stages)
    formula = bubble_formula(num_stages, num_microbatches)
    flight = max_in_flight(ops)
    step = max(e.end for e in events)
    summary = (f"<b>{schedule}</b>, p = {num_stages} stages, m = {num_microbatches} micro-batches, t_b = "
               f"{backward_ratio:g} t_f: step {step:g} t_f | bubble simulated <b>{simulated:.3f}</b>, formula "
               f"(p-1)/(m+p-1) = <b>{formula:.3f}</b> | micro-batches in flight per stage: {flight}")
    return {"events": [e.as_dict() for e in events], "step_time": step, "bubble_simulated": simulated,
            "bubble_per_stage": stage_bubbles(events, num_stages), "bubble_formula": formula, "in_flight": flight,
            "ops": ops, "summary": summary, "num_stages": num_stages, "num_microbatches": num_microbatches,
            "schedule": schedule}


def _traces(events: Sequence[Event | dict], unit: str) -> list[go.Bar]:
    rows = [e if isinstance(e, dict) else e.as_dict() for e in events]
    traces = []
    for op, color, name in (("F", _F, "forward"), ("B", _B, "backward")):
        mine = [r for r in rows if r["op"] == op]
        traces.append(go.Bar(
            orientation="h", base=[r["start"] for r in mine], x=[r["end"] - r["start"] for r in mine],
            y=[f"stage {r['stage']}" for r in mine], text=[str(r["mb"]) for r in mine], name=name,
            marker={"color": color, "line": {"color": "white", "width": 1}}, textposition="inside",
            insidetextanchor="middle",
            customdata=[[r["mb"], r["start"], r["end"]] for r in mine],
            hovertemplate=f"{name} of micro-batch %{{customdata[0]}}<br>%{{customdata[1]:.3g}} - "
                          f"%{{customdata[2]:.3g}} {unit}<extra>%{{y}}</extra>"))
    return traces


def _layout(fig: go.Figure, num_stages: int, unit: str, title: str) -> None:
    fig.update_layout(barmode="overlay", width=820, height=140 + 38 * num_stages, title=title,
                      margin={"l": 80, "r": 30, "t": 60, "b": 50}, legend={"orientation": "h", "y": -0.25})
    fig.update_yaxes(categoryorder="array", categoryarray=[f"stage {s}" for s in reversed(range(num_stages))])
    fig.update_xaxes(title_text=f"time ({unit})")


def timeline_figure(events: Sequence[Event | dict], *, title: str = "pipeline timeline",
                    unit: str = "time units", num_stages: int | None = None) -> go.Figure:
    """A Gantt chart of a timeline (``simulate``'s events or a run's ``timeline``): one row per stage, forwards
    and backwards coloured, each bar labelled with its micro-batch."""
    if not events:
        raise ValueError("empty timeline")
    rows = [e if isinstance(e, dict) else e.as_dict() for e in events]
    p = num_stages if num_stages is not None else 1 + max(r["stage"] for r in rows)
    fig = go.Figure(_traces(rows, unit))
    _layout(fig, p, unit, title)
    return fig


class PipelineTimeline(widgets.VBox):
    """Stages, micro-batches, schedule and backward/forward ratio -> the simulated pipeline as a Gantt chart, the
    bubble against its formula and the activations each stage holds."""

    def __init__(self, num_stages: int = 4, num_microbatches: int = 8, schedule: str = "1f1b",
                 backward_ratio: float = 2.0) -> None:
        timeline_state(num_stages, num_microbatches, schedule, backward_ratio)  # validates
        if not STAGES[0] <= num_stages <= STAGES[1]:
            raise ValueError(f"num_stages must be in {STAGES[0]}..{STAGES[1]}, got {num_stages!r}")
        if not MICROBATCHES[0] <= num_microbatches <= MICROBATCHES[1]:
            raise ValueError(f"num_microbatches must be in {MICROBATCHES[0]}..{MICROBATCHES[1]}, "
                             f"got {num_microbatches!r}")
        style = {"description_width": "initial"}
        self.stages = widgets.IntSlider(value=num_stages, min=STAGES[0], max=STAGES[1], description="stages p",
                                        continuous_update=False, style=style, layout=widgets.Layout(width="400px"))
        self.microbatches = widgets.IntSlider(value=num_microbatches, min=MICROBATCHES[0], max=MICROBATCHES[1],
                                              description="micro-batches m", continuous_update=False, style=style,
                                              layout=widgets.Layout(width="400px"))
        self.schedule = widgets.ToggleButtons(options=list(SCHEDULES), value=schedule, description="schedule")
        self.ratio = widgets.FloatSlider(value=backward_ratio, min=RATIOS[0], max=RATIOS[1], step=0.25,
                                         description="t_b / t_f", continuous_update=False, style=style,
                                         layout=widgets.Layout(width="400px"))
        self.summary = widgets.HTML()
        self.figure = go.FigureWidget(go.Figure())
        super().__init__(children=[widgets.HBox([self.stages, self.microbatches]),
                                   widgets.HBox([self.schedule, self.ratio]), self.summary, self.figure])
        self._update()
        for control in (self.stages, self.microbatches, self.schedule, self.ratio):
            control.observe(self._update, names="value")

    def data(self) -> dict[str, Any]:
        return timeline_state(self.stages.value, self.microbatches.value, self.schedule.value, self.ratio.value)

    def _update(self, _change: dict | None = None) -> None:
        d = self.data()
        self.summary.value = d["summary"]
        fig = go.Figure()
        _layout(fig, d["num_stages"], "forward times", "")
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(_traces(d["events"], "forward times"))
            self.figure.layout = fig.layout
            self.figure.layout.title = (f"{d['schedule']}: bubble {d['bubble_simulated']:.1%} (formula "
                                        f"{d['bubble_formula']:.1%}), in flight {d['in_flight']}")
