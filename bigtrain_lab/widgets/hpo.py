"""The HPO race of lesson 11: pick search strategies and a budget, watch their best-so-far validation accuracy
(mean over seeds, +-1 std band) from a recorded race.

The race is ``bigtrain_lab.hpo.race(...)``'s result: the lesson's own fast run, or ``bench/results/hpo.json``
(``python bench/hpo.py``) read by the notebook and handed in (the widget reads no file).
``bigtrain_lab.hpo.race_figure_data`` is the plain function the unit tests call; ``HPORace`` only draws it:
a SelectMultiple "strategies", an IntSlider "budget" (in full-trial equivalents), an HTML readout (best at the
budget per strategy) and a plotly FigureWidget (one line and band per strategy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from bigtrain_lab.hpo import race_figure_data

__all__ = ["HPORace"]

_COLORS = {"grid": "#7f7f7f", "random": "#1f77b4", "tpe": "#d62728", "halving": "#2ca02c", "hyperband": "#9467bd"}


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


class HPORace(widgets.VBox):
    """Best-so-far curves of the chosen strategies of a recorded race, up to the chosen budget."""

    def __init__(self, results: Mapping[str, Any], *, strategies: Sequence[str] | None = None,
                 budget: int | None = None) -> None:
        self.results = results
        names = list(results["strategies"])
        n = len(results["budgets"])
        self.strategies = widgets.SelectMultiple(description="strategies", options=names,
                                                 value=tuple(strategies or names), rows=min(len(names), 5))
        self.budget = widgets.IntSlider(description="budget", min=1, max=n, value=budget or n,
                                        continuous_update=False)
        self.readout = widgets.HTML()
        self.figure = go.FigureWidget()
        self.figure.update_layout(width=760, height=380, margin={"l": 60, "r": 20, "t": 50, "b": 50},
                                  xaxis_title=f"budget (trials of {results['max_epochs']} epochs; the pruners "
                                              "spend it in epochs)",
                                  yaxis_title="best validation accuracy so far")
        super().__init__(children=[widgets.HBox([self.strategies, self.budget]), self.readout, self.figure])
        self._show()
        self.strategies.observe(lambda _change: self._show(), names="value")
        self.budget.observe(lambda _change: self._show(), names="value")

    def data(self) -> dict[str, Any]:
        return race_figure_data(self.results, list(self.strategies.value), self.budget.value)

    def _show(self) -> None:
        d = self.data()
        rows = "".join(f"<tr><td>{s}</td><td>{v['mean']:.3f} &plusmn; {v['std']:.3f}</td></tr>"
                       for s, v in d["at_budget"].items())
        self.readout.value = (f"best validation accuracy at budget {self.budget.value} (mean &plusmn; std over "
                              f"{d['seeds']} seeds):<table>{rows or '<tr><td>pick a strategy</td></tr>'}</table>")
        traces = []
        for s, v in d["series"].items():
            color = _COLORS.get(s, "#8c564b")
            traces.append(go.Scatter(x=d["x"] + d["x"][::-1], y=v["high"] + v["low"][::-1], fill="toself",
                                     fillcolor=_rgba(color, 0.15), line={"width": 0}, hoverinfo="skip",
                                     showlegend=False, name=f"{s} band"))
            traces.append(go.Scatter(x=d["x"], y=v["mean"], name=s, mode="lines+markers", line={"color": color}))
        with self.figure.batch_update():
            self.figure.data = ()
            if traces:
                self.figure.add_traces(traces)
            self.figure.layout.title = f"HPO race: best so far, mean +- std over {d['seeds']} seeds"
