"""estimate.planner: hand-computed plans, validity of every proposed plan, ZeRO / TP / PP trends, the CPU probes;
estimate.published: the planner against published GPU runs (errors stated, loose bounds)."""


import pytest

from bigtrain_lab.estimate import formulas as f
from bigtrain_lab.estimate.planner import (
    A100_80GB,
    H100_SXM,
    MODELS,
    Assumptions,
    Hardware,
    ModelShape,
    Plan,
    cpu_assumptions,
    estimate,
    invalid_reasons,
    matmul_flops_probe,
    plan_rows,
    plans,
)
from bigtrain_lab.estimate.published import compare_korthikanti, compare_llama2, compare_narayanan

HW = Hardware("round", peak_flops=1e12, memory_bytes=1e12, intra_bandwidth=1e9, inter_bandwidth=1e8,
              gpus_per_node=4)
MODEL = ModelShape(layers=4, hidden=64, heads=4, vocab=100, seq=16)
PLAIN = Assumptions(compute_efficiency=0.5, comm_efficiency=1.0, recompute="none", sequence_parallel=False,
                    overlap_dp=False, dtype_bytes=2, usable_memory=1.0)


def test_hand_computed_data_parallel_plan():
    plan = Plan(dp=2, micro_batch=2, grad_accum=3)
    e = estimate(MODEL, HW, plan, PLAIN)
    n = 4 * 12 * 64**2 + 100 * 64
    assert MODEL.params == n
    tokens = 2 * 2 * 3 * 16
    flops = tokens * (6 * n + 12 * 4 * 64 * 16)
    compute = flops / (2 * 1e12 * 0.5)
    dp = 2 * (2 - 1) / 2 * n * 2 / 1e9  # bf16 gradients, ring over 2 GPUs inside the node
    assert e.model_flops == pytest.approx(flops)
    assert e.times["compute"] == pytest.approx(compute)
    assert e.times["dp_comm"] == pytest.approx(dp)
    assert e.step_seconds == pytest.approx(compute + dp)
    assert e.mfu == pytest.approx(flops / ((compute + dp) * 2 * 1e12))
    assert e.memory["weights"] + e.memory["gradients"] + e.memory["optimizer states"] == pytest.approx(16 * n)
    per_layer = f.activation_bytes_per_layer(16, 2, 64, 4)
    assert e.memory["activations"] == pytest.approx(4 * per_layer)
    assert e.memory["logits"] == pytest.approx(4 * 16 * 2 * 100)


def test_hand_computed_tensor_and_pipeline_plan():
    plan = Plan(dp=1, tp=2, pp=2, micro_batch=1, grad_accum=4)
    e = estimate(MODEL, HW, plan, PLAIN)
    compute = 4 * 16 * MODEL.flops_per_token / (4 * 1e12 * 0.5)
    tp = 2 * 4 * 4 * f.allreduce_seconds(2 * 16 * 64, 2, 1e9)  # 2 layers/stage x 4 micro-batches x 4 all-reduces
    pp = 4 * 2 * (2 * 16 * 64 / 2) / 1e9  # tp * pp = 4 GPUs: one node
    busy = compute + tp + pp
    assert e.times["tp_comm"] == pytest.approx(tp)
    assert e.times["pp_comm"] == pytest.approx(pp)
    assert e.step_seconds == pytest.approx(busy / (1 - f.bubble_fraction(2, 4)))
    # 1F1B: the first stage keeps min(pp, m) = 2 micro-batches of its 2 layers
    per_layer = f.activation_bytes_per_layer(16, 1, 64, 4, tp=2)
    assert e.memory["activations"] == pytest.approx(2 * 2 * per_layer)
    assert e.memory["weights"] == pytest.approx(2 * MODEL.params / 4)


