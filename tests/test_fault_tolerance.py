"""A worker killed with SIGKILL under ``torchrun --max-restarts=1``: the group restarts, resumes from the
last checkpoint, and ends with exactly the weights of an uninterrupted run."""

import pytest
import torch

from tests.distributed_runs import DDP_SCRIPT, ddp_uninterrupted, launch

pytestmark = pytest.mark.slow


def test_killed_rank_restarts_and_resumes_to_the_same_weights():
    result, folder = launch(DDP_SCRIPT, "ddp-killed",
                            ["--save-final", "final.pt", "--checkpoint-dir", "ck", "--checkpoint-every", "2",
                             "--simulate-failure", "1:3"], max_restarts=1)
    result.check()
    text = "\n".join(result.lines)
    assert "rank 1: simulated crash, SIGKILL at step 3" in text  # it really died ...
    assert "exitcode: -9" in text  # ... of SIGKILL, as torchrun saw it
    assert any("resumed from ck/ddp.pt at step 2 (restart 1)" in line for line in result.rank_lines(0))
    killed = torch.load(folder / "final.pt", weights_only=True)
    reference = ddp_uninterrupted()
    assert killed.keys() == reference.keys()
    assert all(torch.equal(killed[k], reference[k]) for k in reference)  # bit for bit


def test_without_restarts_the_job_fails():
    result, _ = launch(DDP_SCRIPT, "ddp-killed-no-restart",
                       ["--checkpoint-dir", "ck", "--checkpoint-every", "2", "--simulate-failure", "0:1"])
    assert not result.ok
