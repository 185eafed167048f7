"""The regularization explorer: ``explorer_data`` (the plain function) and the widget drawing it, on a small
synthetic sweep in ``bigtrain_lab.regularization.sweep``'s format (the real sweep is trained by the lesson)."""

import pytest

from bigtrain_lab.regularization import HIST_EDGES, explorer_data
from bigtrain_lab.widgets.regularization import RegularizationExplorer
from tests.widget_cases import synthetic_sweep


@pytest.fixture(scope="module")
def sweep():
    return synthetic_sweep()


def test_explorer_data_pairs_the_point_with_the_unregularized_run(sweep):
    d = explorer_data(sweep, weight_decay=1.0, dropout=0.5, label_smoothing=0.1)
    run, base = sweep["runs"]["wd=1|p=0.5|ls=0.1"], sweep["runs"]["wd=0|p=0|ls=0"]
    assert d["curves"] == {"train": run["train_loss"], "val": run["val_loss"]}
    assert d["baseline_curves"]["val"] == base["val_loss"]
    assert d["hist"]["counts"] == run["hist_counts"] and len(d["hist"]["centres"]) == len(HIST_EDGES) - 1
    assert d["hist"]["centres"][0] == pytest.approx((HIST_EDGES[0] + HIST_EDGES[1]) / 2)
    assert f"{run['final']['val_accuracy']:.3f}" in d["summary"] and f"{base['final']['norm']:.1f}" in d["summary"]
    acc = explorer_data(sweep, weight_decay=0.0, dropout=0.0, label_smoothing=0.0, metric="acc")
    assert acc["curves"]["val"] == base["val_acc"] and acc["curves"] == acc["baseline_curves"]


def test_explorer_data_refuses_points_and_metrics_it_does_not_have(sweep):
    with pytest.raises(KeyError, match="weight_decay"):
        explorer_data(sweep, weight_decay=0.3, dropout=0.0, label_smoothing=0.0)
    with pytest.raises(ValueError, match="metric"):
        explorer_data(sweep, weight_decay=0.0, dropout=0.0, label_smoothing=0.0, metric="f1")


def _curves(w):
    return {t.name: list(t.y) for t in w.figure.data if t.type == "scatter"}


def test_the_widget_draws_what_explorer_data_says_and_redraws(sweep):
    w = RegularizationExplorer(sweep, dropout=0.5)
    d = explorer_data(sweep, weight_decay=0.0, dropout=0.5, label_smoothing=0.0)
    assert _curves(w)["val loss"] == pytest.approx(d["curves"]["val"])
    assert [t.type for t in w.figure.data].count("bar") == 2 and w.readout.value == d["summary"]
    before = w.readout.value
    w.weight_decay.value = 1.0
    assert w.readout.value != before
    assert _curves(w)["val loss"] == pytest.approx(sweep["runs"]["wd=1|p=0.5|ls=0"]["val_loss"])
    w.metric.value = "acc"
    assert _curves(w)["val accuracy"] == pytest.approx(sweep["runs"]["wd=1|p=0.5|ls=0"]["val_acc"])
    w.label_smoothing.value = 0.1
    assert "wd=1, p=0.5, ls=0.1" in w.figure.layout.title.text
    assert w.figure.layout.width <= 840