def test_dp_across_nodes_uses_the_slower_link_and_overlap_hides_it():
    plan = Plan(dp=8, micro_batch=1, grad_accum=1)
    inside = estimate(MODEL, HW, Plan(dp=4), PLAIN).times["dp_comm_total"]
    across = estimate(MODEL, HW, plan, PLAIN).times["dp_comm_total"]
    assert across > 5 * inside  # 1e8 vs 1e9 B/s
    overlapped = estimate(MODEL, HW, plan, Assumptions(**{**PLAIN.__dict__, "overlap_dp": True}))
    assert overlapped.times["dp_comm"] == pytest.approx(max(0, across - 2 / 3 * overlapped.times["compute"]))


def test_zero3_memory_shrinks_with_dp_and_zero_stages_order():
    model = MODELS["Llama-2 7B"]
    est = [estimate(model, H100_SXM, Plan(dp=d, zero_stage=3), PLAIN) for d in (1, 2, 4, 8)]
    mem = [e.memory_per_gpu for e in est]
    assert mem == sorted(mem, reverse=True)
    states = [e.memory_per_gpu - e.memory["activations"] - e.memory["logits"] for e in est]
    assert states == pytest.approx([16 * model.params / d for d in (1, 2, 4, 8)])  # all of it divided by dp
    by_stage = [estimate(model, H100_SXM, Plan(dp=8, zero_stage=z), PLAIN).memory_per_gpu for z in range(4)]
    assert by_stage == sorted(by_stage, reverse=True)
    states = [estimate(model, H100_SXM, Plan(dp=8, zero_stage=z), PLAIN) for z in range(4)]
    assert states[1].memory["optimizer states"] == pytest.approx(states[0].memory["optimizer states"] / 8)
    assert states[1].memory["gradients"] == states[0].memory["gradients"]


def test_tp_cuts_activations_and_states_but_adds_communication():
    model = MODELS["Llama-2 7B"]
    one, two = (estimate(model, H100_SXM, Plan(dp=1, tp=t, micro_batch=1, grad_accum=8), PLAIN) for t in (1, 2))
    assert two.memory["activations"] < one.memory["activations"]
    assert two.memory["weights"] == pytest.approx(one.memory["weights"] / 2)
    assert one.times["tp_comm"] == 0 < two.times["tp_comm"]


def test_more_microbatches_shrink_the_bubble():
    model = MODELS["GPT-3 175B"]
    e = [estimate(model, A100_80GB, Plan(dp=1, tp=8, pp=8, micro_batch=1, grad_accum=m)) for m in (8, 64)]
    assert e[0].times["bubble"] / e[0].step_seconds > e[1].times["bubble"] / e[1].step_seconds


def test_plans_are_all_valid_and_sorted():
    for model, hw, nodes, batch in ((MODELS["Llama-2 70B"], H100_SXM, 8, 1024), (MODEL, HW, 2, 8),
                                    (MODELS["GPT-3 175B"], A100_80GB, 16, 1536)):
        found = plans(model, hw, nodes, batch)
        assert found
        for e in found:
            p = e.plan
            assert p.gpus == nodes * hw.gpus_per_node
            assert p.global_batch == batch
            assert hw.gpus_per_node % p.tp == 0 and model.heads % p.tp == 0 and model.layers % p.pp == 0
            assert not (p.pp > 1 and p.zero_stage > 1) and not (p.dp == 1 and p.zero_stage)
            assert not invalid_reasons(model, hw, p)
        fitting = [e for e in found if e.fits]
        assert [e.step_seconds for e in fitting] == sorted(e.step_seconds for e in fitting)
        assert all(e.fits for e in found[:len(fitting)])
        assert plan_rows(found, 3) == [e.row() for e in found[:3]]


def test_a_70b_fits_no_node_of_8_h100s_but_fits_4_nodes_sharded():
    model = MODELS["Llama-2 70B"]
    assert not estimate(model, H100_SXM, Plan(dp=1)).fits
    assert not any(e.fits for e in plans(model, H100_SXM, 1, 64))  # 16 B x 69B / 8 = 138 GB > 80 GB
    best = plans(model, H100_SXM, 4, 64)
    assert best[0].fits and (best[0].plan.tp > 1 or best[0].plan.pp > 1 or best[0].plan.zero_stage == 3)


