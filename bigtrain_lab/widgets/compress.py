"""Trade-off explorer of the compression lesson: pick a knob (unstructured or structured sparsity, weight
bits, SVD rank) and a value, read accuracy, size and latency, measured, from a sweep.

The sweep is ``bigtrain_lab.compress.experiments.sweep(...)``: computed by the lesson (fast mode) or
cached in ``bench/results/compression_sweep.json`` by ``python bench/compression.py``. ``tradeoff_view``
and ``tradeoff_curves`` are the plain functions the unit tests call; ``TradeoffExplorer`` only draws them:
a Dropdown "knob", a SelectionSlider "value", a Checkbox "fine-tuned", an HTML readout ``bt-tradeoff`` and
a plotly FigureWidget (accuracy vs size, one trace per knob and a "current" marker).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

__all__ = ["KNOBS", "TradeoffExplorer", "TradeoffView", "load_sweep", "tradeoff_curves",
           "tradeoff_explorer", "tradeoff_view"]

#: knob label -> key of the sweep
KNOBS = {"unstructured sparsity": "unstructured", "structured sparsity": "structured", "weight bits": "bits",
         "SVD rank": "rank"}


def load_sweep(path: str | Path) -> dict[str, Any]:
    """The sweep saved by ``bench/compression.py`` at ``path`` (in the repository:
    ``bench/results/compression_sweep.json``; the package reads no file outside itself on its own)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: run `python bench/compression.py` to make it")
    return json.loads(p.read_text())


@dataclass(frozen=True)
class TradeoffView:
    """One point of the sweep, next to the dense fp32 model."""

    knob: str
    value: float
    accuracy: float
    dense_accuracy: float
    size_bytes: float
    dense_size_bytes: float
    latency_ms_b64: float
    dense_latency_ms_b64: float
    finetuned: bool

    @property
    def compression(self) -> float:
        """dense size / this size (x times smaller)."""
        return self.dense_size_bytes / self.size_bytes

    @property
    def speedup(self) -> float:
        """dense latency / this latency at batch 64 (NaN where no kernel runs this format)."""
        return self.dense_latency_ms_b64 / self.latency_ms_b64 if self.latency_ms_b64 == self.latency_ms_b64 \
            else float("nan")


def _rows(sweep: dict[str, Any], knob: str) -> list[dict[str, Any]]:
    if knob not in KNOBS:
        raise ValueError(f"knob must be one of {list(KNOBS)}, got {knob!r}")
    key = KNOBS[knob]
    if key not in sweep or not sweep[key]:
        raise ValueError(f"the sweep has no {key!r} rows")
    return sweep[key]


def _accuracy(row: dict[str, Any], finetuned: bool) -> float:
    return float(row["accuracy_finetuned"] if finetuned and "accuracy_finetuned" in row else row["accuracy"])


def _size(row: dict[str, Any], knob: str) -> float:
    # unstructured pruning keeps dense tensors: what it saves shows only once compressed (gzip)
    return float(row["gzip_bytes"] if knob == "unstructured sparsity" else row["size_bytes"])


def tradeoff_view(sweep: dict[str, Any], knob: str, value: float, *, finetuned: bool = True) -> TradeoffView:
    """The measured point of ``knob`` at ``value`` (which must be one of the sweep's values). Size: bytes on
    disk; for unstructured sparsity the gzip of the file (the tensors themselves stay dense)."""
    rows = _rows(sweep, knob)
    match = [r for r in rows if math.isclose(float(r["value"]), float(value))]
    if not match:
        raise ValueError(f"{knob} = {value!r} is not in the sweep; values: {[r['value'] for r in rows]}")
    row, dense = match[0], sweep["dense"]
    return TradeoffView(knob, float(value), _accuracy(row, finetuned), float(dense["accuracy"]), _size(row, knob),
                        float(dense["size_bytes"]), float(row.get("latency_ms_b64", float("nan"))),
                        float(dense["latency_ms_b64"]), finetuned)


def tradeoff_curves(sweep: dict[str, Any], *, finetuned: bool = True) -> dict[str, dict[str, list[float]]]:
    """For each knob: ``{"value": [...], "size_ratio": [...], "accuracy": [...]}`` (size relative to dense)."""
    dense = float(sweep["dense"]["size_bytes"])
    out = {}
    for knob, key in KNOBS.items():
        if not sweep.get(key):
            continue
        rows = sweep[key]
        out[knob] = {"value": [float(r["value"]) for r in rows],
                     "size_ratio": [_size(r, knob) / dense for r in rows],
                     "accuracy": [_accuracy(r, finetuned) for r in rows]}
    return out


