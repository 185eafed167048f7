r"""Save a sharded (FSDP2) model with torch.distributed.checkpoint, then load it on another number of processes.

    torchrun --standalone --nproc_per_node=2 scripts/dcp_checkpoint.py --save runs/dcp      # 2 writers
    torchrun --standalone --nproc_per_node=1 scripts/dcp_checkpoint.py --load runs/dcp      # 1 reader
    torchrun --standalone --nproc_per_node=3 scripts/dcp_checkpoint.py --load runs/dcp      # or 3

``--save``: an MLP 64-256-256-10 sharded with ``fully_shard`` trains ``--steps`` AdamW steps, then
``dcp.save`` has every rank write its own shards of the weights and of AdamW's moments
(``__<rank>_0.distcp``) and the coordinator the ``.metadata``; rank 0 also writes the full state to
``--reference`` (default ``DIR.reference.pt``). ``--load``: a fresh model (other weights) sharded over this
run's world size reads the checkpoint with ``dcp.load`` and compares its gathered state with the
reference. Rank 0 prints one line ``DCP_RESULT {json}``: files and their sizes, bytes per rank, max |diff|.
Gloo on the CPU, NCCL on GPUs (one process per GPU): the same script. The code lives in
``bigtrain_lab.deploy.sharded`` (lesson 13, ``notebooks/13_saving_and_export.ipynb``), which also runs
both steps from Python (``run_dcp_roundtrip``).
"""

from __future__ import annotations

import sys

from bigtrain_lab.deploy.sharded import result_line, worker
from bigtrain_lab.distributed.env import exit_process


def main() -> int:
    result = worker(sys.argv[1:])
    if result is not None:  # rank 0
        print(result_line(result), flush=True)
    return 0


if __name__ == "__main__":
    exit_process(main())
