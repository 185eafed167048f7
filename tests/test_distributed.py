"""Unit tests of bigtrain_lab.distributed: launch environment, backend choice, torchrun command, data
streams against DistributedSampler, simulated failures, memory formula."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from bigtrain_lab.distributed import (
    CharWindows,
    LaunchError,
    LaunchResult,
    global_batch_indices,
    init_distributed,
    micro_batches,
    read_launch_env,
    torchrun_command,
)
from bigtrain_lab.distributed.data import as_get_batch
from bigtrain_lab.distributed.env import choose_backend, cleanup
from bigtrain_lab.distributed.faults import maybe_fail, parse_failure
from bigtrain_lab.distributed.job import Job, job_args, max_weight_difference
from bigtrain_lab.distributed.launch import run_torchrun
from bigtrain_lab.memory import measure_model_states, model_state_bytes

TORCHRUN_ENV = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


# ---- launch environment ----------------------------------------------------------------------------

def test_reads_torchrun_variables():
    info = read_launch_env({**TORCHRUN_ENV, "TORCHELASTIC_RESTART_COUNT": "2"})
    assert info == {"rank": 1, "local_rank": 1, "world_size": 4, "local_world_size": 2, "restart_count": 2}


def test_without_torchrun_the_error_names_the_command():
    with pytest.raises(LaunchError, match=r"torchrun --standalone --nproc_per_node=2 scripts/x.py"):
        read_launch_env({}, script="scripts/x.py")
    with pytest.raises(LaunchError, match="MASTER_PORT"):
        read_launch_env({k: v for k, v in TORCHRUN_ENV.items() if k != "MASTER_PORT"})


@pytest.mark.parametrize("bad", [{"RANK": "4"}, {"LOCAL_RANK": "2"}, {"RANK": "one"}, {"LOCAL_WORLD_SIZE": "8"}])
def test_inconsistent_variables_are_rejected(bad):
    with pytest.raises(LaunchError):
        read_launch_env({**TORCHRUN_ENV, **bad})


def test_backend_is_gloo_on_cpu_and_nccl_on_the_local_rank_gpu():
    assert choose_backend("auto", 0, 2, cuda_devices=0) == ("gloo", torch.device("cpu"))
    assert choose_backend("cpu", 1, 2, cuda_devices=8) == ("gloo", torch.device("cpu"))
    assert choose_backend("auto", 3, 8, cuda_devices=8) == ("nccl", torch.device("cuda", 3))


def test_more_gpu_ranks_than_gpus_is_a_clear_error():
    with pytest.raises(LaunchError, match=r"8 processes on this node .* only 4 CUDA device\(s\).*nproc_per_node=4"):
        choose_backend("auto", 5, 8, cuda_devices=4)
    with pytest.raises(LaunchError, match="no CUDA device"):
        choose_backend("cuda", 0, 1, cuda_devices=0)
    with pytest.raises(ValueError, match="device must be one of"):
        choose_backend("tpu", 0, 1, cuda_devices=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_init_and_cleanup_a_world_of_one_in_process():
    environ = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    old = {k: os.environ.get(k) for k in environ}
    os.environ.update(environ)
    try:
        env = init_distributed("cpu", environ=environ)
        assert env.is_main and env.backend == "gloo" and dist.get_world_size() == 1
        x = torch.ones(3)
        dist.all_reduce(x)
        assert torch.equal(x, torch.ones(3))
    finally:
        cleanup()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert not dist.is_initialized()
    cleanup()  # a second call is harmless


# ---- torchrun command and logs ---------------------------------------------------------------------

def test_torchrun_command_single_and_multi_node():
    cmd = torchrun_command("s.py", ["--steps", 3], nproc_per_node=8, python="py")
    assert cmd == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=8", "--tee", "3",
                   "s.py", "--steps", "3"]
    cmd = torchrun_command("s.py", nnodes=2, nproc_per_node=8, rdzv_endpoint="node0:29500", rdzv_id="j1",
                           max_restarts=1, tee=False, python="py")
    assert cmd == ["py", "-m", "torch.distributed.run", "--nnodes=2", "--rdzv-backend=c10d",
                   "--rdzv-endpoint=node0:29500", "--rdzv-id=j1", "--nproc-per-node=8", "--max-restarts=1", "s.py"]
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        torchrun_command("s.py", nnodes=2)
    with pytest.raises(ValueError):
        torchrun_command("s.py", nproc_per_node=0)


def test_rank_lines_strip_torchruns_prefix():
    result = LaunchResult(["x"], 1, ["[default0]:hello", "[default1]:world", "W1125 agent line", "[default0]:!"])
    assert result.rank_lines(0) == ["hello", "!"] and result.rank_lines(1) == ["world"]
    with pytest.raises(RuntimeError, match="status 1"):
        result.check()


def test_run_torchrun_streams_rank_tagged_lines(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import os\nprint('hello from', os.environ['RANK'], flush=True)\n")
    seen = []
    result = run_torchrun(script, nproc_per_node=2, echo=seen.append, timeout_s=120)
    assert result.ok, result.tail()
    assert result.rank_lines(0) == ["hello from 0"] and result.rank_lines(1) == ["hello from 1"]
    assert seen == result.lines


# ---- data ------------------------------------------------------------------------------------------

def test_char_windows_are_shifted_by_one():
    ids = np.arange(50, dtype=np.uint16)
    ds = CharWindows(ids, 8)
    assert len(ds) == 6  # (50 - 1) // 8
    x, y = ds[2]
    assert x.tolist() == list(range(16, 24)) and y.tolist() == list(range(17, 25)) and x.dtype == torch.int64
    with pytest.raises(IndexError):
        ds[6]
    with pytest.raises(ValueError):
        CharWindows(ids[:5], 8)


def test_ranks_together_read_the_single_process_global_batch():
    ds = CharWindows(np.arange(2000) % 97, 4)  # 499 windows: DistributedSampler pads to an even split
    world, b = 2, 3
    ranks = [micro_batches(ds, batch_size=b, rank=r, world_size=world, seed=5) for r in range(world)]
    single = micro_batches(ds, batch_size=b * world, seed=5)
    for _ in range(10):
        together = sorted(tuple(row.tolist()) for r in ranks for row in next(r)[0])
        assert together == sorted(tuple(row.tolist()) for row in next(single)[0])


def test_micro_batches_match_distributed_sampler_and_reshuffle_each_epoch():
    ds = CharWindows(np.arange(401), 4)  # 100 windows; window i starts with token 4 i
    sampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=3)
    stream = micro_batches(ds, batch_size=10, rank=1, world_size=2, seed=3)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        expected = list(sampler)
        got = [int(x[0]) // 4 for _ in range(5) for x in next(stream)[0]]
        assert got == expected
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first  # set_epoch is what reshuffles


def test_micro_batches_resume_where_they_stopped():
    ds = CharWindows(np.arange(401), 4)
    full = micro_batches(ds, batch_size=7, rank=0, world_size=2, seed=1)
    batches = [next(full)[0] for _ in range(12)]  # crosses the epoch boundary (7 batches per epoch)
    resumed = micro_batches(ds, batch_size=7, rank=0, world_size=2, seed=1, start=5)
    for i in range(5, 12):
        assert torch.equal(next(resumed)[0], batches[i])


def test_micro_batches_need_enough_data_and_as_get_batch_is_train_only():
    with pytest.raises(ValueError, match="fewer than batch_size"):
        next(micro_batches(CharWindows(np.arange(41), 4), batch_size=8, world_size=2))
    get_batch = as_get_batch(micro_batches(CharWindows(np.arange(41), 4), batch_size=2))
    assert get_batch("train", 0)[0].shape == (2, 4)
    with pytest.raises(ValueError, match="eval_every=0"):
        get_batch("val", 0)


def test_global_batch_indices_split_the_permutation():
    per_rank = global_batch_indices(20, step=1, batch_size=2, world_size=2, grad_accum=2, seed=0)
    sampler = DistributedSampler(range(20), num_replicas=1, rank=0, seed=0)
    assert sorted(per_rank[0] + per_rank[1]) == sorted(list(sampler)[8:16])


# ---- failures, jobs, memory --------------------------------------------------------------------------

def test_parse_failure():
    assert parse_failure("1:5") == (1, 5) and parse_failure(None) is None and parse_failure("") is None
    for bad in ("1", "a:b", "-1:3", "1:2:3"):
        with pytest.raises(ValueError, match="--simulate-failure"):
            parse_failure(bad)


def test_maybe_fail_kills_only_the_named_rank_on_the_first_attempt():
    maybe_fail((1, 5), rank=0, step=5, restart_count=0)
    maybe_fail((1, 5), rank=1, step=4, restart_count=0)
    maybe_fail((1, 5), rank=1, step=5, restart_count=1)
    maybe_fail(None, rank=1, step=5, restart_count=0)
    code = ("from bigtrain_lab.distributed.faults import maybe_fail\n"
            "maybe_fail((1, 5), rank=1, step=5, restart_count=0)\nprint('survived')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == -9 and "survived" not in out.stdout


def test_job_validation_flags_and_single_process_config():
    job = Job(batch_size=4, grad_accum=3)
    assert job.single_process_config(2).batch_size == 24
    assert job.tokens_per_step(2) == 24 * job.block_size
    assert "--grad-accum" in job_args(job) and job_args(job)[job_args(job).index("--grad-accum") + 1] == "3"
    with pytest.raises(ValueError, match="--steps"):
        Job(steps=0)
    with pytest.raises(ValueError, match="min-lr"):
        Job(lr=1e-3, min_lr=1e-2)
    with pytest.raises(ValueError, match="divisible"):
        Job(n_embd=30, n_head=4)


def test_job_optimizer_settings_are_a_recipe_with_overrides_and_its_flags_round_trip():
    from bigtrain_lab.distributed.script import distributed_parser
    from bigtrain_lab.recipes import NANOGPT

    assert Job().optimizer_recipe() == NANOGPT.for_run(20)  # nanoGPT's, warm-up capped at a tenth: 2 steps
    job = Job(steps=6, warmup_steps=1, betas=(0.9, 0.98), recipe="kit")
    chosen = job.optimizer_recipe()
    assert (chosen.warmup_steps, chosen.betas, chosen.schedule, chosen.lr) == (1, (0.9, 0.98), "wsd", 3e-3)
    assert job.single_process_config(2).betas == (0.9, 0.98)
    parser, _ = distributed_parser("test")
    assert Job.from_args(parser.parse_args(job_args(job))) == job
    assert "--lr" not in job_args(job)  # unset: the recipe's


def test_max_weight_difference():
    a = {"w": torch.zeros(3)}
    assert max_weight_difference(a, {"w": torch.tensor([0.0, -0.5, 0.1])}) == 0.5
    with pytest.raises(ValueError, match="different keys"):
        max_weight_difference(a, {"v": torch.zeros(3)})


def test_measured_bytes_of_an_unsharded_adamw_model_match_the_formula():
    model = torch.nn.Linear(10, 5)  # 55 parameters
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 10)).sum().backward()
    opt.step()
    measured = measure_model_states(model, opt, step_counters=False)
    assert (measured.parameters, measured.gradients, measured.optimizer_states) == (220, 220, 440)
    assert measured.total == model_state_bytes(55, precision="fp32").total
    assert measure_model_states(model, opt).optimizer_states == 440 + 2 * 4  # two fp32 step counters


def test_a_timed_out_launch_leaves_no_worker_behind(tmp_path):
    script = tmp_path / "sleepy.py"
    pid_file = tmp_path / "pids"
    script.write_text("import os, time\n"
                      f"open({str(pid_file)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
                      "print('started', flush=True)\ntime.sleep(600)\n")
    with pytest.raises(TimeoutError):
        run_torchrun(script, nproc_per_node=2, echo=False, timeout_s=20)
    import time

    time.sleep(1)
    for pid in map(int, pid_file.read_text().split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_nccl_defaults_read_from_the_installed_torch():
    from bigtrain_lab.distributed.env import nccl_defaults

    found = nccl_defaults()
    # what lesson 05's table says (PyTorch's docs: "By default, it is set to 3"); a torch whose sources say
    # otherwise fails here, and the lesson's prose must follow
    assert found.async_error_handling == (3, "SkipCleanUp")
    assert found.torchrun_async_error_handling == 1  # torchrun exports 1 to its workers when unset
    assert found.trace_buffer_size is not None and found.trace_buffer_size > 0
    assert found.dump_requires is not None and "TORCH_NCCL_TRACE_BUFFER_SIZE > 0" in found.dump_requires
