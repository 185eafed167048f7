"""bigtrain_lab.graphs: execution modes agree with eager; graph breaks and recompilations are counted."""

import pytest
import torch

from bigtrain_lab.graphs import (
    ModeResult,
    autograd_graph_size,
    count_compilations,
    export_failure,
    graph_breaks,
    inductor_cache_stats,
    run_modes,
    time_per_call,
)
from bigtrain_lab.models import MLP


def test_time_per_call_counts_calls():
    calls = []
    ms = time_per_call(lambda: calls.append(1), warmup=2, iters=5)
    assert len(calls) == 7 and ms >= 0
    with pytest.raises(ValueError):
        time_per_call(lambda: None, iters=0)


def test_eager_and_export_agree():
    torch.manual_seed(0)
    results = run_modes(MLP(8, (16,), 3), (torch.randn(4, 8),), modes=("eager", "export"), warmup=1, iters=2)
    assert [r.mode for r in results] == ["eager", "export"]
    assert all(isinstance(r, ModeResult) and r.max_abs_diff < 1e-6 and r.ms_per_call > 0 for r in results)
    assert results[0].max_abs_diff == 0.0


def test_compile_with_a_cheap_backend_agrees():
    torch.manual_seed(0)
    (result,) = run_modes(MLP(8, (16,), 3), (torch.randn(4, 8),), modes=("compile",), warmup=1, iters=2,
                          compile_kwargs={"backend": "eager"})
    assert result.max_abs_diff < 1e-6


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown modes"):
        run_modes(MLP(8, (16,), 3), (torch.randn(4, 8),), modes=("jit",))


def test_graph_breaks_on_data_dependent_control_flow():
    def branchy(x):
        if x.sum() > 0:
            return x * 2
        return x - 1

    found = graph_breaks(branchy, torch.ones(3))
    assert (found.graph_count, found.break_count) == (2, 1) and len(found.reasons) == 1
    clean = graph_breaks(lambda x: torch.where(x.sum() > 0, x * 2, x - 1), torch.ones(3))
    assert (clean.graph_count, clean.break_count) == (1, 0)


def test_count_compilations_shape_change_recompiles_once_then_dynamic():
    def f(x):
        return (x * 2).sum()

    assert count_compilations(f, [(torch.randn(4),)] * 3) == 1
    assert count_compilations(f, [(torch.randn(n),) for n in (2, 3, 4, 5)]) == 2
    assert count_compilations(f, [(torch.randn(4),), (torch.randn(4, dtype=torch.float64),)]) == 2


def test_inductor_cache_stats_are_counts():
    stats = inductor_cache_stats()
    assert set(stats) == {"hits", "misses"} and all(v >= 0 for v in stats.values())


def test_autograd_graph_size_follows_the_python_that_ran():
    w = torch.randn(3, 3, requires_grad=True)
    x = torch.randn(3)
    once = torch.tanh(x @ w)
    twice = torch.tanh(torch.tanh(x @ w) @ w)
    assert autograd_graph_size(once) < autograd_graph_size(twice)
    assert autograd_graph_size(x) == 0
    assert autograd_graph_size(w * 2) == 2  # MulBackward0 -> AccumulateGrad


def test_export_failure_keeps_the_partial_graph_off_stderr(capfd):
    class Branchy(torch.nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x - 1

    failure = export_failure(Branchy(), (torch.ones(3),))
    assert failure is not None and "data-dependent" in str(failure.error)
    assert failure.ops[0] == "aten.sum.default" and failure.ops[-1] == "aten.item.default"
    assert "def forward" not in capfd.readouterr().err
    lines = [line for line in failure.partial_graph.splitlines() if line.strip()]
    excerpt = failure.excerpt(2).splitlines()
    assert excerpt[:2] == [line.rstrip() for line in lines[:2]]
    assert excerpt[2].strip() == f"... ({len(lines) - 2} more of {len(lines)} lines)"
    assert failure.excerpt(len(lines)).count("\n") == len(lines) - 1
    assert export_failure(torch.nn.Linear(2, 2), (torch.randn(1, 2),)) is None
