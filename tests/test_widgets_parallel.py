"""bigtrain_lab.widgets.parallel: timeline_state (the PipelineTimeline's numbers) and the widget over it."""

import pytest

from bigtrain_lab.estimate.formulas import bubble_fraction
from bigtrain_lab.widgets.parallel import PipelineTimeline, timeline_figure, timeline_state


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize(("p", "m"), [(2, 1), (4, 8), (8, 32), (3, 2)])
def test_state_bubble_and_in_flight(schedule, p, m):
    d = timeline_state(p, m, schedule, 2.0)
    assert d["bubble_simulated"] == pytest.approx(d["bubble_formula"]) == pytest.approx(bubble_fraction(p, m))
    assert d["step_time"] == pytest.approx((m + p - 1) * 3.0)
    assert d["in_flight"] == ([m] * p if schedule == "gpipe" else [min(p - s, m) for s in range(p)])
    assert len(d["events"]) == 2 * p * m
    assert f"{d['bubble_formula']:.3f}" in d["summary"]


def test_backward_ratio_scales_the_step_not_the_bubble():
    a, b = timeline_state(4, 8, "1f1b", 1.0), timeline_state(4, 8, "1f1b", 3.0)
    assert b["step_time"] == pytest.approx(2 * a["step_time"])
    assert a["bubble_simulated"] == pytest.approx(b["bubble_simulated"])
    durations = {e["op"]: e["end"] - e["start"] for e in b["events"]}
    assert durations == pytest.approx({"F": 1.0, "B": 3.0})


@pytest.mark.parametrize("bad", [dict(num_stages=0), dict(num_microbatches=0), dict(schedule="zb"),
                                 dict(backward_ratio=0.0)])
def test_bad_inputs(bad):
    with pytest.raises(ValueError):
        timeline_state(**bad)


def test_widget_follows_its_controls():
    w = PipelineTimeline(2, 4, "gpipe", 2.0)
    assert len(w.figure.data) == 2
    assert sum(len(t.x) for t in w.figure.data) == 2 * 2 * 4
    w.stages.value, w.microbatches.value, w.schedule.value = 8, 32, "1f1b"
    assert sum(len(t.x) for t in w.figure.data) == 2 * 8 * 32
    assert w.data()["in_flight"] == [8 - s for s in range(8)]
    assert "0.179" in w.summary.value
    with pytest.raises(ValueError):
        PipelineTimeline(num_stages=9)


def test_timeline_figure_of_a_run():
    events = timeline_state(2, 3)["events"]
    fig = timeline_figure(events, title="run", unit="ms")
    assert [t.name for t in fig.data] == ["forward", "backward"]
    assert list(fig.data[0].text) == ["0", "1", "2", "0", "1", "2"] or sorted(fig.data[0].text) == sorted("001122")
    with pytest.raises(ValueError):
        timeline_figure([])
