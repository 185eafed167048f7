"""bigtrain_lab.parallel.pipeline and .stages: the GPipe / 1F1B schedules against hand-written tables (Huang et
al. 2019; Narayanan et al. 2021) and torch.distributed.pipelining's schedule IR, the checker, the simulated
bubble against (p - 1) / (m + p - 1), in-flight activations, and TinyGPT split into stages."""

from types import SimpleNamespace

import pytest
import torch

from bigtrain_lab.estimate.formulas import bubble_fraction as formula
from bigtrain_lab.models import GPTConfig, TinyGPT
from bigtrain_lab.parallel.pipeline import (
    bubble_fraction,
    check_schedule,
    max_in_flight,
    pipeline_schedule,
    simulate,
    stage_bubbles,
)
from bigtrain_lab.parallel.stages import GPTStage, run_schedule, split_model, stage_layers


def ops(text):
    return [(t[0], int(t[1:])) for t in text.split()]


# PipeDream-Flush / Megatron non-interleaved 1F1B, p = 4, m = 8 (Narayanan et al. 2021, figure 4 top)
ONE_F_ONE_B_4_8 = [
    ops("F0 F1 F2 F3 B0 F4 B1 F5 B2 F6 B3 F7 B4 B5 B6 B7"),
    ops("F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 F6 B4 F7 B5 B6 B7"),
    ops("F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 F6 B5 F7 B6 B7"),
    ops("F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 F6 B6 F7 B7"),
]
# GPipe, p = 3, m = 4 (Huang et al. 2019, figure 2c; backward in micro-batch order as torch's ScheduleGPipe)
GPIPE_3_4 = [ops("F0 F1 F2 F3 B0 B1 B2 B3")] * 3


def test_hand_tables():
    assert pipeline_schedule(4, 8, "1f1b") == ONE_F_ONE_B_4_8
    assert pipeline_schedule(3, 4, "gpipe") == GPIPE_3_4
    # m < p: the warm-up is cut at m, every stage then drains
    assert pipeline_schedule(4, 2, "1f1b") == [ops("F0 F1 B0 B1"), ops("F0 F1 B0 B1"), ops("F0 F1 B0 B1"),
                                               ops("F0 B0 F1 B1")]
    assert pipeline_schedule(1, 3, "1f1b") == [ops("F0 B0 F1 B1 F2 B2")]
    assert pipeline_schedule(1, 1, "gpipe") == [ops("F0 B0")]


@pytest.mark.parametrize("bad", [(0, 2, "gpipe"), (2, 0, "1f1b"), (2.0, 2, "1f1b"), (True, 2, "gpipe"),
                                 (2, 2, "interleaved")])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        pipeline_schedule(*bad)


def _torch_order(cls, p, m):
    """The F / B actions of torch.distributed.pipelining's schedule IR (``_get_pipeline_order``), computed
    without processes (it reads only the stage count and the micro-batch count)."""
    order = cls._get_pipeline_order(SimpleNamespace(_num_stages=p, _n_microbatches=m))
    names = {"FORWARD": "F", "FULL_BACKWARD": "B"}
    return [[(names[a.computation_type.name], a.microbatch_index) for a in order[r]
             if a is not None and a.computation_type.name in names] for r in range(p)]


@pytest.mark.parametrize(("p", "m"), [(2, 2), (2, 5), (3, 3), (4, 8), (4, 6)])
def test_matches_torch_pipelining(p, m):
    from torch.distributed.pipelining.schedules import Schedule1F1B, ScheduleGPipe

    assert pipeline_schedule(p, m, "gpipe") == _torch_order(ScheduleGPipe, p, m)
    # Schedule1F1B's IR (a visualisation helper) numbers the last rank's forwards from 1 (torch 2.13: with no
    # warm-up its counter is incremented before the first use); its executed order (_step_microbatches: min(m,
    # p - s) warm-up forwards, then B, F alternating) is ours, on every rank
    ours = pipeline_schedule(p, m, "1f1b")
    assert ours[:-1] == _torch_order(Schedule1F1B, p, m)[:-1]
    for s, row in enumerate(ours):
        warm = min(m, p - s)
        assert row[:warm] == [("F", i) for i in range(warm)]
        assert row[warm] == ("B", 0)


@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
@pytest.mark.parametrize(("p", "m"), [(1, 1), (1, 4), (2, 1), (3, 2), (4, 4), (4, 16), (8, 32)])
def test_reference_schedules_are_valid_and_have_the_formula_bubble(kind, p, m):
    schedule = pipeline_schedule(p, m, kind)
    assert check_schedule(schedule, m) == []
    events = simulate(schedule, 1.0, 2.0)  # t_b = 2 t_f
    assert max(e.end for e in events) == pytest.approx((m + p - 1) * 3.0)
    assert bubble_fraction(events) == pytest.approx(formula(p, m))
    assert stage_bubbles(events) == pytest.approx([formula(p, m)] * p)
    # uniform stages: the same bubble for any t_b / t_f
    assert bubble_fraction(simulate(schedule, 1.0, 1.0)) == pytest.approx(formula(p, m))


def test_in_flight_gpipe_holds_m_1f1b_at_most_p_minus_s():
    for p, m in [(4, 8), (4, 2), (3, 3), (1, 5)]:
        assert max_in_flight(pipeline_schedule(p, m, "gpipe")) == [m] * p
        assert max_in_flight(pipeline_schedule(p, m, "1f1b")) == [min(p - s, m) for s in range(p)]


