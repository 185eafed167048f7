"""The trade-off explorer: the plain view functions on a small synthetic sweep and on the cached one,
and the widget's wiring (set the controls programmatically, never through a browser)."""

import json
import math

import plotly.graph_objects as go
import pytest

from bigtrain_lab.widgets.compress import (
    KNOBS,
    TradeoffExplorer,
    load_sweep,
    readout_html,
    tradeoff_curves,
    tradeoff_explorer,
    tradeoff_view,
)


@pytest.fixture
def sweep():
    return {
        "dense": {"accuracy": 0.97, "size_bytes": 1000.0, "params": 250, "latency_ms_b64": 2.0},
        "unstructured": [
            {"value": 0.0, "accuracy": 0.97, "accuracy_finetuned": 0.97, "size_bytes": 1000, "gzip_bytes": 900,
             "latency_ms_b64": 2.0},
            {"value": 0.9, "accuracy": 0.5, "accuracy_finetuned": 0.96, "size_bytes": 1000, "gzip_bytes": 200,
             "latency_ms_b64": 2.1}],
        "structured": [{"value": 0.5, "accuracy": 0.8, "accuracy_finetuned": 0.95, "size_bytes": 400,
                        "latency_ms_b64": 1.0}],
        "bits": [{"value": 8, "accuracy": 0.97, "size_bytes": 250, "latency_ms_b64": 1.0},
                 {"value": 4, "accuracy": 0.9, "size_bytes": 125, "latency_ms_b64": float("nan")}],
        "rank": [{"value": 16, "accuracy": 0.6, "accuracy_finetuned": 0.93, "size_bytes": 300,
                  "latency_ms_b64": 0.5}],
    }


def test_view_reads_the_measured_point(sweep):
    v = tradeoff_view(sweep, "unstructured sparsity", 0.9)
    # unstructured: the gzipped file against the gzipped dense file (sparsity 0's, the same model)
    assert v.accuracy == 0.96 and v.size_bytes == 200 and v.dense_size_bytes == 900 and v.compression == 4.5
    assert "200.0 KiB gzipped" not in readout_html(v) and "KiB gzipped (dense" in readout_html(v)
    assert math.isclose(v.speedup, 2.0 / 2.1)
    assert tradeoff_view(sweep, "unstructured sparsity", 0.9, finetuned=False).accuracy == 0.5
    b4 = tradeoff_view(sweep, "weight bits", 4)
    assert b4.accuracy == 0.9 and b4.compression == 8.0 and math.isnan(b4.speedup)
    assert "no int kernel" in readout_html(b4)
    assert "+0.0 points" in readout_html(tradeoff_view(sweep, "weight bits", 8))
    with pytest.raises(ValueError, match="knob"):
        tradeoff_view(sweep, "pruning", 0.5)
    with pytest.raises(ValueError, match="not in the sweep"):
        tradeoff_view(sweep, "SVD rank", 7)


def test_curves_follow_the_finetuned_switch(sweep):
    curves = tradeoff_curves(sweep)
    assert set(curves) == set(KNOBS)
    assert curves["unstructured sparsity"]["size_ratio"] == [1.0, 200 / 900]
    assert curves["SVD rank"]["accuracy"] == [0.93]
    assert tradeoff_curves(sweep, finetuned=False)["SVD rank"]["accuracy"] == [0.6]


def test_widget_wiring(sweep):
    w = tradeoff_explorer(sweep)
    assert isinstance(w, TradeoffExplorer) and isinstance(w.figure, go.FigureWidget)
    marker = next(w.figure.select_traces({"name": "current"}))
    w.value.value = 0.9
    assert "unstructured sparsity = 0.9" in w.readout.value and marker.y == (0.96,)
    w.finetuned.value = False
    assert marker.y == (0.5,)
    w.finetuned.value = True
    w.knob.value = "SVD rank"
    assert list(w.value.options) == [16] and "SVD rank = 16" in w.readout.value
    assert marker.x == (0.3,)


def test_unpruned_point_reads_as_the_same_size(sweep):
    """Sparsity 0 once read "1.1x smaller": the gzipped file against the raw dense file."""
    html = readout_html(tradeoff_view(sweep, "unstructured sparsity", 0.0))
    assert "the same size as dense" in html and "gzipped" in html and "x smaller" not in html
    sweep["dense"]["gzip_bytes"] = 800.0  # a sweep that records the dense gzip uses it
    v = tradeoff_view(sweep, "unstructured sparsity", 0.0)
    assert v.dense_size_bytes == 800.0 and "1.12x LARGER" in readout_html(v)


def test_every_control_agrees_after_a_knob_change():
    """The slider's index, its value, the readout and the marker describe one state after every knob
    change. The old ``_on_knob`` called ``unobserve_all("value")``, which also dropped ipywidgets' own
    value -> index observer: the slider stayed at index 0 (2 bits) while the readout said 5 bits."""
    sweep = {"dense": {"accuracy": 0.9, "size_bytes": 1000.0, "gzip_bytes": 900.0, "latency_ms_b64": 1.0},
             "unstructured": [{"value": v, "accuracy": 0.9 - v / 10, "size_bytes": 1000, "gzip_bytes": 900 - 500 * v,
                               "latency_ms_b64": 1.0} for v in (0.0, 0.5, 0.9)],
             "structured": [{"value": v, "accuracy": 0.9 - v / 5, "size_bytes": 1000 * (1 - v),
                             "latency_ms_b64": 1.0 - v / 2} for v in (0.25, 0.5, 0.75)],
             "bits": [{"value": b, "accuracy": 0.5 + b / 20, "size_bytes": 1000 * b / 32,
                       "latency_ms_b64": float("nan")} for b in (2, 3, 4, 5, 6, 8)],
             "rank": [{"value": r, "accuracy": 0.6 + r / 1000, "size_bytes": 4 * r, "latency_ms_b64": 0.5}
                      for r in (2, 4, 8, 16, 32, 64, 128, 256)]}
    w = tradeoff_explorer(sweep)
    marker = next(w.figure.select_traces({"name": "current"}))

    def agree():
        shown = w.value.options[w.value.index]
        view = tradeoff_view(sweep, w.knob.value, shown, finetuned=w.finetuned.value)
        assert shown == w.value.value, (w.knob.value, shown, w.value.value)
        assert f"{w.knob.value} = {shown:g}</b>" in w.readout.value
        assert marker.x == (view.size_bytes / view.dense_size_bytes,) and marker.y == (view.accuracy,)

    for knob in ("weight bits", "SVD rank", "structured sparsity", "unstructured sparsity", "weight bits"):
        w.knob.value = knob
        agree()
        for value in w.value.options:
            w.value.value = value
            agree()
        w.value.index = 1  # what the browser sends when the slider is dragged
        agree()


def test_the_cached_sweep_is_complete_and_says_how_it_was_made(root):
    path = root / "bench" / "results" / "compression_sweep.json"
    data = load_sweep(path)
    raw = json.loads(path.read_text())
    assert raw["command"].startswith("python bench/compression.py")
    for key in KNOBS.values():
        assert data[key], key
    for knob, key in KNOBS.items():
        for row in data[key]:
            tradeoff_view(data, knob, row["value"])
    with pytest.raises(FileNotFoundError, match="bench/compression.py"):
        load_sweep("/nonexistent/sweep.json")
