"""Lesson 13's open-loop load generator against real servers (``bigtrain-lab serve`` subprocesses), and the
blocking server (the wrong answer) next to the micro-batching one."""

import asyncio

import numpy as np
import pytest

from bigtrain_lab.serving.blocking import max_concurrency
from bigtrain_lab.serving.loadgen import (
    LoadResult,
    check_loopback,
    digits_payloads,
    poisson_schedule,
    run_load,
    sweep_rates,
)
from bigtrain_lab.serving.servable import load_servable, resolve_model
from bigtrain_lab.serving.server import ServerProcess


@pytest.fixture(scope="module")
def model_file():
    return resolve_model("digits-mlp")  # the run's scratch kit home (tests get an empty one each)


@pytest.fixture(scope="module")
def batching(model_file):
    with ServerProcess(model_file, max_batch=32, max_wait_ms=5, forward_ms="20") as server:
        yield server


# ---- no server needed ------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/predict", "http://127.9.8.7/", "http://localhost:1/x",
                                 "http://[::1]:8000/predict", "https://127.0.0.1/"])
def test_loopback_urls_are_accepted(url):
    assert check_loopback(url) == url


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000/predict", "http://example.com/", "http://0.0.0.0:8000/",
                                 "http://127.0.0.1.example.com/", "http://192.168.1.2/", "ftp://127.0.0.1/",
                                 "http://[2001:db8::1]/"])
def test_other_hosts_are_refused_before_anything_is_sent(url):
    with pytest.raises(ValueError, match="refusing to send load|http"):
        check_loopback(url)
    with pytest.raises(ValueError):
        run_load(url, rate_per_s=10, n_requests=1)


def test_the_poisson_schedule_is_seeded_and_has_the_rate():
    a = poisson_schedule(250.0, 20_000, seed=3)
    np.testing.assert_array_equal(a, poisson_schedule(250.0, 20_000, seed=3))
    assert a[0] == 0.0 and np.all(np.diff(a) >= 0)
    gaps = np.diff(a)
    assert gaps.mean() == pytest.approx(1 / 250, rel=0.03)
    assert gaps.std() == pytest.approx(1 / 250, rel=0.05)  # exponential: std = mean
    assert not np.array_equal(a[:50], poisson_schedule(250.0, 50, seed=4))
    for bad in ({"rate_per_s": 0, "n_requests": 5}, {"rate_per_s": float("nan"), "n_requests": 5},
                {"rate_per_s": 10, "n_requests": 0}, {"rate_per_s": 10, "n_requests": 2.5}):
        with pytest.raises(ValueError):
            poisson_schedule(**bad)


def test_digits_payloads_are_raw_pixel_bodies():
    bodies = digits_payloads(5)
    assert len(bodies) == 5 and all(len(b["features"]) == 64 for b in bodies)
    assert max(max(b["features"]) for b in bodies) <= 16 and max(bodies[0]["features"]) > 1


def synthetic(scheduled, latency_ms, status):
    scheduled, latency = np.asarray(scheduled, float), np.asarray(latency_ms, float)
    return LoadResult(url="http://127.0.0.1/", offered_rate=2.0, scheduled_s=scheduled, sent_s=scheduled,
                      latency_ms=latency, status=np.asarray(status), elapsed_s=float(np.max(scheduled + latency / 1000)),
                      n_scheduled=len(scheduled), errors=[])


def test_load_result_arithmetic_on_a_hand_example():
    # in the system: [0, 1], [0.5, 1], [1, 4] -> total 4.5 request-seconds over 4 s
    r = synthetic([0.0, 0.5, 1.0], [1000.0, 500.0, 3000.0], [200, 503, 0])
    assert r.in_flight_mean() == pytest.approx(4.5 / 4)
    assert r.in_flight_max() == 2  # the first leaves at t = 1 when the third arrives
    assert r.status_counts() == {"200": 1, "503": 1, "no response": 1}
    report = r.report()
    assert report["p50"] == 1000.0 and report["n_ok"] == 1 and report["throughput_per_s"] == pytest.approx(0.25)
    assert report["error_rate"] == pytest.approx(2 / 3)
    law = r.littles_law()
    assert law == pytest.approx({"L": 1.125, "lambda": 0.75, "W": 1.5, "lambda_W": 1.125})
    assert r.in_flight_mean(0.0, 1.0) == pytest.approx(1.5)  # [0, 1] and [0.5, 1]
    with pytest.raises(ValueError, match="empty window"):
        r.littles_law(2.0, 2.0)
    nothing = synthetic([0.0], [10.0], [503]).report()
    assert nothing["p99"] is None and nothing["error_rate"] == 1.0