def test_invalid_plans_and_arguments_are_refused():
    with pytest.raises(ValueError, match="tp=3"):
        estimate(MODEL, HW, Plan(dp=1, tp=3))
    with pytest.raises(ValueError, match="pp=3"):
        estimate(MODEL, HW, Plan(dp=1, pp=3))
    with pytest.raises(ValueError, match="ZeRO"):
        estimate(MODEL, HW, Plan(dp=2, pp=2, zero_stage=3))
    for bad in ({"dp": 0}, {"dp": 1, "zero_stage": 5}, {"dp": 1.5}):
        with pytest.raises(ValueError):
            Plan(**bad)
    with pytest.raises(ValueError):
        ModelShape(2, 65, 4, 10, 8)
    with pytest.raises(ValueError):
        Assumptions(compute_efficiency=1.5)
    with pytest.raises(TypeError):
        estimate("7B", HW, Plan(dp=1))


def test_matmul_probe_and_cpu_assumptions():
    flops = matmul_flops_probe(64, 64, 64, repeats=3)
    assert 1e6 < flops < 1e13
    a = cpu_assumptions(overlap_dp=False)
    assert a.state_bytes == (4, 4, 8) and a.dtype_bytes == 4 and not a.overlap_dp


@pytest.mark.slow
def test_gloo_probe_gives_a_bandwidth_that_reproduces_its_time():
    from bigtrain_lab.estimate.planner import gloo_allreduce_probe

    r = gloo_allreduce_probe(2**20, repeats=3)
    assert r["bandwidth"] > 0 and r["latency"] >= 0
    assert f.allreduce_seconds(2**20, 2, r["bandwidth"], r["latency"]) == pytest.approx(r["seconds"], rel=1e-6)


def test_planner_against_korthikanti_2022():
    rows = compare_korthikanti()
    for r in rows:
        # the planner's FLOP count turns the published time into the published MFU (a check of 6N + 12Lhs)
        assert r["mfu_from_published_time"] == pytest.approx(r["published_mfu"], abs=0.006)
        assert r["fits"]
        # the planner's step time: within 35 % (measured: -9 % .. +22 %, the fixed compute efficiency misses
        # that larger matmuls run closer to peak)
        assert abs(r["step_error"]) < 0.35, r


def test_planner_against_narayanan_2021_and_llama2():
    for r in compare_narayanan():
        assert r["fits"]
        assert abs(r["tflops_error"]) < 0.3, r  # measured: -13 % .. +17 %
    llama = compare_llama2()
    assert llama["fits"]
    assert 0.5 < llama["predicted_gpu_hours"] / llama["published_gpu_hours"] < 2  # measured: -10 %
    assert llama["published_6nd_mfu"] == pytest.approx(0.435, abs=0.001)


def test_hand_computed_zero3_communication():
    hw = Hardware("lat", 1e12, 1e12, 1e9, 1e8, 4, latency=1e-5)
    e = estimate(MODEL, hw, Plan(dp=2, zero_stage=3, micro_batch=1, grad_accum=2), PLAIN)
    n = MODEL.params
    gather = 1 * (5 * 1e-5 + n * 2 / (2 * 1e9))  # (dp - 1) ring steps, 4 layers + the root = 5 units
    scatter = 1 * (5 * 1e-5 + n * 2 / (2 * 1e9))
    assert e.times["dp_comm_total"] == pytest.approx(2 * 2 * gather + scatter)
    assert e.times["dp_comm"] == pytest.approx(e.times["dp_comm_total"])  # no overlap assumed
    hidden = estimate(MODEL, hw, Plan(dp=2, zero_stage=3, micro_batch=1, grad_accum=2),
                      Assumptions(**{**PLAIN.__dict__, "overlap_dp": True}))
    assert hidden.times["dp_comm"] == pytest.approx(max(0.0, hidden.times["dp_comm_total"] - hidden.times["compute"]))
