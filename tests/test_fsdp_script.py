"""scripts/fsdp_train.py: FSDP2 on 2 gloo processes trains like one process, holds half the model states
per rank (the ZeRO-3 formula), and its DCP checkpoints resume bit for bit."""

import pytest
import torch

from bigtrain_lab.distributed.job import max_weight_difference
from bigtrain_lab.memory import model_state_bytes
from tests.distributed_runs import FSDP_SCRIPT, JOB, WORLD, fsdp_uninterrupted, launch, single_process

pytestmark = pytest.mark.slow


def test_fsdp_equals_one_process_on_the_same_global_batch():
    weights, _ = fsdp_uninterrupted()
    assert max_weight_difference(weights, single_process()) < 2e-5
    assert all(v.dtype == torch.float32 for v in weights.values())  # full fp32 state_dict, no DTensors


def test_each_rank_holds_its_share_of_the_model_states():
    _, summary = fsdp_uninterrupted()
    n = summary["n_params"]
    expected = model_state_bytes(n, precision="fp32", zero_stage=3, world_size=WORLD).total
    assert summary["zero3_formula_bytes"] == expected
    assert sum(summary["model_state_bytes_per_rank"]) == 16 * n  # the shards add up to one full copy
    for measured in summary["model_state_bytes_per_rank"]:
        assert abs(measured - expected) <= 16 * JOB.n_embd  # within a row of an unevenly split matrix


def test_dcp_checkpoint_stops_and_resumes_bit_for_bit():
    flags = ["--checkpoint-dir", "ck", "--checkpoint-every", "3"]
    first, folder = launch(FSDP_SCRIPT, "fsdp-resume", [*flags, "--stop-after", "3"])
    first.check()
    assert (folder / "ck" / "latest").read_text() == "step_000003"
    second, folder = launch(FSDP_SCRIPT, "fsdp-resume", [*flags, "--resume", "--save-final", "final.pt"])
    second.check()
    assert any("resumed from ck/step_000003 at step 3" in line for line in second.rank_lines(0))
    resumed = torch.load(folder / "final.pt", weights_only=True)
    weights, _ = fsdp_uninterrupted()
    assert all(torch.equal(resumed[k], weights[k]) for k in weights)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_mixed_precision_on_nccl():
    from bigtrain_lab.distributed import run_torchrun

    n = min(WORLD, torch.cuda.device_count())
    result = run_torchrun(FSDP_SCRIPT, ["--steps", "3", "--device", "cuda", "--param-dtype", "bf16"],
                          nproc_per_node=n, echo=False)
    result.check()
    assert any("compute in torch.bfloat16" in line for line in result.rank_lines(0))
