r"""Federated averaging on torch.distributed: each process holds some clients' data, the server step is an all-reduce.

    torchrun --standalone --nproc_per_node=2 scripts/fedavg_train.py --clients 4 --rounds 3
    torchrun --standalone --nproc_per_node=2 scripts/fedavg_train.py --alpha 0.1 --local-steps 10 --rounds 20
    torchrun --standalone --nproc_per_node=2 scripts/fedavg_train.py --secure      # masked aggregation

sklearn's digits are split among ``--clients`` clients (IID, or by a Dirichlet(``--alpha``) prior over labels);
process ``rank`` keeps the clients ``k`` with ``k % world_size == rank``. Every round each client runs
``--local-steps`` SGD steps of ``--batch-size`` from the global softmax-regression parameters; the new global
parameters are the clients' average weighted by their sample counts, computed by ``all_reduce`` of
``n_k * params_k`` and of ``n_k``. ``--secure`` sends each process's share masked (pairwise X25519 keys,
ChaCha20 masks, integers mod 2**32). Rank 0 prints one line ``FEDAVG_RESULT {json}``: the settings, the test
accuracy after every round and the final parameters. Gloo on the CPU, NCCL on GPUs (one process per GPU):
the same script. The code lives in ``bigtrain_lab.federated.worker`` (lesson 12,
``notebooks/12_federated_learning.ipynb``), which also launches it from Python (``run_fedavg_torchrun``).
"""

from __future__ import annotations

import sys

from bigtrain_lab.distributed.env import exit_process
from bigtrain_lab.federated.worker import result_line, worker


def main() -> int:
    result = worker(sys.argv[1:])
    if result is not None:  # rank 0
        print(result_line(result), flush=True)
    return 0


if __name__ == "__main__":
    exit_process(main())
