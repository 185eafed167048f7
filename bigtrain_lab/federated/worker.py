"""FedAvg on the real engine: every torchrun process is a client group, the server step an all-reduce.

``scripts/fedavg_train.py`` runs ``worker`` under ``torchrun`` (gloo on the CPU, NCCL on GPUs: the same code).
Every process builds the same client split (``simulate.federated_digits``: same seeds, same data) and keeps
the clients ``k`` with ``k % world_size == rank``: their data never leave it. Each round it runs
``fedavg.local_sgd`` for each of its clients from the global parameters (the generator of
``simulate.client_seed``, as the simulation does), and the server step is a weighted all-reduce:
``all_reduce(sum_k n_k * params_k)`` and ``all_reduce(sum_k n_k)``, then their ratio on every process. So a
run on N processes ends where ``simulate.simulate`` ends in one (to float32 rounding of the sums' order).

``--secure``: the processes' contributions travel masked (``secure_agg``: X25519 public keys exchanged with
``all_gather_object``, pairwise ChaCha20 masks, integers mod 2**32 summed by the all-reduce): no process sees
another's update, and the result differs from the plain run by fixed-point rounding only.

``run_fedavg_torchrun`` launches it from a notebook or a test and returns rank 0's JSON result.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import torch

from bigtrain_lab.distributed.launch import find_json_line, json_line

__all__ = ["RESULT_PREFIX", "SCRIPT", "parse_result", "result_line", "run_fedavg_torchrun", "worker"]

SCRIPT = "scripts/fedavg_train.py"
#: Rank 0 prints one line ``RESULT_PREFIX + json``.
RESULT_PREFIX = "FEDAVG_RESULT "


def _alpha(text: str) -> float | None:
    return None if text.lower() == "iid" else float(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=SCRIPT, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4, help="federated clients, spread over the processes (default 4)")
    parser.add_argument("--alpha", type=_alpha, default=None,
                        help="Dirichlet concentration of the label split, or 'iid' (default iid)")
    parser.add_argument("--rounds", type=int, default=3, help="communication rounds (default 3)")
    parser.add_argument("--local-steps", type=int, default=5, help="SGD steps per client and round (default 5)")
    parser.add_argument("--lr", type=float, default=0.5, help="client learning rate (default 0.5)")
    parser.add_argument("--batch-size", type=int, default=32, help="client mini-batch (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="split, initialisation and mini-batch seed (default 0)")
    parser.add_argument("--secure", action="store_true", help="aggregate through pairwise masks (secure_agg)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: NCCL on GPU LOCAL_RANK when CUDA is present, else gloo on the CPU")
    return parser


def _secure_all_reduce(vector: torch.Tensor, rank: int, world: int, round_index: int, seed: int) -> torch.Tensor:
    """The sum over processes of ``vector`` (float), each process's share masked: only the sum is ever seen."""
    import torch.distributed as dist

    from bigtrain_lab.federated.secure_agg import decode, encode, keypair, mask_update, pair_keys

    private, public = keypair(rank, seed)
    publics: list[Any] = [None] * world
    dist.all_gather_object(publics, public)  # the "server" relays public keys only
    masked = mask_update(encode(vector.cpu()), rank, pair_keys(rank, private, publics), round_index=round_index)
    total = masked.to(vector.device)
    dist.all_reduce(total)  # int64 sum of values < 2**32: no overflow for any realistic world size
    return decode(total.cpu()).to(vector.device, torch.float32)


