"""The HPO race widget: a thin view over bigtrain_lab.hpo.race_figure_data, driven programmatically on a small
synthetic race (the curves are tested in tests/test_hpo_search.py)."""

import pytest

from bigtrain_lab.hpo import race_figure_data
from bigtrain_lab.widgets.hpo import HPORace
from tests.widget_cases import synthetic_race


@pytest.fixture
def results():
    return synthetic_race()


def _lines(w):
    return {t.name: list(t.y) for t in w.figure.data if not t.name.endswith("band")}


def test_it_draws_a_line_and_a_band_per_chosen_strategy(results):
    w = HPORace(results, strategies=["random", "tpe"], budget=4)
    d = race_figure_data(results, ["random", "tpe"], 4)
    assert _lines(w) == {s: pytest.approx(d["series"][s]["mean"]) for s in ("random", "tpe")}
    assert len(w.figure.data) == 4 and list(w.figure.data[1].x) == [1, 2, 3, 4]
    assert "random" in w.readout.value and f"{d['at_budget']['tpe']['mean']:.3f}" in w.readout.value
    assert w.figure.layout.width <= 840


def test_the_controls_redraw(results):
    w = HPORace(results)
    assert set(_lines(w)) == {"grid", "random", "tpe", "halving"} and w.budget.value == 6
    w.budget.value = 2
    assert all(len(y) == 2 for y in _lines(w).values())
    assert f"{race_figure_data(results, ['grid'], 2)['at_budget']['grid']['mean']:.3f}" in w.readout.value
    w.strategies.value = ("halving",)
    assert set(_lines(w)) == {"halving"}
    w.strategies.value = ()
    assert len(w.figure.data) == 0 and "pick a strategy" in w.readout.value
