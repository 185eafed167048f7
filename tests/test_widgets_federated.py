"""The federated viewer (bigtrain_lab.widgets.federated) follows its sliders; its plain function is tested in
tests/test_federated_simulate.py."""

from tests import figure_lint


def test_viewer_follows_its_sliders():
    from bigtrain_lab.widgets.federated import FederatedViewer

    w = FederatedViewer(alpha=0.1, local_steps=1, n_clients=3, rounds=5)
    before = w.readout.value
    assert "alpha 0.1, 1 local step:" in before
    assert len(w.figure.data) == 3 + 2 + 1  # clients, FedSGD, FedAvg, the histogram
    w.local_steps.value = 10
    assert "10 local steps" in w.readout.value and w.readout.value != before
    w.alpha.value = 100.0
    assert w.readout.value.startswith("alpha 100,")
    assert w.figure.layout.title.text == "alpha 100, 10 local steps"
    assert figure_lint.lint_figure(w.figure) == [] and figure_lint.control_layout_problems(w) == []
