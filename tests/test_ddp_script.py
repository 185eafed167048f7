"""scripts/ddp_train.py: real DDP on 2 gloo processes equals one process on the same global batch."""

import subprocess
import sys

import pytest
import torch

from bigtrain_lab.distributed.job import max_weight_difference
from tests.distributed_runs import DDP_SCRIPT, ROOT, WORLD, ddp_uninterrupted, launch, single_process

pytestmark = pytest.mark.slow


def test_two_processes_equal_one_process_on_the_same_global_batch():
    ddp, single = ddp_uninterrupted(), single_process()
    diff = max_weight_difference(ddp, single)
    assert diff < 2e-5, diff
    # and the run really trained: the weights moved away from the initialisation
    from bigtrain_lab.reproducibility import seed_everything
    from tests.distributed_runs import JOB

    seed_everything(JOB.seed)
    init = JOB.model(ddp["lm_head.weight"].shape[0]).state_dict()
    assert max_weight_difference(ddp, init) > 1e-3


def test_the_comparison_can_fail_a_different_global_batch_ends_elsewhere():
    # The comparison can fail: one process with HALF the global batch ends elsewhere.
    single_half = single_process_with_world(1)
    assert max_weight_difference(ddp_uninterrupted(), single_half) > 1e-3


def single_process_with_world(world: int) -> dict:
    from bigtrain_lab.distributed.job import train_single_process
    from tests.distributed_runs import JOB

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, _ = train_single_process(JOB, world)
    finally:
        torch.set_num_threads(threads)
    return model.state_dict()


def test_checkpoints_and_logs_come_from_rank_zero_only():
    result, folder = launch(DDP_SCRIPT, "ddp-ckpt", ["--checkpoint-dir", "ck", "--checkpoint-every", "3",
                                                     "--steps", "3", "--bucket-cap-mb", "0.01"])
    result.check()
    assert result.rank_lines(0) and any("step    3/3" in line for line in result.rank_lines(0))
    assert not [line for line in result.rank_lines(1) if line.startswith("step")]
    assert sorted(p.name for p in (folder / "ck").iterdir()) == ["ddp.pt"]
    from bigtrain_lab.train import load_checkpoint

    state = load_checkpoint(folder / "ck" / "ddp.pt")  # train.py's format: loads without DDP's prefix
    assert state["step"] == 3 and not any(k.startswith("module.") for k in state["model"])


def test_launched_without_torchrun_it_says_how_to_launch_it():
    out = subprocess.run([sys.executable, str(DDP_SCRIPT), "--steps", "1"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert "must be launched by torchrun" in out.stderr and "--nproc_per_node" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_flags_are_rejected_before_any_process_group():
    out = subprocess.run([sys.executable, str(DDP_SCRIPT), "--checkpoint-every", "5"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "--checkpoint-every needs --checkpoint-dir" in out.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_same_script_runs_on_nccl():
    from bigtrain_lab.distributed import run_torchrun

    n = min(WORLD, torch.cuda.device_count())
    result = run_torchrun(DDP_SCRIPT, ["--steps", "3", "--device", "cuda"], nproc_per_node=n, echo=False)
    result.check()
    assert any("nccl" in line for line in result.rank_lines(0))