def test_checker_catches_broken_schedules():
    good = pipeline_schedule(3, 3, "1f1b")
    missing = [row[:-1] if s == 1 else row for s, row in enumerate(good)]
    assert any("stage 1: B of micro-batch(es) [2] missing" in p for p in check_schedule(missing, 3))
    repeated = [row + [("F", 0)] if s == 0 else row for s, row in enumerate(good)]
    assert any("more than once" in p for p in check_schedule(repeated, 3))
    backward_first = [ops("B0 F0 F1 B1"), ops("F0 B0 F1 B1")]
    assert any("B0 before F0" in p for p in check_schedule(backward_first, 2))
    deadlock = pipeline_schedule(4, 4, "1f1b")[::-1]  # warm-up counted from the wrong end
    assert any(p.startswith("deadlock") for p in check_schedule(deadlock, 4))
    assert any("not ('F' or 'B'" in p for p in check_schedule([ops("F0 F1 B0 B1") + [("X", 0)]], 2))
    assert any("not ('F' or 'B'" in p for p in check_schedule([ops("F0 F5 B0 B5")], 2))
    assert check_schedule("nope", 2)
    # backward in reverse order: valid (not the reference GPipe, but nothing is broken)
    reverse = [ops("F0 F1 F2 B2 B1 B0")] * 3
    assert check_schedule(reverse, 3) == []


def test_simulate_waits_for_dependencies():
    events = {(e.stage, e.op, e.mb): e for e in simulate(pipeline_schedule(2, 2, "gpipe"), 1.0, 2.0)}
    assert events[(1, "F", 0)].start == events[(0, "F", 0)].end == 1.0
    assert events[(0, "B", 0)].start == events[(1, "B", 0)].end
    with pytest.raises(ValueError, match="t_forward"):
        simulate(pipeline_schedule(2, 2, "gpipe"), [1.0], 2.0)


# ---- stages ------------------------------------------------------------------------------------------------

CONFIG = GPTConfig(vocab_size=17, block_size=8, n_layer=3, n_head=2, n_embd=16)


def test_stage_layers_split_evenly():
    assert [list(r) for r in stage_layers(5, 2)] == [[0, 1, 2], [3, 4]]
    assert [len(r) for r in stage_layers(3, 4)] == [1, 1, 1, 0]
    with pytest.raises(ValueError):
        stage_layers(0, 2)


def _model_and_batch():
    torch.manual_seed(0)
    model = TinyGPT(CONFIG)
    x = torch.randint(0, CONFIG.vocab_size, (4, 8))
    y = torch.randint(0, CONFIG.vocab_size, (4, 8))
    return model, x, y


@pytest.mark.parametrize("p", [2, 3])
def test_stages_chain_to_the_model_and_tied_gradients_sum(p):
    torch.set_num_threads(1)
    model, x, y = _model_and_batch()
    _, loss = model(x, y)
    loss.backward()
    reference = {k: v.grad.clone() for k, v in model.named_parameters()}
    model.zero_grad()
    stages = split_model(model, p)
    h = x
    for stage in stages[:-1]:
        h = stage(h)
    assert torch.allclose(stages[-1](h, y), loss)
    # in one process the tied matrix is ONE tensor and autograd sums both uses; on two ranks each copy holds one
    # part and sync_tied_gradients adds them: embedding part (stage 0) + head part (last stage) = the whole
    assert stages[0].tied_weight() is stages[-1].tied_weight() is model.lm_head.weight
    model.zero_grad()
    first = stages[0](x)
    received = first.detach().requires_grad_()  # what the next rank gets
    h = received
    for stage in stages[1:-1]:
        h = stage(h)
    stages[-1](h, y).backward()
    head_part = model.lm_head.weight.grad.clone()
    model.zero_grad()
    first.backward(received.grad)
    embedding_part = model.transformer.wte.weight.grad.clone()
    whole = reference["transformer.wte.weight"]
    assert torch.allclose(head_part + embedding_part, whole, atol=1e-7)
    assert not torch.allclose(head_part, whole, atol=1e-4)  # one copy's own gradient alone is not the model's
    keys = set(model.state_dict())
    assert set().union(*(s.model_state_dict() for s in stages)) == keys


def test_run_schedule_on_one_stage_equals_the_full_batch_gradient():
    torch.set_num_threads(1)
    model, x, y = _model_and_batch()
    model(x, y)[1].backward()
    reference = {k: v.grad.clone() for k, v in model.named_parameters()}
    model.zero_grad()
    stage = GPTStage(model, 0, 1)
    for kind in ("gpipe", "1f1b"):
        record = run_schedule(stage, pipeline_schedule(1, 4, kind)[0], list(x.chunk(4)), list(y.chunk(4)),
                              hidden_shape=(1, 8, 16))
        assert torch.allclose(record.loss, model(x, y)[1])
        for k, v in model.named_parameters():
            assert torch.allclose(v.grad, reference[k], atol=1e-6), k
        assert record.peak_in_flight == (4 if kind == "gpipe" else 1)
        assert [(e.op, e.mb) for e in record.events] == pipeline_schedule(1, 4, kind)[0]
        model.zero_grad()
    gpipe = run_schedule(stage, pipeline_schedule(1, 4, "gpipe")[0], list(x.chunk(4)), list(y.chunk(4)),
                         hidden_shape=(1, 8, 16))
    model.zero_grad()
    one = run_schedule(stage, pipeline_schedule(1, 4, "1f1b")[0], list(x.chunk(4)), list(y.chunk(4)),
                       hidden_shape=(1, 8, 16))
    assert gpipe.peak_activation_bytes > 3 * one.peak_activation_bytes  # 4 micro-batches held vs 1
    with pytest.raises(ValueError, match="once each"):
        run_schedule(stage, ops("F0 B0 B0"), list(x.chunk(1)), list(y.chunk(1)), hidden_shape=(4, 8, 16))
