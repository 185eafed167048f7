"""scripts/tp_train.py: tensor parallelism on 2 gloo processes (the kit's Megatron modules, DTensor's
parallelize_module, and sequence parallelism) trains exactly like one process."""

import importlib.util

import pytest
import torch

from bigtrain_lab.distributed.job import max_weight_difference
from tests.tp_runs import TP_SCRIPT, one_process, tp_run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["megatron", "dtensor", "sequence"])
def test_tensor_parallel_run_equals_one_process(name):
    weights, summary = tp_run(name)
    assert max_weight_difference(weights, one_process()) < 2e-5
    assert all(v.dtype == torch.float32 and type(v) is torch.Tensor for v in weights.values())
    assert summary["tp"] == 2 and summary["world_size"] == 2
    # every rank holds the replicated parts plus half of the blocks' matmuls: less than a full copy
    assert all(0 < b < summary["unsharded_bytes"] for b in summary["model_state_bytes_per_rank"])


def test_one_all_reduce_forward_and_one_backward_per_attention_and_mlp():
    n_layer = 1
    for name in ("megatron", "dtensor"):
        calls = tp_run(name)[1]["collectives"]
        fwd = {k: v for k, v in calls.items() if k.startswith("forward")}
        bwd = {k: v for k, v in calls.items() if k.startswith("backward")}
        assert list(fwd.values()) == [2 * n_layer] and "all_reduce" in next(iter(fwd)), (name, calls)
        assert list(bwd.values()) == [2 * n_layer] and "all_reduce" in next(iter(bwd)), (name, calls)


def test_sequence_parallel_replaces_all_reduce_and_saves_activations():
    calls = tp_run("sequence")[1]["collectives"]
    assert not any("all_reduce" in k for k in calls)
    assert calls["forward reduce_scatter"] == 2 and calls["forward all_gather"] == 3  # + the one before lm_head
    tp_bytes = tp_run("megatron")[1]["activation_bytes_per_rank"]
    sp_bytes = tp_run("sequence")[1]["activation_bytes_per_rank"]
    assert all(s < t for s, t in zip(sp_bytes, tp_bytes, strict=True))


def _script():
    spec = importlib.util.spec_from_file_location("tp_train", TP_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv", [["--impl", "dtensor", "--sequence-parallel"], ["--tp", "0"]])
def test_bad_flags_exit_2_before_any_process_group(argv, capsys):
    script = _script()
    with pytest.raises(SystemExit) as exc:
        script.run_script(script.build_parser(), script.train_tp, script=script.SCRIPT, check=script.check_args,
                          argv=argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tensor_parallel_on_nccl():
    from bigtrain_lab.distributed import run_torchrun

    n = 2 if torch.cuda.device_count() >= 2 else 1
    for extra in ([], ["--impl", "dtensor"], ["--sequence-parallel"]):
        result = run_torchrun(TP_SCRIPT, ["--steps", "3", "--device", "cuda", "--n-head", "4", *extra],
                              nproc_per_node=n, echo=False)
        result.check()
        assert any("nccl" in line for line in result.rank_lines(0))


@pytest.mark.parametrize("script", ["tp_train.py", "pp_train.py"])
def test_checkpoint_flags_are_refused_before_any_process_group(script):
    import subprocess
    import sys

    from tests.tp_runs import ROOT

    done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--checkpoint-dir", "ck"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"{script} has no checkpoints" in done.stderr