def readout_html(view: TradeoffView) -> str:
    """The numbers of one point as HTML (class ``bt-tradeoff``)."""
    lat = "no int kernel for this width (simulated)" if view.latency_ms_b64 != view.latency_ms_b64 else \
        f"{view.latency_ms_b64:.3f} ms (dense {view.dense_latency_ms_b64:.3f} ms, x{view.speedup:.2f})"
    return (f'<div class="bt-tradeoff"><b>{view.knob} = {view.value:g}</b>'
            f"{' after fine-tuning' if view.finetuned else ''}<br>"
            f"accuracy {view.accuracy:.3f} (dense {view.dense_accuracy:.3f}, "
            f"{100 * (view.accuracy - view.dense_accuracy):+.1f} points)<br>"
            f"size {view.size_bytes / 1024:,.1f} KiB (dense {view.dense_size_bytes / 1024:,.1f} KiB, "
            f"{view.compression:.1f}x smaller)<br>latency at batch 64: {lat}</div>")


def _figure(sweep: dict[str, Any], finetuned: bool) -> go.FigureWidget:
    fig = go.FigureWidget()
    for knob, curve in tradeoff_curves(sweep, finetuned=finetuned).items():
        fig.add_scatter(x=curve["size_ratio"], y=curve["accuracy"], mode="lines+markers", name=knob,
                        text=[f"{knob} = {v:g}" for v in curve["value"]], hoverinfo="text+x+y")
    fig.add_scatter(x=[], y=[], mode="markers", name="current",
                    marker=dict(size=16, symbol="circle-open", line=dict(width=3)))
    fig.update_layout(xaxis_title="size / dense size (log)", yaxis_title="test accuracy", xaxis_type="log",
                      height=420, width=700, margin=dict(l=50, r=20, t=30, b=40))
    return fig


class TradeoffExplorer(widgets.VBox):
    """``knob`` (Dropdown), ``value`` (SelectionSlider), ``finetuned`` (Checkbox), ``readout`` (HTML) and
    ``figure`` (FigureWidget); every change recomputes ``tradeoff_view`` and moves the marker."""

    def __init__(self, sweep: dict[str, Any], *, knob: str = "unstructured sparsity") -> None:
        self.sweep = sweep
        rows = _rows(sweep, knob)
        self.knob = widgets.Dropdown(description="knob", options=[k for k, v in KNOBS.items() if sweep.get(v)],
                                     value=knob)
        self.value = widgets.SelectionSlider(description="value", options=[r["value"] for r in rows],
                                             continuous_update=False, layout=widgets.Layout(width="480px"))
        self.finetuned = widgets.Checkbox(description="fine-tuned", value=True)
        self.readout = widgets.HTML()
        self.figure = _figure(sweep, True)
        super().__init__(children=[widgets.HBox([self.knob, self.finetuned]), self.value, self.readout,
                                   self.figure])
        self._show()
        self.knob.observe(self._on_knob, names="value")
        self.value.observe(lambda _: self._show(), names="value")
        self.finetuned.observe(self._on_finetuned, names="value")

    @property
    def view(self) -> TradeoffView:
        return tradeoff_view(self.sweep, self.knob.value, self.value.value, finetuned=self.finetuned.value)

    def _on_knob(self, change: dict) -> None:
        options = [r["value"] for r in _rows(self.sweep, change["new"])]
        self.value.unobserve_all("value")
        self.value.options = options
        self.value.value = options[len(options) // 2]
        self.value.observe(lambda _: self._show(), names="value")
        self._show()

    def _on_finetuned(self, change: dict) -> None:
        curves = tradeoff_curves(self.sweep, finetuned=change["new"])
        with self.figure.batch_update():
            for trace in self.figure.data:
                if trace.name in curves:
                    trace.y = curves[trace.name]["accuracy"]
        self._show()

    def _show(self) -> None:
        view = self.view
        self.readout.value = readout_html(view)
        marker = next(self.figure.select_traces({"name": "current"}))
        with self.figure.batch_update():
            marker.x, marker.y = [view.size_bytes / view.dense_size_bytes], [view.accuracy]


def tradeoff_explorer(sweep: dict[str, Any], *, knob: str = "unstructured sparsity") -> TradeoffExplorer:
    """Interactive trade-off explorer over ``sweep`` (``load_sweep(path)`` or ``experiments.sweep(...)``)."""
    return TradeoffExplorer(sweep, knob=knob)