def worker(argv: list[str] | None = None) -> dict[str, Any] | None:
    """One torchrun process (see the module docstring). Returns, on rank 0, the run's settings, the global test
    accuracy after every round, the final parameters (nested lists) and which clients each rank held."""
    import torch.distributed as dist

    from bigtrain_lab.distributed.env import cleanup, init_distributed
    from bigtrain_lab.federated.fedavg import init_softmax_params, local_sgd, softmax_regression
    from bigtrain_lab.federated.simulate import accuracy, client_seed, federated_digits

    args = _parser().parse_args(argv)
    if min(args.clients, args.rounds, args.local_steps, args.batch_size) < 1 or not args.lr > 0:
        raise SystemExit("--clients, --rounds, --local-steps, --batch-size must be >= 1 and --lr > 0")
    env = init_distributed(args.device, script=SCRIPT)
    try:
        if args.clients < env.world_size:
            raise SystemExit(f"{env.world_size} processes but only {args.clients} clients: every process needs one")
        task = federated_digits(args.clients, args.alpha, seed=args.seed)
        mine = [k for k in range(args.clients) if k % env.world_size == env.rank]
        data = {k: (task.clients[k][0].to(env.device), task.clients[k][1].to(env.device)) for k in mine}
        params = {k: v.to(env.device) for k, v in
                  init_softmax_params(task.clients[0][0].shape[1], task.n_classes, seed=args.seed).items()}
        names = list(params)
        history = []
        for r in range(args.rounds):
            weighted = {k: torch.zeros_like(v) for k, v in params.items()}
            n_here = 0
            for k, (x, y) in data.items():
                local = local_sgd(params, softmax_regression, x, y, local_steps=args.local_steps, lr=args.lr,
                                  batch_size=args.batch_size,
                                  generator=torch.Generator().manual_seed(client_seed(args.seed, r, k, args.clients)))
                for name in names:
                    weighted[name] += len(x) * (local[name] - params[name] if args.secure else local[name])
                n_here += len(x)
            flat = torch.cat([weighted[name].flatten() for name in names]
                             + [torch.tensor([float(n_here)], device=env.device)])
            if args.secure:  # updates (local - global) are small: they fit the fixed point
                flat = _secure_all_reduce(flat, env.rank, env.world_size, r, args.seed)
            else:
                dist.all_reduce(flat)  # sum over processes of n_k * params_k, and of n_k
            total, offset, new = flat[-1], 0, {}
            for name in names:
                size = params[name].numel()
                mean = (flat[offset:offset + size] / total).view_as(params[name])
                new[name] = params[name] + mean if args.secure else mean
                offset += size
            params = new
            history.append(accuracy({k: v.cpu() for k, v in params.items()}, task.x_test, task.y_test))
        held: list[Any] = [None] * env.world_size
        dist.all_gather_object(held, mine)
        result = {"world_size": env.world_size, "backend": env.backend, "clients": args.clients, "alpha": args.alpha,
                  "rounds": args.rounds, "local_steps": args.local_steps, "lr": args.lr, "batch_size": args.batch_size,
                  "seed": args.seed, "secure": args.secure, "clients_per_rank": held, "global_accuracy": history,
                  "params": {k: v.cpu().tolist() for k, v in params.items()}}
    finally:
        cleanup()
    return result if env.is_main else None


def result_line(result: dict[str, Any]) -> str:
    """The line the script prints on rank 0: ``RESULT_PREFIX`` + the result as JSON."""
    return json_line(RESULT_PREFIX, result)


def parse_result(lines: list[str]) -> dict[str, Any]:
    """The JSON object of the line (rank-tagged or not) that starts with ``RESULT_PREFIX``."""
    return find_json_line(lines, RESULT_PREFIX)


#: ``python -c`` program that runs ``worker`` as the script does (torchrun ``--no-python``: no script file needed).
_WORKER = ("import sys; from bigtrain_lab.federated.worker import result_line, worker; "
           "from bigtrain_lab.distributed.env import exit_process; r = worker(sys.argv[1:]); "
           "r is None or print(result_line(r), flush=True); exit_process(0)")


def run_fedavg_torchrun(procs: int = 2, *, clients: int = 4, alpha: float | None = None, rounds: int = 3,
                        local_steps: int = 5, lr: float = 0.5, batch_size: int = 32, seed: int = 0,
                        secure: bool = False, device: str = "cpu", script: str | os.PathLike[str] | None = None,
                        timeout_s: float = 300.0) -> dict[str, Any]:
    """Run FedAvg under ``torchrun --nproc_per_node=procs`` and return rank 0's result (``worker``) with
    ``params`` as float32 tensors and ``seconds`` (the launch's wall time, torchrun's start included).
    ``script``: the path of ``scripts/fedavg_train.py`` (None: the same worker from the installed package)."""
    from bigtrain_lab.distributed.launch import run_torchrun

    if procs < 1:
        raise ValueError(f"procs must be >= 1, got {procs}")
    args = ["--clients", clients, "--alpha", "iid" if alpha is None else alpha, "--rounds", rounds,
            "--local-steps", local_steps, "--lr", lr, "--batch-size", batch_size, "--seed", seed, "--device", device]
    args = [str(a) for a in args] + (["--secure"] if secure else [])
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if script is None:
        launched = run_torchrun("--no-python", [sys.executable, "-c", _WORKER, *args], nproc_per_node=procs, env=env,
                                timeout_s=timeout_s, echo=False)
    else:
        launched = run_torchrun(Path(script).resolve(), args, nproc_per_node=procs, env=env, timeout_s=timeout_s,
                                echo=False)
    launched.check()
    result = parse_result(launched.lines)
    result["params"] = {k: torch.tensor(v, dtype=torch.float32) for k, v in result["params"].items()}
    return {**result, "seconds": launched.seconds}
