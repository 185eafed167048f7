"""bigtrain_lab.distributed.allreduce: the simulated ring against torch's sum, its
communication pattern, the step-by-step states and the latency-bandwidth model."""

import math

import pytest
import torch

from bigtrain_lab.distributed.allreduce import (
    DeadlockError,
    allreduce_seconds,
    data_parallel_step,
    ring_allreduce,
    ring_allreduce_steps,
    ring_bytes_per_worker,
    run_workers,
)


@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize("numel", [1, 5, 64, 101])
def test_ring_allreduce_sums_with_the_ring_pattern(n, numel):
    tensors = [torch.randn(numel, dtype=torch.float64) for _ in range(n)]
    run = run_workers(ring_allreduce, tensors)
    for result in run.results:
        assert torch.allclose(result, torch.stack(tensors).sum(0), rtol=1e-12, atol=1e-12)
        assert torch.equal(result, run.results[0])
    assert all(m.dst == (m.src + 1) % n for m in run.messages)
    assert all(len(run.sends_of(r)) == 2 * (n - 1) for r in range(n))
    assert run.elements_sent == 2 * (n - 1) * numel
    assert all(m.numel <= math.ceil(numel / n) for m in run.messages)


def test_ring_keeps_shape_dtype_and_integer_sums_exact():
    tensors = [torch.arange(12).reshape(3, 4) * (r + 1) for r in range(3)]
    run = run_workers(ring_allreduce, tensors)
    assert all(torch.equal(r, torch.arange(12).reshape(3, 4) * 6) for r in run.results)
    assert tensors[0][0, 1] == 1  # the inputs are untouched (each worker gets a copy)


def test_a_worker_waiting_for_nothing_is_a_deadlock_and_errors_surface():
    def waits(rank, n, tensor, send, recv):
        return recv((rank + 1) % n)

    with pytest.raises(DeadlockError, match="never came"):
        run_workers(waits, [torch.zeros(2)] * 2, recv_timeout_s=0.2)

    def sends_to_itself(rank, n, tensor, send, recv):
        send(rank, tensor)

    with pytest.raises(ValueError, match="another worker's rank"):
        run_workers(sends_to_itself, [torch.zeros(2)] * 2)

    def one_crashes(rank, n, tensor, send, recv):
        if rank == 1:
            raise KeyError("boom")
        return recv(1)

    with pytest.raises(KeyError):  # the others stop at once instead of waiting for their timeout
        run_workers(one_crashes, [torch.zeros(2)] * 3, recv_timeout_s=30)


def test_ring_steps_reach_the_full_sum_everywhere():
    for n in range(1, 9):
        states = ring_allreduce_steps(n)
        assert len(states) == 2 * (n - 1) + 1
        # after the reduce-scatter worker r owns the complete chunk (r + 1) % n
        mid = states[n - 1].holdings
        assert all(mid[r][(r + 1) % n] == frozenset(range(n)) for r in range(n))
        assert all(h == frozenset(range(n)) for row in states[-1].holdings for h in row)
        assert all(dst == (src + 1) % n for s in states for src, dst, _ in s.transfers)
    with pytest.raises(ValueError):
        ring_allreduce_steps(0)


def test_latency_bandwidth_model():
    # ring: 2(N-1) messages of nbytes / N
    assert allreduce_seconds(8e9, 8, bandwidth=1e9) == pytest.approx(2 * 7 * 1.0)
    assert allreduce_seconds(8e9, 8, bandwidth=1e9, latency=1e-3) == pytest.approx(14 + 14e-3)
    assert allreduce_seconds(1e9, 4, bandwidth=1e9, algorithm="parameter_server") == pytest.approx(8.0)
    assert allreduce_seconds(1e9, 4, bandwidth=1e9, algorithm="naive_ring") == pytest.approx(6.0)
    assert allreduce_seconds(1e9, 1, bandwidth=1e9) == 0.0
    # the ring's time barely grows with N; the parameter server's grows linearly
    ring = [allreduce_seconds(1e9, n, bandwidth=1e9) for n in (2, 8, 64)]
    ps = [allreduce_seconds(1e9, n, bandwidth=1e9, algorithm="parameter_server") for n in (2, 8, 64)]
    assert ring[-1] < 2.0 and ps[-1] / ps[0] == pytest.approx(32, rel=1e-6)
    assert ring_bytes_per_worker(100, 4) == 150 and ring_bytes_per_worker(100, 1) == 0
    with pytest.raises(ValueError):
        allreduce_seconds(1, 2, bandwidth=0)
    with pytest.raises(ValueError, match="algorithm"):
        allreduce_seconds(1, 2, bandwidth=1, algorithm="tree")


def test_data_parallel_step_overlap_and_efficiency():
    one = data_parallel_step(1, 1e8, compute_s=0.1, bandwidth=1e10)
    assert one["efficiency"] == 1.0 and one["speedup"] == 1.0
    hidden = data_parallel_step(8, 1e8, compute_s=0.3, bandwidth=1e10, overlap=1.0)  # comm 0.07 s < 0.2 s
    assert hidden["exposed_comm_s"] == 0.0 and hidden["speedup"] == 8.0
    exposed = data_parallel_step(8, 1e8, compute_s=0.3, bandwidth=1e10, overlap=0.0)
    assert exposed["exposed_comm_s"] == pytest.approx(exposed["comm_s"])
    assert exposed["efficiency"] == pytest.approx(0.3 / (0.3 + exposed["comm_s"]))
    with pytest.raises(ValueError):
        data_parallel_step(2, 1, compute_s=0, bandwidth=1)


def test_parameter_server_sums_but_loads_one_link():
    from bigtrain_lab.distributed.allreduce import link_traffic, parameter_server_allreduce

    tensors = [torch.full((10,), float(r)) for r in range(4)]
    ps = run_workers(parameter_server_allreduce, tensors)
    assert all(torch.equal(r, torch.full((10,), 6.0)) for r in ps.results)
    traffic = link_traffic(ps)
    assert traffic == {(1, 0): 10, (2, 0): 10, (3, 0): 10, (0, 1): 10, (0, 2): 10, (0, 3): 10}
    ring = link_traffic(run_workers(ring_allreduce, tensors))
    assert set(ring) == {(0, 1), (1, 2), (2, 3), (3, 0)}
    assert sum(ring.values()) == 60 and max(ring.values()) <= 16  # about 2 (N-1)/N x 10 per link


def test_ddp_buckets_fire_during_backward_and_no_sync_skips_them():
    from bigtrain_lab.distributed.buckets import record_buckets, single_process_group
    from bigtrain_lab.models import GPTConfig, TinyGPT

    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=50, n_layer=2, n_embd=32, block_size=8))
    x, y = torch.randint(0, 50, (4, 8)), torch.randint(0, 50, (4, 8))
    with single_process_group():
        events, backward_s = record_buckets(model, x, y, bucket_cap_mb=0.01)
        synced, _ = record_buckets(model, x, y, bucket_cap_mb=0.01, grad_accum=3)
        unsynced, _ = record_buckets(model, x, y, bucket_cap_mb=0.01, grad_accum=3, use_no_sync=False)
    assert len(events) > 3 and [e.index for e in events] == list(range(len(events)))
    assert sum(e.numel for e in events) == sum(p.numel() for p in model.parameters())
    assert events[0].seconds < backward_s  # the first bucket goes out before backward is over
    assert any("h.1." in n for n in events[0].parameters)  # ... and holds the LAST block's gradients
    assert len(synced) == len(events) and len(unsynced) == 3 * len(events)
    import torch.distributed as dist

    assert not dist.is_initialized()