# ---- against servers --------------------------------------------------------------------------------------

def test_counts_and_rate_are_honoured_and_littles_law_holds(batching):
    result = run_load(batching.url + "/predict", rate_per_s=200, n_requests=120, seed=1)
    assert result.n == result.n_scheduled == 120
    assert result.status_counts() == {"200": 120}
    np.testing.assert_array_equal(result.scheduled_s, poisson_schedule(200, 120, seed=1))
    assert np.all(result.sent_s >= result.scheduled_s)
    report = result.report()
    assert report["offered_rate"] == 200 and report["error_rate"] == 0 and report["n_ok"] == 120
    assert report["p50"] <= report["p95"] <= report["p99"] <= report["max"]
    assert report["p50"] >= 20  # every forward pass sleeps 20 ms
    law = result.littles_law()
    assert law["L"] == pytest.approx(law["lambda_W"], rel=1e-9)  # over the whole run it is an identity
    mid = result.littles_law(0.15, 0.45)  # a window in the middle: approximately
    assert mid["L"] == pytest.approx(mid["lambda_W"], rel=0.6)
    assert result.in_flight_max() >= 2


def test_the_loop_is_open_sends_do_not_wait_for_answers(model_file):
    with ServerProcess(model_file, max_batch=1, forward_ms="40") as server:
        result = run_load(server.url + "/predict", rate_per_s=400, n_requests=12, seed=0)
    assert result.status_counts() == {"200": 12}
    # one request at a time, 40 ms each: the last answer comes after ~0.5 s, but every request was sent on its
    # schedule (within 0.03 s of it), long before the answers to the earlier ones
    assert result.elapsed_s >= 12 * 0.040
    assert np.max(result.sent_s - result.scheduled_s) < 0.2
    assert result.in_flight_max() >= 6


def test_max_duration_bounds_the_run(batching):
    schedule = poisson_schedule(100, 500, seed=2)
    result = run_load(batching.url + "/predict", rate_per_s=100, n_requests=500, seed=2, max_duration_s=0.3)
    assert result.n_scheduled == 500 and result.n == int(np.sum(schedule <= 0.3)) < 60


def test_it_runs_inside_a_running_event_loop_and_with_httpx(batching):
    async def notebook_cell():  # a Jupyter kernel already runs a loop
        return run_load(batching.url + "/predict", rate_per_s=100, n_requests=10, engine="httpx")

    result = asyncio.run(notebook_cell())
    assert result.status_counts() == {"200": 10}
    reports = sweep_rates(batching.url + "/predict", [50, 100], n_requests=8)
    assert [r["offered_rate"] for r in reports] == [50, 100] and all(r["n_ok"] == 8 for r in reports)
    assert {"L", "lambda", "W", "lambda_W"} == set(reports[0]["littles_law"])


def test_custom_payloads_and_a_refused_body_are_counted(batching):
    result = run_load(batching.url + "/predict", rate_per_s=200, n_requests=6,
                      payloads=[{"features": [1.0] * 64}, {"features": [1.0] * 3}])
    assert result.status_counts() == {"200": 3, "422": 3}
    assert result.report()["error_rate"] == 0.5
    with pytest.raises(ValueError, match="engine"):
        run_load(batching.url + "/predict", rate_per_s=10, n_requests=1, engine="curl")


def test_the_blocking_server_computes_one_request_at_a_time_the_batching_one_batches(model_file, batching):
    servable = load_servable(model_file)
    assert servable.n_features == 64
    with ServerProcess(model_file, blocking=True, forward_ms="20") as blocking:
        slow = run_load(blocking.url + "/predict", rate_per_s=1000, n_requests=16, seed=5)
        health = blocking.get("/healthz")
        assert max_concurrency(blocking.url) == 1
    assert slow.status_counts() == {"200": 16} and health["blocking"] is True
    assert slow.elapsed_s >= 16 * 0.020  # one 20 ms forward pass after the other
    before = batching.get("/stats")["batches"]
    fast = run_load(batching.url + "/predict", rate_per_s=1000, n_requests=16, seed=5)
    stats = batching.get("/stats")
    assert fast.status_counts() == {"200": 16}
    assert stats["max_batch_size_seen"] > 1 and stats["batches"] - before < 16
    assert max_concurrency(batching.url) > 1
