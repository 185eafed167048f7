"""Learning-rate schedule explorer of lesson 02: a schedule and its settings on sliders -> the lr curve.

``schedule_view`` is the plain function (settings -> the curve and its numbers) that the unit tests call;
``ScheduleExplorer`` only draws what it returns. The curve comes from ``bigtrain_lab.schedules.lr_curve``;
where torch has the scheduler, what ``torch.optim.lr_scheduler`` gives is drawn over it (markers) and the
largest gap between the two is shown. DOM relied on by tests: a Dropdown described "schedule", sliders
described as the keys of ``SLIDERS``, an HTML ``bt-schedule-summary`` and a FigureWidget with traces "lr"
and "torch.optim.lr_scheduler".
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from bigtrain_lab.schedules import SCHEDULE_NAMES, TORCH_SCHEDULERS, lr_curve, torch_lr_curve

__all__ = ["USED_SETTINGS", "ScheduleExplorer", "ScheduleView", "schedule_explorer", "schedule_view"]

#: the settings each schedule reads (the others are greyed out in the widget)
USED_SETTINGS: dict[str, tuple[str, ...]] = {
    "constant": ("total_steps", "base_lr", "warmup_steps"),
    "step": ("total_steps", "base_lr", "step_size", "gamma"),
    "exponential": ("total_steps", "base_lr", "gamma"),
    "cosine": ("total_steps", "base_lr", "min_lr"),
    "warmup_cosine": ("total_steps", "base_lr", "warmup_steps", "min_lr"),
    "one_cycle": ("total_steps", "base_lr", "pct_start"),
    "wsd": ("total_steps", "base_lr", "warmup_steps", "min_lr", "decay_fraction"),
}

DEFAULTS = {"total_steps": 1000, "base_lr": 1e-3, "warmup_steps": 100, "min_lr": 1e-4, "step_size": 300,
            "gamma": 0.5, "pct_start": 0.3, "decay_fraction": 0.2}


@dataclass(frozen=True)
class ScheduleView:
    """One schedule over a run: ``lrs[k]`` is the lr of step k. ``torch_lrs`` is what the matching
    ``torch.optim.lr_scheduler`` gives (None where torch has none) and ``max_gap_to_torch`` the largest
    absolute difference. ``mean_lr`` is the average lr: for SGD, the total distance the weights may travel
    is proportional to it (the area under the curve)."""

    name: str
    steps: np.ndarray
    lrs: np.ndarray
    torch_lrs: np.ndarray | None
    torch_scheduler: str | None
    peak_lr: float
    final_lr: float
    mean_lr: float
    max_gap_to_torch: float | None


def schedule_view(name: str, **settings: float) -> ScheduleView:
    """The lr curve of schedule ``name`` with ``settings`` (keys of ``DEFAULTS``; missing ones default).

    Raises ValueError for an unknown schedule or setting, and for settings a schedule rejects (e.g. a
    warm-up as long as the run).
    """
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULE_NAMES}")
    full = {**DEFAULTS, **settings}
    full["total_steps"] = int(full["total_steps"])
    full["warmup_steps"] = int(full["warmup_steps"])
    full["step_size"] = int(full["step_size"])
    lrs = lr_curve(name, **full)
    torch_lrs = torch_lr_curve(name, **full)
    gap = None if torch_lrs is None else float(np.max(np.abs(lrs - torch_lrs)))
    return ScheduleView(name=name, steps=np.arange(full["total_steps"]), lrs=lrs, torch_lrs=torch_lrs,
                        torch_scheduler=TORCH_SCHEDULERS.get(name), peak_lr=float(lrs.max()),
                        final_lr=float(lrs[-1]), mean_lr=float(lrs.mean()), max_gap_to_torch=gap)


def summary_html(view: ScheduleView) -> str:
    """The view's numbers as one HTML line."""
    torch_part = ("torch has no such scheduler" if view.torch_lrs is None else
                  f"torch.optim.lr_scheduler.{view.torch_scheduler}: max |gap| {view.max_gap_to_torch:.2e}")
    return (f'<div class="bt-schedule-summary">{view.name}: peak lr {view.peak_lr:.3e} · final lr '
            f"{view.final_lr:.3e} · mean lr {view.mean_lr:.3e} · {torch_part}</div>")


