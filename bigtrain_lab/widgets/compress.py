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
    """One point of the sweep, next to the dense fp32 model. For unstructured sparsity both sizes are
    gzipped files (``gzipped``): the zeros save nothing until a compressor sees them, and gzip alone already
    shrinks the dense fp32 file a little, so the pruned file is compared with the gzipped dense file."""

    knob: str
    value: float
    accuracy: float
    dense_accuracy: float
    size_bytes: float
    dense_size_bytes: float
    latency_ms_b64: float
    dense_latency_ms_b64: float
    finetuned: bool
    gzipped: bool = False

    @property
    def compression(self) -> float:
        """dense size / this size (x times smaller), both measured the same way (both gzipped or neither)."""
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


def _dense_size(sweep: dict[str, Any], knob: str) -> float:
    """The dense model's size measured like ``knob``'s points: gzipped for unstructured sparsity (from the
    sweep's ``dense.gzip_bytes``, or, in sweeps saved before that key existed, from the unpruned point at
    sparsity 0, which is the same model), else the file's bytes."""
    dense = sweep["dense"]
    if knob != "unstructured sparsity":
        return float(dense["size_bytes"])
    if "gzip_bytes" in dense:
        return float(dense["gzip_bytes"])
    for row in sweep.get("unstructured", []):
        if float(row["value"]) == 0.0:
            return float(row["gzip_bytes"])
    raise ValueError("the sweep has no gzipped size of the dense model (dense.gzip_bytes or sparsity 0)")


def tradeoff_view(sweep: dict[str, Any], knob: str, value: float, *, finetuned: bool = True) -> TradeoffView:
    """The measured point of ``knob`` at ``value`` (which must be one of the sweep's values). Size: bytes on
    disk; for unstructured sparsity the gzip of the file (the tensors themselves stay dense), compared with
    the gzip of the dense file."""
    rows = _rows(sweep, knob)
    match = [r for r in rows if math.isclose(float(r["value"]), float(value))]
    if not match:
        raise ValueError(f"{knob} = {value!r} is not in the sweep; values: {[r['value'] for r in rows]}")
    row, dense = match[0], sweep["dense"]
    return TradeoffView(knob, float(value), _accuracy(row, finetuned), float(dense["accuracy"]), _size(row, knob),
                        _dense_size(sweep, knob), float(row.get("latency_ms_b64", float("nan"))),
                        float(dense["latency_ms_b64"]), finetuned, gzipped=knob == "unstructured sparsity")


def tradeoff_curves(sweep: dict[str, Any], *, finetuned: bool = True) -> dict[str, dict[str, list[float]]]:
    """For each knob: ``{"value": [...], "size_ratio": [...], "accuracy": [...]}`` (size relative to the dense
    model's, measured the same way: gzipped for unstructured sparsity)."""
    out = {}
    for knob, key in KNOBS.items():
        if not sweep.get(key):
            continue
        rows = sweep[key]
        out[knob] = {"value": [float(r["value"]) for r in rows],
                     "size_ratio": [_size(r, knob) / _dense_size(sweep, knob) for r in rows],
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
            f"size {_size_text(view)}<br>latency at batch 64: {lat}</div>")


def _size_text(view: TradeoffView) -> str:
    how = " gzipped" if view.gzipped else ""
    ratio = view.compression
    # 3 significant figures: "1.0x smaller" would hide a file 4 % LARGER or smaller
    verdict = "the same size as dense" if math.isclose(ratio, 1.0, abs_tol=5e-3) else \
        f"{ratio:.3g}x smaller" if ratio > 1 else f"{1 / ratio:.3g}x LARGER"
    return (f"{view.size_bytes / 1024:,.1f} KiB{how} (dense {view.dense_size_bytes / 1024:,.1f} KiB{how}): "
            f"{verdict}")


def _figure(sweep: dict[str, Any], finetuned: bool) -> go.FigureWidget:
    fig = go.FigureWidget()
    for knob, curve in tradeoff_curves(sweep, finetuned=finetuned).items():
        fig.add_scatter(x=curve["size_ratio"], y=curve["accuracy"], mode="lines+markers", name=knob,
                        text=[f"{knob} = {v:g}" for v in curve["value"]], hoverinfo="text+x+y")
    fig.add_scatter(x=[], y=[], mode="markers", name="current",
                    marker=dict(size=16, symbol="circle-open", line=dict(width=3)))
    fig.update_layout(xaxis_title="size / dense size (log; unstructured: gzipped / gzipped dense)", yaxis_title="test accuracy", xaxis_type="log",
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
        self.value.observe(self._on_value, names="value")
        self.finetuned.observe(self._on_finetuned, names="value")

    @property
    def view(self) -> TradeoffView:
        return tradeoff_view(self.sweep, self.knob.value, self.value.value, finetuned=self.finetuned.value)

    def _on_value(self, change: dict) -> None:
        self._show()

    def _on_knob(self, change: dict) -> None:
        options = [r["value"] for r in _rows(self.sweep, change["new"])]
        # Detach only OUR handler while the options change (the old value may not be in the new options).
        # ``unobserve_all("value")`` would also drop ipywidgets' own value -> index observer of the
        # selection widget: the slider would then stay at index 0 while the readout described the value.
        self.value.unobserve(self._on_value, names="value")
        try:
            self.value.options = options
            self.value.value = options[len(options) // 2]
        finally:
            self.value.observe(self._on_value, names="value")
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
