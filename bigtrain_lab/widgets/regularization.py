"""The regularization explorer of lesson 10: pick a weight decay, a dropout p and a label smoothing, see the
train / validation curves and the weight histogram of that run, next to the unregularized one.

The runs are a cached sweep, ``bigtrain_lab.regularization.sweep(...)``'s result (the lesson computes it; the
widget trains nothing). ``bigtrain_lab.regularization.explorer_data`` is the plain function the unit tests call;
``RegularizationExplorer`` only draws it: three SelectionSliders "weight decay" (AdamW's, decoupled),
"dropout" and "label smoothing", ToggleButtons "curves" (loss or accuracy), an HTML readout (the final numbers
next to the unregularized run's) and a plotly FigureWidget (left: the four curves; right: the two weight
histograms).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigtrain_lab.regularization import explorer_data

__all__ = ["RegularizationExplorer"]

_RUN, _BASE = "#d62728", "#7f7f7f"


def _slider(description: str, values: list[float], value: float | None) -> widgets.SelectionSlider:
    options = [(f"{v:g}", v) for v in values]
    index = 0 if value is None else values.index(value)  # index, not value=: a value of 0.0 leaves the label ''
    return widgets.SelectionSlider(description=description, options=options, index=index, continuous_update=False,
                                   style={"description_width": "initial"})


class RegularizationExplorer(widgets.VBox):
    """Curves and weight histogram of one grid point of a regularization sweep, against the unregularized run."""

    def __init__(self, sweep_result: Mapping[str, Any], *, weight_decay: float | None = None,
                 dropout: float | None = None, label_smoothing: float | None = None, metric: str = "loss") -> None:
        self.sweep_result = sweep_result
        self.weight_decay = _slider("weight decay", list(sweep_result["weight_decay"]), weight_decay)
        self.dropout = _slider("dropout", list(sweep_result["dropout"]), dropout)
        self.label_smoothing = _slider("label smoothing", list(sweep_result["label_smoothing"]), label_smoothing)
        self.metric = widgets.ToggleButtons(description="curves", options=[("loss", "loss"), ("accuracy", "acc")],
                                            value=metric, style={"button_width": "80px"})
        self.readout = widgets.HTML()
        fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.12,
                            subplot_titles=("train and validation", "weights of the trained net"))
        fig.update_layout(width=800, height=400, margin={"l": 60, "r": 20, "t": 70, "b": 50},
                          legend={"orientation": "h", "y": -0.18}, bargap=0.05, barmode="overlay")
        fig.update_xaxes(title_text="epoch", row=1, col=1)
        fig.update_xaxes(title_text="weight value", row=1, col=2)
        fig.update_yaxes(title_text="count", row=1, col=2)
        self.figure = go.FigureWidget(fig)
        controls = widgets.VBox([self.weight_decay, self.dropout, self.label_smoothing])
        super().__init__(children=[widgets.HBox([controls, self.metric]), self.readout, self.figure])
        self._show()
        for control in (self.weight_decay, self.dropout, self.label_smoothing, self.metric):
            control.observe(lambda _change: self._show(), names="value")

    def data(self) -> dict[str, Any]:
        return explorer_data(self.sweep_result, weight_decay=self.weight_decay.value, dropout=self.dropout.value,
                             label_smoothing=self.label_smoothing.value, metric=self.metric.value)

    def _show(self) -> None:
        d = self.data()
        self.readout.value = d["summary"]
        what = "loss" if d["metric"] == "loss" else "accuracy"
        traces = [
            go.Scatter(x=d["epochs"], y=d["baseline_curves"]["train"], name=f"unregularized train {what}",
                       line={"color": _BASE, "dash": "dot"}),
            go.Scatter(x=d["epochs"], y=d["baseline_curves"]["val"], name=f"unregularized val {what}",
                       line={"color": _BASE}),
            go.Scatter(x=d["epochs"], y=d["curves"]["train"], name=f"train {what}", line={"color": _RUN, "dash": "dot"}),
            go.Scatter(x=d["epochs"], y=d["curves"]["val"], name=f"val {what}", line={"color": _RUN}),
            go.Bar(x=d["hist"]["centres"], y=d["hist"]["baseline_counts"], name="unregularized weights",
                   marker={"color": _BASE}, opacity=0.5),
            go.Bar(x=d["hist"]["centres"], y=d["hist"]["counts"], name="weights", marker={"color": _RUN},
                   opacity=0.6),
        ]
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(traces[:4], rows=1, cols=1)
            self.figure.add_traces(traces[4:], rows=1, cols=2)
            self.figure.layout.yaxis.title = f"cross-entropy {what}" if what == "loss" else "accuracy"
            self.figure.layout.title = f"{d['key'].replace('|', ', ')} vs unregularized"
