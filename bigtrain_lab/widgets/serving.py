"""The batching explorer of lesson 13: pick the server's batching knobs and an arrival rate, see the latency
histogram of that load run against no batching, and p99 and throughput over every rate of the sweep.

The runs are a measured sweep (``bigtrain_lab.serving.sweep``'s schema; the lesson runs a short one, the
bench a long one); the widget runs nothing. ``bigtrain_lab.serving.sweep.explorer_data`` is the plain
function the unit tests call; ``BatchingExplorer`` only draws it: SelectionSliders "max_batch",
"max_wait_ms" and "arrival rate", an HTML readout and a plotly FigureWidget (left: the two latency
histograms; right: p99 latency and throughput against the offered rate, the chosen rate marked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bigtrain_lab.serving.sweep import explorer_data

__all__ = ["BatchingExplorer"]

_RUN, _BASE = "#1f77b4", "#7f7f7f"


def _slider(description: str, values: list[float], value: float | None) -> widgets.SelectionSlider:
    options = [(f"{v:g}", v) for v in values]
    index = 0 if value is None else values.index(value)
    return widgets.SelectionSlider(description=description, options=options, index=index, continuous_update=False,
                                   style={"description_width": "initial"}, layout=widgets.Layout(width="400px"))


class BatchingExplorer(widgets.VBox):
    """Latency histogram and rate curves of one batching setting of a load sweep, against no batching."""

    def __init__(self, sweep: Mapping[str, Any], *, max_batch: int | None = None, max_wait_ms: float | None = None,
                 rate: float | None = None) -> None:
        self.sweep = sweep
        batched = [c for c in sweep["configs"] if c["max_batch"] > 1] or list(sweep["configs"])
        batches = sorted({int(c["max_batch"]) for c in sweep["configs"]})
        waits = sorted({float(c["max_wait_ms"]) for c in batched})
        self.max_batch = _slider("max_batch", batches, max_batch if max_batch is not None else batches[-1])
        self.max_wait_ms = _slider("max_wait_ms", waits, max_wait_ms)
        rates = [float(r) for r in sweep["rates"]]
        self.rate = _slider("arrival rate (req/s)", rates, rate if rate is not None else rates[-1])
        self.readout = widgets.HTML()
        fig = make_subplots(rows=1, cols=2, column_widths=[0.5, 0.5], horizontal_spacing=0.14,
                            specs=[[{}, {"secondary_y": True}]],
                            subplot_titles=("latency of every request", "p99 and throughput vs offered rate"))
        fig.update_layout(width=820, height=420, margin={"l": 60, "r": 60, "t": 70, "b": 50},
                          legend={"orientation": "h", "y": -0.2}, barmode="overlay", bargap=0.05)
        fig.update_xaxes(title_text="latency (ms)", row=1, col=1)
        fig.update_yaxes(title_text="requests", row=1, col=1)
        fig.update_xaxes(title_text="offered rate (req/s)", type="log", row=1, col=2)
        fig.update_yaxes(title_text="p99 latency (ms)", type="log", row=1, col=2, secondary_y=False)
        fig.update_yaxes(title_text="served (req/s)", row=1, col=2, secondary_y=True)
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[widgets.HBox([self.max_batch, self.max_wait_ms]), self.rate, self.readout,
                                   self.figure])
        self._show()
        for control in (self.max_batch, self.max_wait_ms, self.rate):
            control.observe(lambda _change: self._show(), names="value")

    def _knobs(self) -> tuple[int, float]:
        max_batch = int(self.max_batch.value)
        return max_batch, (0.0 if max_batch == 1 else float(self.max_wait_ms.value))

    def data(self) -> dict[str, Any]:
        max_batch, wait = self._knobs()
        return explorer_data(self.sweep, max_batch=max_batch, max_wait_ms=wait, rate=self.rate.value)

    def _show(self) -> None:
        d = self.data()
        self.max_wait_ms.disabled = self._knobs()[0] == 1
        self.readout.value = d["summary"]
        traces = [
            go.Bar(x=d["hist"]["centres"], y=d["hist"]["baseline_counts"], name="no batching",
                   marker={"color": _BASE}, opacity=0.5),
            go.Bar(x=d["hist"]["centres"], y=d["hist"]["counts"], name="this setting", marker={"color": _RUN},
                   opacity=0.6),
        ]
        curves = [
            go.Scatter(x=d["rates"], y=d["baseline_p99"], name="p99, no batching", mode="lines+markers",
                       line={"color": _BASE}),
            go.Scatter(x=d["rates"], y=d["p99"], name="p99, this setting", mode="lines+markers",
                       line={"color": _RUN}),
        ]
        served = [
            go.Scatter(x=d["rates"], y=d["baseline_throughput"], name="served, no batching", mode="lines",
                       line={"color": _BASE, "dash": "dot"}),
            go.Scatter(x=d["rates"], y=d["throughput"], name="served, this setting", mode="lines",
                       line={"color": _RUN, "dash": "dot"}),
        ]
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(traces, rows=1, cols=1)
            self.figure.add_traces(curves, rows=1, cols=2, secondary_ys=[False, False])
            self.figure.add_traces(served, rows=1, cols=2, secondary_ys=[True, True])
            here = d["rates"].index(d["rate"])
            self.figure.add_trace(go.Scatter(x=[d["rate"]], y=[d["p99"][here]], name="chosen rate", mode="markers",
                                             marker={"color": "#d62728", "size": 12, "symbol": "circle-open"}),
                                  row=1, col=2, secondary_y=False)
            self.figure.layout.title = f"max_batch|max_wait_ms|rate = {d['key']}"
