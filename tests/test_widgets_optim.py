"""Lesson 02's widgets: the plain views against torch, and the wiring of the schedule and optimizer explorers."""

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from torch.optim import lr_scheduler

from bigtrain_lab.optim import OPTIMIZER_NAMES, SURFACES, run_trajectory
from bigtrain_lab.schedules import SCHEDULE_NAMES
from bigtrain_lab.widgets.optim import (
    OptimizerExplorer,
    optimizer_explorer,
    table_html,
    trajectory_figure,
    trajectory_view,
)
from bigtrain_lab.widgets.schedules import (
    DEFAULTS,
    USED_SETTINGS,
    ScheduleExplorer,
    schedule_explorer,
    schedule_view,
    summary_html,
)

# ---- schedules --------------------------------------------------------------------------------------


def test_schedule_view_step_is_steplr():
    view = schedule_view("step", total_steps=100, base_lr=0.1, step_size=30, gamma=0.1)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    expected = []
    for _ in range(100):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(view.lrs, expected, rtol=1e-12)
    assert view.torch_scheduler == "StepLR" and view.max_gap_to_torch < 1e-12
    assert view.peak_lr == 0.1 and view.final_lr == pytest.approx(1e-4)
    assert view.mean_lr == pytest.approx((30 * 0.1 + 30 * 0.01 + 30 * 1e-3 + 10 * 1e-4) / 100)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_schedule_view_every_schedule(name):
    view = schedule_view(name, total_steps=400, warmup_steps=40)
    assert view.steps.tolist() == list(range(400)) and view.lrs.shape == (400,)
    assert view.peak_lr <= DEFAULTS["base_lr"] * (1 + 1e-9)
    if view.torch_lrs is None:
        assert name in ("constant", "wsd") and view.max_gap_to_torch is None
    else:
        assert view.max_gap_to_torch < 1e-7
    assert set(USED_SETTINGS[name]) <= set(DEFAULTS)
    assert name in summary_html(view) and "bt-schedule-summary" in summary_html(view)


def test_schedule_view_warmup_and_decay_shapes():
    cos = schedule_view("warmup_cosine", total_steps=1000, warmup_steps=100, base_lr=1e-3, min_lr=1e-4)
    assert cos.lrs[0] == 0 and cos.lrs[100] == 1e-3 and cos.final_lr == pytest.approx(1e-4, rel=1e-4)
    assert np.all(np.diff(cos.lrs[:101]) > 0) and np.all(np.diff(cos.lrs[100:]) <= 0)
    wsd = schedule_view("wsd", total_steps=1000, warmup_steps=100, base_lr=1e-3, min_lr=0.0, decay_fraction=0.2)
    assert np.all(wsd.lrs[100:800] == 1e-3) and wsd.lrs[-1] < 1e-5
    # same peak, same final lr: WSD spends more of the run at the peak than cosine
    assert wsd.mean_lr > cos.mean_lr


def test_schedule_view_errors():
    with pytest.raises(ValueError, match="unknown schedule"):
        schedule_view("polynomial")
    with pytest.raises(ValueError, match="unknown settings"):
        schedule_view("step", T_max=10)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedule_view("warmup_cosine", total_steps=100, warmup_steps=100)


def _trace(fig, name):
    return next(fig.select_traces({"name": name}))


