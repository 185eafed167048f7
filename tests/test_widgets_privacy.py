"""The epsilon dial (``bigtrain_lab.widgets.privacy.EpsilonDial``) follows its slider."""

from tests.test_privacy_experiments import tiny_sweep


def test_dial_follows_its_slider():
    from bigtrain_lab.widgets.privacy import EpsilonDial

    w = EpsilonDial(tiny_sweep(), epsilon=1.0)
    before, title = w.readout.value, w.figure.layout.title.text
    assert "epsilon = 1" in before and "noise multiplier 4.50" in title
    w.epsilon.value = 8.0
    assert w.readout.value != before and "epsilon = 8" in w.readout.value
    assert w.figure.layout.title.text == "epsilon = 8, noise multiplier 1.00"
    marked = [t for t in w.figure.data if t.name == "chosen epsilon"]
    assert [tuple(t.x) for t in marked] == [(8.0,), (8.0,)] and marked[0].y == (0.9,)


def test_dial_starts_at_the_smallest_epsilon():
    from bigtrain_lab.widgets.privacy import EpsilonDial

    w = EpsilonDial(tiny_sweep())
    assert w.epsilon.value == 1.0 and w.data()["key"] == "1"


def test_dial_figure_and_layout_pass_the_lints():
    from bigtrain_lab.widgets.privacy import EpsilonDial
    from tests import figure_lint

    w = EpsilonDial(tiny_sweep(), epsilon=8.0)
    assert figure_lint.lint_figure(w.figure) == [] and figure_lint.control_layout_problems(w) == []
    assert figure_lint.text_problems(w.readout.value) == []
