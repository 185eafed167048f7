"""scripts/pp_train.py: GPipe and 1F1B on 2 gloo stages train exactly like one process (the tied embedding/head
matrix summed across the first and last stage), hold the activations the schedules say, and report a bubble."""

import pytest
import torch

from bigtrain_lab.distributed.job import max_weight_difference
from bigtrain_lab.estimate.formulas import bubble_fraction
from tests.pp_runs import JOB, MICROBATCHES, PP_SCRIPT, STAGES, launch, pp_run, single_process

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_pipeline_equals_one_process(schedule):
    weights, summary = pp_run(schedule)
    reference = single_process()
    assert list(weights) == list(reference)  # TinyGPT's own keys, in its order
    assert max_weight_difference(weights, reference) < 2e-5
    assert torch.equal(weights["transformer.wte.weight"], weights["lm_head.weight"])  # the copies stayed tied
    assert summary["num_stages"] == STAGES and summary["schedule"] == schedule
    assert summary["final_loss"] is not None


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_torch_pipelining_impl_equals_one_process(schedule):
    # torch.distributed.pipelining's PipelineStage + ScheduleGPipe / Schedule1F1B over the same stages (gloo, CPU)
    weights, summary = pp_run(schedule, "torch")
    assert summary["impl"] == "torch"
    assert max_weight_difference(weights, single_process()) < 2e-5
    kit, _ = pp_run(schedule)
    assert max_weight_difference(weights, kit) < 2e-5


def test_summary_timeline_bubble_and_activations():
    _, gpipe = pp_run("gpipe")
    _, one = pp_run("1f1b")
    p, m = STAGES, MICROBATCHES
    for s in (gpipe, one):
        assert s["bubble_formula"] == pytest.approx(bubble_fraction(p, m))
        assert s["bubble_simulated"] == pytest.approx(bubble_fraction(p, m))
        assert 0.0 < s["bubble_measured"] < 1.0
        assert len(s["timeline"]) == 2 * p * m
        assert {(e["stage"], e["op"], e["mb"]) for e in s["timeline"]} == {
            (st, op, mb) for st in range(p) for op in "FB" for mb in range(m)}
        assert all(0.0 <= e["start"] <= e["end"] for e in s["timeline"])
        assert len(s["model_state_bytes_per_rank"]) == len(s["activation_bytes_per_rank"]) == p
    assert gpipe["in_flight_per_rank"] == gpipe["in_flight_schedule"] == [m, m]
    assert one["in_flight_per_rank"] == one["in_flight_schedule"] == [min(p - s, m) for s in range(p)]
    for rank in range(p):  # 1F1B holds min(p - s, m) micro-batches' activations, GPipe all m
        assert one["activation_bytes_per_rank"][rank] < gpipe["activation_bytes_per_rank"][rank]


def test_bad_microbatches_exit_before_starting():
    result, _ = launch("pp-bad", ["--microbatches", "3"])  # 8 windows do not split into 3
    assert result.returncode != 0
    assert any("--microbatches must be >= 1 and divide" in line for line in result.lines)
    result, _ = launch("pp-too-deep", ["--n-layer", "1"])  # 2 stages, 1 block
    assert result.returncode != 0
    assert any("cannot fill 2 pipeline stages" in line for line in result.lines)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_pipeline_on_nccl():
    from bigtrain_lab.distributed import run_torchrun

    result = run_torchrun(PP_SCRIPT, ["--steps", "3", "--n-layer", "2", "--device", "cuda", "--pp-schedule",
                                      "1f1b", "--microbatches", "4"], nproc_per_node=2, echo=False)
    result.check()
    assert any("bubble: measured" in line for line in result.rank_lines(0))
    assert JOB.n_layer == 2
