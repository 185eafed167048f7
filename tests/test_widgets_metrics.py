"""The threshold explorer: the pure view against scikit-learn, and the widget's wiring."""

import dataclasses
import re

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_curve,
)

from bigtrain_lab.widgets import threshold_explorer, threshold_view
from bigtrain_lab.widgets.metrics import ThresholdExplorer, ThresholdView


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    y_true = (rng.random(400) < 0.25).astype(int)
    y_score = np.clip(0.35 * y_true + rng.normal(0.35, 0.18, 400), 0, 1)
    y_score[:10] = 0.5  # some scores exactly at a slider position
    return y_true, y_score


def test_view_fields_are_the_contract():
    names = [f.name for f in dataclasses.fields(ThresholdView)]
    assert names == ["threshold", "tp", "fp", "fn", "tn", "precision", "recall", "f1", "fpr", "tpr",
                     "accuracy"]


@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.33, 0.5, 0.62, 0.9, 1.0])
def test_threshold_view_matches_sklearn(scored, threshold):
    y_true, y_score = scored
    view = threshold_view(y_true, y_score, threshold)
    y_pred = (y_score >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", labels=[0, 1],
                                                 zero_division=0)
    assert (view.tp, view.fp, view.fn, view.tn) == (tp, fp, fn, tn)
    assert (view.precision, view.recall, view.f1) == pytest.approx((p, r, f))
    assert view.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert view.fpr == pytest.approx(fp / (fp + tn)) and view.tpr == view.recall
    assert view.threshold == threshold


def test_threshold_view_points_lie_on_sklearn_curves(scored):
    y_true, y_score = scored
    fpr, tpr, thresholds = roc_curve(y_true, y_score, drop_intermediate=False)
    for t, f, r in list(zip(thresholds, fpr, tpr, strict=True))[1:]:
        view = threshold_view(y_true, y_score, float(t))
        assert (view.fpr, view.tpr) == pytest.approx((f, r))


def cells(html):
    return {k: int(v) for k, v in re.findall(r'<td data-cell="(tp|fp|fn|tn)">(\d+)</td>', html)}


def trace(figure, name):
    (found,) = [t for t in figure.data if t.name == name]
    return found


def test_widget_has_the_dom_contract(scored):
    y_true, y_score = scored
    box = threshold_explorer(y_true, y_score, threshold=0.4)
    assert isinstance(box, widgets.VBox) and isinstance(box, ThresholdExplorer)
    assert list(box.children) == [box.slider, box.table, box.figure]
    slider = box.slider
    assert isinstance(slider, widgets.FloatSlider)
    assert (slider.description, slider.min, slider.max, slider.step, slider.value) == ("threshold", 0.0, 1.0,
                                                                                        0.01, 0.4)
    assert slider.continuous_update is False
    assert isinstance(box.table, widgets.HTML)
    assert '<table class="bt-confusion">' in box.table.value
    assert re.search(r'class="bt-scores">[^<]*precision[^<]*recall[^<]*F1[^<]*accuracy', box.table.value)
    assert isinstance(box.figure, go.FigureWidget)
    names = [t.name for t in box.figure.data]
    assert {"ROC", "PR", "current (ROC)", "current (PR)"} <= set(names)
    assert trace(box.figure, "ROC").xaxis == "x" and trace(box.figure, "PR").xaxis == "x2"  # side by side
    assert trace(box.figure, "current (ROC)").xaxis == "x" and trace(box.figure, "current (PR)").xaxis == "x2"


def test_curves_are_sklearns(scored):
    y_true, y_score = scored
    box = threshold_explorer(y_true, y_score)
    fpr, tpr, _ = roc_curve(y_true, y_score)
    precision, recall, _ = precision_recall_curve(y_true, y_score)
    np.testing.assert_allclose(trace(box.figure, "ROC").x, fpr)
    np.testing.assert_allclose(trace(box.figure, "ROC").y, tpr)
    np.testing.assert_allclose(trace(box.figure, "PR").x, recall)
    np.testing.assert_allclose(trace(box.figure, "PR").y, precision)


def assert_shows(box, view):
    assert cells(box.table.value) == {"tp": view.tp, "fp": view.fp, "fn": view.fn, "tn": view.tn}
    assert f"precision {view.precision:.3f}" in box.table.value
    assert f"recall {view.recall:.3f}" in box.table.value
    assert f"F1 {view.f1:.3f}" in box.table.value
    assert f"accuracy {view.accuracy:.3f}" in box.table.value
    roc, pr = trace(box.figure, "current (ROC)"), trace(box.figure, "current (PR)")
    assert (tuple(roc.x), tuple(roc.y)) == ((view.fpr,), (view.tpr,))
    assert (tuple(pr.x), tuple(pr.y)) == ((view.recall,), (view.precision,))


def test_moving_the_slider_updates_table_and_markers(scored):
    y_true, y_score = scored
    box = threshold_explorer(y_true, y_score)
    assert_shows(box, threshold_view(y_true, y_score, 0.5))
    shown = set()
    for value in (0.2, 0.45, 0.5, 0.73, 0.0, 1.0):
        box.slider.value = value
        view = threshold_view(y_true, y_score, value)
        assert box.view == view
        assert_shows(box, view)
        shown.add(tuple(cells(box.table.value).values()))
    assert len(shown) >= 5  # the view really changed


def test_explorer_rejects_what_the_slider_cannot_show():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        threshold_explorer([0, 1, 1], [-2.0, 0.3, 1.5])
    with pytest.raises(ValueError, match="both classes"):
        threshold_explorer([1, 1, 1], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\]"):
        threshold_explorer([0, 1], [0.2, 0.7], threshold=1.5)
    with pytest.raises(ValueError, match="different lengths"):
        threshold_explorer([0, 1], [0.2, 0.7, 0.1])
