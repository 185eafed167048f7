"""How the torchrun scripts end: ``env.exit_process`` and the torch behaviour that makes it necessary."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["ddp_train", "fsdp_train", "tp_train", "pp_train", "dcp_checkpoint", "fedavg_train"]


def run_python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter with buffered stdout (as torchrun's workers have unless told)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=env)


def test_exit_process_returns_the_code_and_keeps_buffered_output():
    # stdout into a pipe is block-buffered: without the flush, os._exit would drop both lines
    done = run_python("""
        import sys
        from bigtrain_lab.distributed.env import exit_process
        print("summary written", end="")
        print("a warning", file=sys.stderr, end="")
        exit_process(3)
        print("never")
    """)
    assert (done.returncode, done.stdout, done.stderr) == (3, "summary written", "a warning")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread names from /proc")
def test_a_ddp_model_keeps_the_gloo_group_alive_after_destroy_process_group():
    # Why the scripts end with exit_process: DDP's reducer holds the group through a C++ cycle, so its
    # threads outlive destroy_process_group and gc.collect(); without DDP they end with the group.
    code = """
        import gc, os, tempfile, time
        import torch, torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        def gloo_threads():
            names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
            return sum(name.startswith(("pt_gloo", "gloo")) for name in names)

        store = dist.FileStore(os.path.join(tempfile.mkdtemp(), "store"), 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        deadline = time.monotonic() + 20  # the group's threads start a moment after it
        while not gloo_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        before = gloo_threads()
        if WRAP:
            DDP(torch.nn.Linear(3, 2))
        dist.destroy_process_group()
        gc.collect()
        deadline = time.monotonic() + WAIT_S  # and end a moment after it
        while gloo_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        print(before, gloo_threads())
    """
    plain = run_python("WRAP, WAIT_S = False, 20\n" + textwrap.dedent(code))
    wrapped = run_python("WRAP, WAIT_S = True, 3\n" + textwrap.dedent(code))
    assert plain.returncode == 0 and wrapped.returncode == 0, plain.stderr + wrapped.stderr
    before, after = map(int, plain.stdout.split())
    assert before > 0 and after == 0
    before, after = map(int, wrapped.stdout.split())
    assert before > 0 and after > 0


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_torchrun_script_ends_through_exit_process(name):
    tail = (ROOT / "scripts" / f"{name}.py").read_text().rstrip().splitlines()[-2:]
    assert tail[0] == 'if __name__ == "__main__":' and tail[1].startswith("    exit_process("), tail


def test_the_in_package_torchrun_workers_end_through_exit_process():
    from bigtrain_lab.deploy import sharded
    from bigtrain_lab.federated import worker

    for module in (sharded, worker):
        assert module._WORKER.endswith("exit_process(0)"), module.__name__
