"""scripts/dcp_checkpoint.py and bigtrain_lab.deploy.sharded: a DCP checkpoint written by 2 gloo processes
(FSDP2 shards) loads bit for bit into 1 process, and consolidates into one torch.save file."""

import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from bigtrain_lab.deploy import build_model, parse_result, run_dcp_roundtrip
from bigtrain_lab.deploy.sharded import worker
from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "dcp_checkpoint.py"
needs_gloo = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="this torch build has no gloo backend")


@pytest.fixture(scope="module")
def two_to_one(tmp_path_factory):
    return run_dcp_roundtrip(2, 1, tmp_path_factory.mktemp("dcp"), script=SCRIPT)


@pytest.mark.slow
@needs_gloo
def test_saved_by_two_processes_loaded_by_one_bit_for_bit(two_to_one):
    saved, loaded = two_to_one["save"], two_to_one["load"]
    assert (saved["world_size"], loaded["world_size"]) == (2, 1)
    assert saved["backend"] == loaded["backend"] == "gloo"
    assert loaded["step"] == saved["steps"] == 3
    assert loaded["max_abs_diff_model"] == 0.0 and loaded["max_abs_diff_optim"] == 0.0


@pytest.mark.slow
@needs_gloo
def test_each_rank_writes_its_own_shard(two_to_one):
    saved, loaded = two_to_one["save"], two_to_one["load"]
    names = [f["file"] for f in saved["files"]]
    assert names == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    params = sum(p.numel() for p in build_model().parameters())
    full = 12 * params  # fp32 weights + AdamW's two moments
    assert loaded["bytes_per_rank"][0] == pytest.approx(full, abs=64)  # one process holds everything
    for share in saved["bytes_per_rank"]:
        assert share == pytest.approx(full / 2, abs=64)  # each of two holds half (plus replicated step counts)
    shards = [f["bytes"] for f in saved["files"] if f["file"].endswith(".distcp")]
    assert all(full / 2 <= b < full / 2 * 1.2 for b in shards)


@pytest.mark.slow
@needs_gloo
def test_the_consolidated_file_loads_without_a_process_group(two_to_one):
    consolidated = two_to_one["consolidated"]
    assert consolidated["keys"] == ["model", "optim", "step"]
    assert consolidated["max_abs_diff_model"] == 0.0
    state = torch.load(consolidated["path"], weights_only=True)  # this process has no process group
    assert not dist.is_initialized()
    model = build_model(seed=5)
    model.load_state_dict(state["model"])  # full tensors, ordinary names
    assert int(state["step"]) == 3


def test_the_script_refuses_to_run_without_torchrun_and_explains_itself(capsys):
    out = subprocess.run([sys.executable, str(SCRIPT), "--save", "unused"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0 and "must be launched by torchrun" in out.stderr
    with pytest.raises(SystemExit) as exit_:
        worker(["--help"])
    assert exit_.value.code == 0
    assert "--save DIR" in capsys.readouterr().out


def test_parse_result_finds_the_tagged_json_line():
    lines = ["[default0]:hello", '[default0]:DCP_RESULT {"mode": "save", "files": []}']
    assert parse_result(lines) == {"mode": "save", "files": []}
    with pytest.raises(ValueError, match="DCP_RESULT"):
        parse_result(["nothing here"])


def test_bad_world_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match=">= 1"):
        run_dcp_roundtrip(0, 1, tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_same_script_on_nccl(tmp_path):
    procs = min(2, torch.cuda.device_count())
    result = run_dcp_roundtrip(procs, 1, tmp_path, script=SCRIPT, device="cuda")
    assert result["save"]["backend"] == "nccl"
    assert result["load"]["max_abs_diff_model"] == 0.0
