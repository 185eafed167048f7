"""The ensemble builder: it draws ``ensemble_report`` for the ticked members, and redraws when a tick changes."""

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest

from bigtrain_lab.ensemble import ensemble_report
from bigtrain_lab.widgets.ensemble import EnsembleBuilder


def _members():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 80)
    noisy = {name: np.eye(3)[np.where(rng.random(80) < p_wrong, rng.integers(0, 3, 80), y)] * 0.7 + 0.1
             for name, p_wrong in (("a", 0.2), ("b", 0.4), ("c", 0.6))}
    return noisy, y


def test_builder_draws_the_report():
    probas, y = _members()
    box = EnsembleBuilder(probas, y)
    assert isinstance(box, widgets.VBox) and isinstance(box.figure, go.FigureWidget)
    assert list(box.checks) == ["a", "b", "c"] and box.selected == ["a", "b", "c"]
    r = ensemble_report(probas, y, ["a", "b", "c"])
    bars, heat = box.figure.data
    assert list(bars.x) == ["a", "b", "c", "hard vote", "soft vote"]
    assert list(bars.y) == pytest.approx([*r["members"].values(), r["hard"], r["soft"]])
    assert np.allclose(np.array(heat.z), r["disagreement"], atol=1e-3)
    assert f"{r['soft']:.3f}" in box.summary.value and f"{r['mean_disagreement']:.3f}" in box.summary.value
    assert box.figure.layout.width <= 840


def test_unticking_redraws_and_empty_selection_is_shown_not_raised():
    probas, y = _members()
    box = EnsembleBuilder(probas, y, selected=["a", "c"])
    assert box.selected == ["a", "c"] and list(box.figure.data[0].x) == ["a", "c", "hard vote", "soft vote"]
    box.checks["c"].value = False
    assert list(box.figure.data[0].x) == ["a", "hard vote", "soft vote"]
    assert np.array(box.figure.data[1].z).shape == (1, 1)
    box.checks["a"].value = False
    assert box.selected == [] and "at least one" in box.summary.value and len(box.figure.data[0].x) == 0
    box.checks["b"].value = True
    r = ensemble_report(probas, y, ["b"])
    assert list(box.figure.data[0].y) == pytest.approx([r["members"]["b"], r["hard"], r["soft"]])


def test_builder_rejects_unknown_members():
    probas, y = _members()
    with pytest.raises(ValueError):
        EnsembleBuilder(probas, y, selected=["a", "z"])
