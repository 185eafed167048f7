"""scripts/fedavg_train.py under torchrun (2 gloo processes, the server step an all-reduce) ends at the parameters
of the one-process simulation; with --secure (masked aggregation) too, up to fixed-point rounding."""

import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from bigtrain_lab.federated.simulate import federated_digits, simulate
from bigtrain_lab.federated.worker import parse_result, run_fedavg_torchrun, worker
from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "fedavg_train.py"
needs_gloo = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="this torch build has no gloo backend")
SETTINGS = {"clients": 5, "alpha": 0.3, "rounds": 3, "local_steps": 4, "lr": 0.5, "batch_size": 16, "seed": 2}


@pytest.fixture(scope="module")
def simulated():
    task = federated_digits(SETTINGS["clients"], SETTINGS["alpha"], seed=SETTINGS["seed"])
    return simulate(task, rounds=SETTINGS["rounds"], local_steps=SETTINGS["local_steps"], lr=SETTINGS["lr"],
                    batch_size=SETTINGS["batch_size"], seed=SETTINGS["seed"])


def max_abs_diff(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in b)


@pytest.mark.slow
@needs_gloo
def test_two_processes_end_where_the_simulation_ends(simulated):
    run = run_fedavg_torchrun(2, script=SCRIPT, **SETTINGS)
    assert run["world_size"] == 2 and run["backend"] == "gloo"
    assert run["clients_per_rank"] == [[0, 2, 4], [1, 3]]
    assert max_abs_diff(run["params"], simulated.params) < 1e-6
    assert run["global_accuracy"] == pytest.approx(simulated.global_accuracy, abs=1e-6)
    assert max_abs_diff(run["params"], {k: torch.zeros_like(v) for k, v in simulated.params.items()}) > 0.1


@pytest.mark.slow
@needs_gloo
def test_secure_aggregation_on_torchrun_changes_only_the_rounding(simulated):
    run = run_fedavg_torchrun(2, secure=True, **SETTINGS)  # the installed package's worker, no script file
    assert run["secure"] and max_abs_diff(run["params"], simulated.params) < 1e-5


def test_the_script_refuses_to_run_without_torchrun_and_explains_itself(capsys):
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "must be launched by torchrun" in out.stderr
    with pytest.raises(SystemExit) as exit_:
        worker(["--help"])
    assert exit_.value.code == 0
    assert "--secure" in capsys.readouterr().out


def test_parse_result_and_bad_arguments():
    assert parse_result(['[default0]:FEDAVG_RESULT {"rounds": 2}']) == {"rounds": 2}
    with pytest.raises(ValueError, match="FEDAVG_RESULT"):
        parse_result(["nothing"])
    with pytest.raises(ValueError, match="procs"):
        run_fedavg_torchrun(0)
    with pytest.raises(SystemExit):
        worker(["--rounds", "0"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_same_script_on_nccl(simulated):
    procs = min(2, torch.cuda.device_count())
    run = run_fedavg_torchrun(procs, script=SCRIPT, device="cuda", **SETTINGS)
    assert run["backend"] == "nccl" and max_abs_diff(run["params"], simulated.params) < 1e-5