def test_schedule_explorer_wiring():
    explorer = schedule_explorer("step", total_steps=300, step_size=100, gamma=0.5, base_lr=0.1)
    assert isinstance(explorer, ScheduleExplorer) and isinstance(explorer.figure, go.FigureWidget)
    assert isinstance(explorer.dropdown, widgets.Dropdown) and explorer.dropdown.description == "schedule"
    assert set(explorer.sliders) == set(DEFAULTS)
    line = _trace(explorer.figure, "lr")
    assert list(line.y[:3]) == [0.1] * 3 and line.y[-1] == pytest.approx(0.025)
    assert explorer.sliders["min_lr"].disabled and not explorer.sliders["gamma"].disabled
    explorer.sliders["gamma"].value = 0.1
    assert _trace(explorer.figure, "lr").y[-1] == pytest.approx(0.001)
    assert "0.1" in explorer.summary.value or "1.000e-01" in explorer.summary.value
    explorer.dropdown.value = "wsd"
    assert len(_trace(explorer.figure, "torch.optim.lr_scheduler").x) == 0  # torch has no WSD
    assert explorer.sliders["gamma"].disabled and not explorer.sliders["decay_fraction"].disabled
    explorer.dropdown.value = "warmup_cosine"
    explorer.sliders["warmup_steps"].value = 400  # longer than the run: an error message, the curve stays
    assert "warmup_steps" in explorer.message.value and len(_trace(explorer.figure, "lr").y) == 300
    explorer.sliders["warmup_steps"].value = 30
    assert explorer.message.value == "" and _trace(explorer.figure, "lr").y[0] == 0


# ---- optimizer trajectories --------------------------------------------------------------------------


def test_trajectory_view_runs_torch_optimizers():
    view = trajectory_view("ill_conditioned", ("sgd", "adam"), lr_scale=0.5, steps=30)
    assert list(view.trajectories) == ["sgd", "adam"] and view.steps == 30
    direct = run_trajectory("ill_conditioned", "adam", lr=SURFACES["ill_conditioned"].lrs["adam"] * 0.5, steps=30)
    np.testing.assert_array_equal(view.trajectories["adam"].xy, direct.xy)
    rows = view.table()
    assert [r["optimizer"] for r in rows] == ["sgd", "adam"]
    assert rows[1]["final_loss"] == pytest.approx(direct.final_loss)
    assert rows[1]["distance_to_minimum"] == pytest.approx(float(np.linalg.norm(direct.xy[-1])))
    html = table_html(view)
    assert 'data-optimizer="sgd"' in html and "bt-trajectories" in html


def test_trajectory_view_lr_scale_can_diverge():
    view = trajectory_view("ill_conditioned", ("sgd",), lr_scale=2.0, steps=300)  # lr 0.36 > 2 / 10
    assert view.table()[0]["diverged"] is True


def test_trajectory_view_errors():
    with pytest.raises(ValueError, match="unknown surface"):
        trajectory_view("beale")
    with pytest.raises(ValueError, match="unknown optimizers"):
        trajectory_view("rosenbrock", ("lion",))
    with pytest.raises(ValueError, match="lr_scale"):
        trajectory_view("rosenbrock", lr_scale=0)


def test_trajectory_figure_has_one_trace_per_optimizer():
    view = trajectory_view("himmelblau", ("momentum", "rmsprop"), steps=50)
    fig = trajectory_figure(view, grid=30)
    names = [t.name for t in fig.data]
    assert names[1:1 + len(OPTIMIZER_NAMES)] == list(OPTIMIZER_NAMES)
    assert _trace(fig, "momentum").visible is True and _trace(fig, "adam").visible is False
    assert len(_trace(fig, "rmsprop").x) == 51


def test_optimizer_explorer_wiring():
    explorer = optimizer_explorer("ill_conditioned", ("sgd", "momentum"), steps=20)
    assert isinstance(explorer, OptimizerExplorer)
    assert explorer.steps.value == 20 and len(_trace(explorer.figure, "sgd").x) == 21
    explorer.optimizers.value = ("sgd", "adam")
    assert _trace(explorer.figure, "adam").visible is True and _trace(explorer.figure, "momentum").visible is False
    explorer.steps.value = 10
    assert len(_trace(explorer.figure, "sgd").x) == 11
    before = list(_trace(explorer.figure, "sgd").x)
    explorer.lr_scale.value = 0.1
    assert list(_trace(explorer.figure, "sgd").x) != before
    explorer.surface.value = "himmelblau"
    assert explorer.steps.value == SURFACES["himmelblau"].steps
    assert len(_trace(explorer.figure, "adam").x) == SURFACES["himmelblau"].steps + 1
    assert tuple(explorer.figure.layout.xaxis.range) == SURFACES["himmelblau"].x_range
    assert 'data-optimizer="adam"' in explorer.table.value
