"""Widgets of the training-visualisation lesson: live training curves and a layer-statistics explorer.

``LiveCurves(curves)`` is a callback that redraws a plotly ``FigureWidget`` as a run goes; ``curves`` is a
plain function (run state -> {trace name: (x, y)}) from a topic module, e.g.
``bigtrain_lab.training_viz.history_curves`` for ``fit``-style histories or ``bigtrain_lab.train.loss_curves``
for ``train.train`` results; the unit tests call those functions directly.

``layer_stats_view(histories, scheme, checkpoint)`` is the plain function (recorded runs -> the numbers
plotted) that the unit tests call; ``LayerStatsExplorer`` draws it: a dropdown "init", a slider
"checkpoint" and a FigureWidget with activation std, gradient norm and dead-ReLU share per layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigtrain_lab.training_viz import History

__all__ = ["LayerStatsExplorer", "LayerStatsView", "LiveCurves", "layer_stats_view"]

Curves = Callable[[Any], dict[str, tuple[list, list]]]


class LiveCurves:
    """A callback that redraws ``curves(state)`` in a plotly ``FigureWidget`` each time it is called.

    ``LiveCurves(history_curves)`` as a ``callbacks=[...]`` entry of a training loop plots every trace it
    returns; traces whose name contains "acc" go to a second panel when there are any, "val" traces are
    dotted. Traces appear as the run produces them. Needs ``anywidget`` for ``FigureWidget``.
    """

    def __init__(self, curves: Curves, *, title: str = "training curves", x_title: str = "step",
                 accuracy_panel: bool = False, display: bool = True) -> None:
        self.curves = curves
        panels = 2 if accuracy_panel else 1
        fig = make_subplots(rows=1, cols=panels, subplot_titles=("loss", "accuracy")[:panels])
        fig.update_xaxes(title_text=x_title)
        fig.update_layout(title=title, height=330, width=min(840, 430 * panels + 50),
                          margin={"l": 50, "r": 20, "t": 60, "b": 40})
        self._panels = panels
        self.figure = go.FigureWidget(fig)
        if display:
            from IPython.display import display as show

            show(self.figure)

    def __call__(self, state: Any) -> None:
        data = self.curves(state)
        with self.figure.batch_update():
            for name, (x, y) in data.items():
                trace = next((t for t in self.figure.data if t.name == name), None)
                if trace is None:
                    col = 2 if self._panels == 2 and "acc" in name else 1
                    self.figure.add_scatter(x=[], y=[], name=name, mode="lines+markers", row=1, col=col,
                                            line={"dash": "dot" if name.startswith("val") else "solid"})
                    trace = self.figure.data[-1]
                trace.x, trace.y = list(x), list(y)



@dataclass(frozen=True)
class LayerStatsView:
    """The statistics of every layer of run ``scheme`` at its ``checkpoint``-th recording (epoch ``epoch``)."""

    scheme: str
    epoch: int
    layers: list[str]
    act_std: list[float]
    grad_norm: list[float]
    dead_fraction: list[float]
    val_acc: float
    train_loss: float


def layer_stats_view(histories: dict[str, History], scheme: str, checkpoint: int) -> LayerStatsView:
    """Numbers for one run (``histories[scheme]``, recorded with ``stats_every``) at one recording."""
    if scheme not in histories:
        raise ValueError(f"unknown scheme {scheme!r}; recorded: {sorted(histories)}")
    h = histories[scheme]
    if not h.layer_stats:
        raise ValueError(f"run {scheme!r} has no layer statistics: train it with stats_every > 0")
    if not 0 <= checkpoint < len(h.layer_stats):
        raise ValueError(f"checkpoint must be in [0, {len(h.layer_stats)}), got {checkpoint}")
    stats = h.layer_stats[checkpoint]
    epoch = h.stats_epochs[checkpoint]
    row = h.epochs.index(epoch)
    return LayerStatsView(scheme, epoch, [s.name for s in stats], [s.act_std for s in stats],
                          [s.grad_norm for s in stats], [s.dead_fraction for s in stats],
                          h.val_acc[row], h.train_loss[row])


def _positive(values: list[float]) -> list[float | None]:
    """Values for a log axis: zeros and non-finite values become gaps."""
    return [v if math.isfinite(v) and v > 0 else None for v in values]


class LayerStatsExplorer(widgets.VBox):
    """Dropdown over the recorded runs, slider over their recordings, three bar charts per layer."""

    def __init__(self, histories: dict[str, History], *, scheme: str | None = None) -> None:
        self.histories = histories
        scheme = scheme or next(iter(histories))
        self.dropdown = widgets.Dropdown(description="init", options=list(histories), value=scheme)
        self.slider = widgets.IntSlider(description="checkpoint", min=0,
                                        max=len(histories[scheme].layer_stats) - 1, value=0,
                                        continuous_update=False)
        self.summary = widgets.HTML()
        fig = make_subplots(rows=1, cols=3, subplot_titles=("activation std", "|grad| of the weight",
                                                            "dead ReLU share"))
        for col in (1, 2, 3):
            fig.add_bar(x=[], y=[], row=1, col=col)
        fig.update_yaxes(type="log", row=1, col=1)
        fig.update_yaxes(type="log", row=1, col=2)
        fig.update_yaxes(range=[0, 1.05], row=1, col=3)
        fig.update_layout(height=330, width=840, showlegend=False, margin={"l": 50, "r": 10, "t": 40, "b": 60})
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[widgets.HBox([self.dropdown, self.slider]), self.summary, self.figure])
        self._show()
        self.dropdown.observe(self._on_scheme, names="value")
        self.slider.observe(lambda _change: self._show(), names="value")

    def view(self) -> LayerStatsView:
        return layer_stats_view(self.histories, self.dropdown.value, self.slider.value)

    def _on_scheme(self, change) -> None:
        self.slider.max = len(self.histories[change["new"]].layer_stats) - 1
        self._show()

    def _show(self) -> None:
        v = self.view()
        self.summary.value = (f"<b>{v.scheme}</b> after epoch {v.epoch}: training loss {v.train_loss:.3f}, "
                              f"validation accuracy {v.val_acc:.3f}")
        with self.figure.batch_update():
            for trace, values in zip(self.figure.data, (_positive(v.act_std), _positive(v.grad_norm),
                                                        v.dead_fraction), strict=True):
                trace.x, trace.y = v.layers, values
