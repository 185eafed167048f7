"""The batching explorer's plain function (``bigtrain_lab.serving.sweep.explorer_data``) and its widget."""

import pytest

from bigtrain_lab.serving.sweep import explorer_data, rate_curve, sweep_key
from tests.widget_cases import synthetic_load_sweep


def test_sweep_keys_and_rate_curves():
    sweep = synthetic_load_sweep()
    assert sweep_key(8, 2, 200) == "8|2|200"
    curve = rate_curve(sweep, 1, 0.0, "throughput_per_s")
    assert curve == [50.0, 200.0, 300.0]


def test_explorer_data_compares_with_no_batching_at_the_same_rate():
    sweep = synthetic_load_sweep()
    d = explorer_data(sweep, max_batch=32, max_wait_ms=5.0, rate=800.0)
    run, base = sweep["runs"]["32|5|800"], sweep["runs"]["1|0|800"]
    assert sum(d["hist"]["counts"]) == len(run["latencies_ms"])
    assert sum(d["hist"]["baseline_counts"]) == len(base["latencies_ms"])
    assert d["p99"][-1] == run["report"]["p99"] and d["baseline_p99"][-1] == base["report"]["p99"]
    assert "no batching" in d["summary"] and "800 req/s" in d["summary"]


def test_a_missing_run_names_the_runs_there_are():
    with pytest.raises(ValueError, match="no run '4|2|200'"):
        explorer_data(synthetic_load_sweep(), max_batch=4, max_wait_ms=2.0, rate=200.0)


def test_widget_follows_its_sliders():
    from bigtrain_lab.widgets.serving import BatchingExplorer

    w = BatchingExplorer(synthetic_load_sweep(), max_batch=8, rate=200.0)
    before = w.readout.value
    w.rate.value = 800.0
    assert w.readout.value != before and "800 req/s" in w.readout.value
    w.max_batch.value = 1
    assert w.max_wait_ms.disabled and "max_batch 1, max_wait_ms 0" in w.readout.value


def test_a_run_that_served_nothing_has_no_percentiles():
    import math

    sweep = synthetic_load_sweep()
    run = sweep["runs"]["1|0|800"]
    run["report"].update(p50=None, p95=None, p99=None, mean=None, max=None, throughput_per_s=0.0, error_rate=1.0)
    run["latencies_ms"] = []
    assert math.isnan(rate_curve(sweep, 1, 0.0, "p99")[-1])
    d = explorer_data(sweep, max_batch=8, max_wait_ms=2.0, rate=800.0)
    assert "no batching: p50 -, p99 -" in d["summary"] and sum(d["hist"]["baseline_counts"]) == 0