def _slider(name: str) -> widgets.Widget:
    layout = widgets.Layout(width="420px")
    common = {"description": name, "continuous_update": False, "layout": layout,
              "style": {"description_width": "110px"}}
    if name == "total_steps":
        return widgets.IntSlider(value=DEFAULTS[name], min=20, max=5000, step=10, **common)
    if name in ("warmup_steps", "step_size"):
        return widgets.IntSlider(value=DEFAULTS[name], min=0 if name == "warmup_steps" else 1, max=4990,
                                 step=1, **common)
    if name in ("base_lr", "min_lr"):
        return widgets.FloatLogSlider(value=DEFAULTS[name], base=10, min=-6, max=0, step=0.05,
                                      readout_format=".1e", **common)
    if name == "gamma":
        return widgets.FloatSlider(value=DEFAULTS[name], min=0.01, max=1.0, step=0.001, readout_format=".3f",
                                   **common)
    return widgets.FloatSlider(value=DEFAULTS[name], min=0.05, max=0.95, step=0.01, **common)


SLIDERS = tuple(DEFAULTS)


class ScheduleExplorer(widgets.VBox):
    """A Dropdown ``schedule``, one slider per setting (``self.sliders``), an HTML summary and a plotly
    FigureWidget. Changing any of them recomputes ``schedule_view`` and redraws the curve."""

    def __init__(self, name: str = "warmup_cosine", **settings: float) -> None:
        view = schedule_view(name, **settings)  # validates
        self.dropdown = widgets.Dropdown(description="schedule", options=list(SCHEDULE_NAMES), value=name)
        self.sliders = {key: _slider(key) for key in SLIDERS}
        for key, value in settings.items():
            self.sliders[key].value = value
        self.summary = widgets.HTML()
        self.message = widgets.HTML()
        fig = go.Figure()
        fig.add_scatter(x=[], y=[], mode="lines", name="lr")
        fig.add_scatter(x=[], y=[], mode="markers", name="torch.optim.lr_scheduler",
                        marker={"size": 5, "symbol": "circle-open"})
        fig.update_layout(height=360, width=820, xaxis_title="step", yaxis_title="learning rate",
                          margin={"l": 60, "r": 20, "t": 40, "b": 40})
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[self.dropdown, *self.sliders.values(), self.summary, self.message,
                                   self.figure])
        self._show(view)
        self.dropdown.observe(self._update, names="value")
        for slider in self.sliders.values():
            slider.observe(self._update, names="value")

    def settings(self) -> dict[str, float]:
        """The sliders' current values."""
        return {key: slider.value for key, slider in self.sliders.items()}

    def _update(self, _change: dict | None = None) -> None:
        try:
            view = schedule_view(self.dropdown.value, **self.settings())
        except ValueError as error:  # e.g. warm-up longer than the run: say so, keep the last curve
            self.message.value = f'<span style="color:#b00">{error}</span>'
            return
        self.message.value = ""
        self._show(view)

    def _show(self, view: ScheduleView) -> None:
        used = USED_SETTINGS[view.name]
        for key, slider in self.sliders.items():
            slider.disabled = key not in used
        self.summary.value = summary_html(view)
        line, markers = (next(self.figure.select_traces({"name": n})) for n in ("lr", "torch.optim.lr_scheduler"))
        every = max(1, len(view.steps) // 60)
        with self.figure.batch_update():
            line.x, line.y = view.steps, view.lrs
            if view.torch_lrs is None:
                markers.x, markers.y = [], []
            else:
                markers.x, markers.y = view.steps[::every], view.torch_lrs[::every]
            self.figure.layout.title = f"{view.name} ({view.torch_scheduler or 'closed form only'})"


def schedule_explorer(name: str = "warmup_cosine", **settings: float) -> ScheduleExplorer:
    """Interactive learning-rate schedule: pick a schedule, move its settings, see the curve (and torch's)."""
    return ScheduleExplorer(name, **settings)
