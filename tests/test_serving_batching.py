"""Lesson 13's batching policy (``micro_batches``) and latency report, as pure functions."""

import doctest
import math

import numpy as np
import pytest

from bigtrain_lab.serving import batching
from bigtrain_lab.serving.batching import latency_report, micro_batches


def test_the_docstring_examples_run():
    assert doctest.testmod(batching).failed == 0


def test_no_arrivals_no_batches():
    assert micro_batches([], max_batch=4, max_wait_ms=5) == []


def test_max_batch_1_sends_every_request_alone_at_its_arrival():
    assert micro_batches([0, 0, 3, 10], max_batch=1, max_wait_ms=5) == [
        (0.0, [0]), (0.0, [1]), (3.0, [2]), (10.0, [3])]


def test_max_wait_0_batches_only_simultaneous_arrivals():
    assert micro_batches([0, 0, 0, 1, 1, 2], max_batch=8, max_wait_ms=0) == [
        (0.0, [0, 1, 2]), (1.0, [3, 4]), (2.0, [5])]


def test_a_full_batch_leaves_at_once_and_the_rest_start_a_new_batch():
    assert micro_batches([0, 0, 0, 0, 0], max_batch=2, max_wait_ms=0) == [
        (0.0, [0, 1]), (0.0, [2, 3]), (0.0, [4])]
    assert micro_batches([0, 1, 2], max_batch=3, max_wait_ms=100) == [(2.0, [0, 1, 2])]


def test_a_tie_with_the_deadline_is_in_and_just_after_is_out():
    (d1, first), (d2, second) = micro_batches([0, 5, 5.001], max_batch=8, max_wait_ms=5)
    assert (d1, first, second) == (5.0, [0, 1], [2]) and d2 == pytest.approx(10.001)
    assert micro_batches([0.0, 0.25, 0.5], max_batch=8, max_wait_ms=0.5) == [(0.5, [0, 1, 2])]  # exact in binary


def test_a_batch_leaves_at_its_deadline_when_not_full():
    assert micro_batches([2.5], max_batch=8, max_wait_ms=5) == [(7.5, [0])]


@pytest.mark.parametrize("arrivals, match", [
    ([1, 0], "non-decreasing"),
    ([0, math.nan], "finite"),
    ([0, math.inf], "finite"),
])
def test_bad_arrivals_are_refused(arrivals, match):
    with pytest.raises(ValueError, match=match):
        micro_batches(arrivals, max_batch=2, max_wait_ms=1)


@pytest.mark.parametrize("max_batch", [0, -1, 1.5, True, "4", None])
def test_bad_max_batch_is_refused(max_batch):
    with pytest.raises(ValueError, match="max_batch"):
        micro_batches([0], max_batch=max_batch, max_wait_ms=1)


@pytest.mark.parametrize("max_wait", [-0.1, math.nan, math.inf])
def test_bad_max_wait_is_refused(max_wait):
    with pytest.raises(ValueError, match="max_wait_ms"):
        micro_batches([0], max_batch=2, max_wait_ms=max_wait)


def test_numpy_integers_and_arrays_are_accepted():
    assert micro_batches(np.array([0.0, 1.0]), max_batch=np.int64(2), max_wait_ms=np.float64(3)) == [(1.0, [0, 1])]


@pytest.mark.parametrize("seed", range(5))
def test_the_policy_invariants_hold_on_random_arrivals(seed):
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0, 300)) * rng.choice([0, 1], 300, p=[0.3, 0.7])
    arrivals = np.maximum.accumulate(arrivals)
    max_batch, wait = int(rng.integers(1, 9)), float(rng.uniform(0, 4))
    batches = micro_batches(arrivals, max_batch=max_batch, max_wait_ms=wait)
    assert [i for _, members in batches for i in members] == list(range(300))  # each once, in order
    dispatches = [d for d, _ in batches]
    assert dispatches == sorted(dispatches)
    for dispatch, members in batches:
        first = arrivals[members[0]]
        assert 1 <= len(members) <= max_batch
        assert all(arrivals[i] <= first + wait for i in members)
        assert arrivals[members[-1]] <= dispatch <= first + wait
        if len(members) < max_batch:  # not full: it waited for the whole window
            assert dispatch == first + wait
            nxt = members[-1] + 1
            assert nxt == 300 or arrivals[nxt] > first + wait


# ---- latency_report ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_latency_report_matches_numpy_linear_percentiles(seed):
    values = np.random.default_rng(seed).lognormal(2.0, 1.0, 101 + seed)
    report = latency_report(values.tolist())
    p50, p95, p99 = np.percentile(values, [50, 95, 99], method="linear")
    assert report == pytest.approx({"p50": p50, "p95": p95, "p99": p99, "mean": values.mean(), "max": values.max()},
                                   rel=1e-12)
    assert all(type(v) is float for v in report.values())


def test_latency_report_of_one_value():
    assert latency_report([7]) == {"p50": 7.0, "p95": 7.0, "p99": 7.0, "mean": 7.0, "max": 7.0}


@pytest.mark.parametrize("values, match", [
    ([], "at least one"),
    ([1.0, math.nan], "finite"),
    ([1.0, math.inf], "finite"),
    ([1.0, -0.5], "negative"),
])
def test_latency_report_refuses_bad_input(values, match):
    with pytest.raises(ValueError, match=match):
        latency_report(values)
