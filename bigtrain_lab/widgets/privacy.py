"""The epsilon dial of lesson 12: pick a privacy budget epsilon and see what it costs and what it buys -- the
noise multiplier the accountant needs, the test accuracy over seeds against the non-private model, and the
membership attack's advantage against the bound DP guarantees.

The numbers come from a measured sweep (``bigtrain_lab.privacy.experiments.run_sweep``'s schema: the idle
bench's ``bench/results/privacy.json`` when it can be quoted, else the lesson's own run); the widget trains
nothing. ``bigtrain_lab.privacy.experiments.dial_data`` is the plain function the unit tests call;
``EpsilonDial`` only draws it: a SelectionSlider "epsilon", an HTML readout and a plotly FigureWidget (left:
accuracy against epsilon, mean and spread over seeds, the non-private level; right: the attack's advantage,
the DP bound and a coin's advantage), the chosen epsilon marked on both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigtrain_lab.privacy.experiments import dial_data

__all__ = ["EpsilonDial"]

_DP, _BASE, _BOUND, _MARK = "#1f77b4", "#7f7f7f", "#d62728", "#ff7f0e"


class EpsilonDial(widgets.VBox):
    """Accuracy and membership leakage of DP-SGD at one epsilon of a sweep."""

    def __init__(self, sweep: Mapping[str, Any], *, epsilon: float | None = None) -> None:
        self.sweep = sweep
        values = [float(e) for e in sweep["epsilons"]]
        start = values.index(float(epsilon)) if epsilon is not None else 0
        self.epsilon = widgets.SelectionSlider(description="epsilon", options=[(f"{v:g}", v) for v in values],
                                               index=start, continuous_update=False,
                                               style={"description_width": "initial"},
                                               layout=widgets.Layout(width="400px"))
        self.readout = widgets.HTML()
        fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                            subplot_titles=("test accuracy vs epsilon", "membership advantage vs epsilon"))
        fig.update_layout(width=820, height=420, margin={"l": 60, "r": 30, "t": 70, "b": 50},
                          legend={"orientation": "h", "y": -0.22})
        fig.update_xaxes(title_text="epsilon (log)", type="log")
        fig.update_yaxes(title_text="accuracy", row=1, col=1)
        fig.update_yaxes(title_text="TPR - FPR", range=[0, 1.05], row=1, col=2)
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[self.epsilon, self.readout, self.figure])
        self._show()
        self.epsilon.observe(lambda _change: self._show(), names="value")

    def data(self) -> dict[str, Any]:
        return dial_data(self.sweep, self.epsilon.value)

    def _show(self) -> None:
        d = self.data()
        c = d["curves"]
        eps = c["epsilons"]
        span = [min(eps), max(eps)]
        self.readout.value = d["summary"]
        accuracy = [
            go.Scatter(x=eps, y=c["accuracy_mean"], error_y={"type": "data", "array": c["accuracy_std"]},
                       mode="lines+markers", name="DP-SGD", line={"color": _DP}),
            go.Scatter(x=span, y=[d["nonprivate_accuracy"][0]] * 2, mode="lines", name="non-private",
                       line={"color": _BASE, "dash": "dash"}),
            go.Scatter(x=[d["epsilon"]], y=[d["accuracy"][0]], mode="markers", name="chosen epsilon",
                       marker={"color": _MARK, "size": 13, "symbol": "circle-open", "line": {"width": 3}}),
        ]
        leakage = [
            go.Scatter(x=eps, y=c["advantage_mean"], error_y={"type": "data", "array": c["advantage_std"]},
                       mode="lines+markers", name="DP-SGD", line={"color": _DP}, showlegend=False),
            go.Scatter(x=eps, y=c["bound"], mode="lines", name="DP bound", line={"color": _BOUND}),
            go.Scatter(x=span, y=[d["nonprivate_advantage"]] * 2, mode="lines", name="non-private",
                       line={"color": _BASE, "dash": "dash"}, showlegend=False),
            go.Scatter(x=span, y=[d["chance"]] * 2, mode="lines", name="a coin (finite sample)",
                       line={"color": _BASE, "dash": "dot"}),
            go.Scatter(x=[d["epsilon"]], y=[d["advantage"][0]], mode="markers", name="chosen epsilon",
                       marker={"color": _MARK, "size": 13, "symbol": "circle-open", "line": {"width": 3}},
                       showlegend=False),
        ]
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(accuracy, rows=1, cols=1)
            self.figure.add_traces(leakage, rows=1, cols=2)
            self.figure.layout.title = f"epsilon = {d['key']}, noise multiplier {d['noise_multiplier']:.2f}"
