"""The distributed lesson's widgets: their plain functions, and that the views follow their controls."""

import pytest

from bigtrain_lab.widgets.distributed import (
    RingStepper,
    ScalingCalculator,
    ring_figure,
    ring_frame,
    scaling_curve,
)


def test_ring_frame_counts_contributors():
    start = ring_frame(4, 0)
    assert start.counts == [[1] * 4 for _ in range(4)] and start.transfers == [] and start.n_steps == 6
    assert start.labels[2][0] == "2"
    mid = ring_frame(4, 3)  # end of the reduce-scatter
    assert mid.phase == "reduce-scatter"
    assert [mid.counts[r][(r + 1) % 4] for r in range(4)] == [4, 4, 4, 4]
    assert mid.labels[0][1] == "0+1+2+3"
    end = ring_frame(4, 6)
    assert end.phase == "all-gather" and all(c == 4 for row in end.counts for c in row)
    assert end.sent_fraction == pytest.approx(1.5) and "full sum" in end.caption
    assert all(dst == (src + 1) % 4 for src, dst, _ in end.transfers)
    with pytest.raises(ValueError, match="step must be in"):
        ring_frame(4, 7)


def test_ring_figure_and_stepper_follow_the_sliders():
    fig = ring_figure(ring_frame(3, 2))
    assert len(fig.data[0].z) == 3 and "reduce-scatter" in fig.layout.title.text
    stepper = RingStepper(3, 0)
    stepper.step.value = 4
    assert "all-gather" in stepper.figure.layout.title.text
    stepper.workers.value = 6
    assert stepper.step.max == 10 and len(stepper.figure.data[0].z) == 6


def test_scaling_curve_worlds_and_efficiency():
    curve = scaling_curve(124e6, compute_s=0.1, bandwidth_gbs=25, grad_bytes=2, max_world=64)
    assert curve["world_size"] == [1, 2, 4, 8, 16, 32, 64]
    assert curve["efficiency"][0] == 1.0 and curve["speedup"][0] == 1.0
    assert all(0 < e <= 1 for e in curve["efficiency"])
    slow = scaling_curve(124e6, compute_s=0.01, bandwidth_gbs=1, overlap=0.0)
    assert slow["efficiency"][-1] < 0.1  # 1 GB/s, no overlap: communication dominates
    ps = scaling_curve(124e6, compute_s=0.1, bandwidth_gbs=25, algorithm="parameter_server", overlap=0)
    ring = scaling_curve(124e6, compute_s=0.1, bandwidth_gbs=25, overlap=0)
    assert ps["efficiency"][-1] < ring["efficiency"][-1]
    with pytest.raises(ValueError):
        scaling_curve(1, compute_s=0.1, bandwidth_gbs=1, max_world=0)


def test_scaling_calculator_redraws():
    calc = ScalingCalculator(max_world=16)
    before = list(calc.figure.data[0].y)
    calc.bandwidth.value = 0.5
    calc.overlap.value = 0.0
    assert list(calc.figure.data[0].y) != before
    assert "16 workers" in calc.summary.value


@pytest.mark.parametrize(("world_size", "step"), [(2, 1), (4, 3), (8, 7), (8, 14)])
def test_ring_figure_title_wraps_and_cells_stay_legible(world_size, step):
    from bigtrain_lab.widgets.distributed import _TITLE_CHARS, ring_cell_text, ring_title_lines

    frame = ring_frame(world_size, step)
    fig = ring_figure(frame)
    lines = ring_title_lines(frame)
    assert fig.layout.title.text == "<br>".join(lines) and frame.caption.split()[0] in lines[0]
    assert all(len(line) <= _TITLE_CHARS for line in lines)  # nothing runs past the figure's edge
    assert fig.layout.margin.t >= 18 * len(lines)  # room for every line above the plot
    heatmap = fig.data[0]
    assert heatmap.textfont.size >= 11 and all(len(t) <= 9 for row in heatmap.text for t in row)
    assert [list(row) for row in heatmap.customdata] == frame.labels  # the hover keeps the full list
    assert ring_cell_text("0+1+2", 8) == "0+1+2" and ring_cell_text("0+1+2+3+4+5+6+7", 8) == "all 8"
    assert ring_cell_text("3+4+5+6+7", 8) == "3+4+5+6+7" and ring_cell_text("2+3+4+5+6+7", 8) == "6 workers"
