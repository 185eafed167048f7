"""Distributed checkpointing with ``torch.distributed.checkpoint`` (DCP): save sharded, load on another world size.

Lesson 13 (``notebooks/13_saving_and_export.ipynb``), "checkpoints of a sharded model". Under FSDP2
(``torch.distributed.fsdp.fully_shard``) no process holds the whole model: each holds 1/N of every weight
and of AdamW's moments, as DTensor shards. ``dcp.save`` has every rank write ITS shards in parallel
(``__<rank>_0.distcp`` files) plus one ``.metadata`` file that records which slice of which tensor lives
where; ``dcp.load`` has each rank read the slices ITS shards need, whatever world size wrote them. So a
checkpoint saved by 2 processes loads into 1 or 3 (resharding on load), and
``torch.distributed.checkpoint.format_utils.dcp_to_torch_save`` turns it into one ordinary ``torch.save``
file that loads without any process group (``consolidate_checkpoint``).

The worker (``worker``) is what ``scripts/dcp_checkpoint.py`` runs under torchrun: gloo on the CPU, NCCL on
GPUs, the same code. ``run_dcp_roundtrip`` launches it twice (save with one world size, load with
another) and returns both runs' JSON results. FSDP2 runs on gloo CPU processes in this torch (2.13) for
fp32: no limitation met here (bf16 compute on CPU is slow, so the worker keeps fp32 everywhere).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.distributed.launch import find_json_line, json_line

__all__ = ["RESULT_PREFIX", "SCRIPT", "build_model", "checkpoint_files", "consolidate_checkpoint", "parse_result",
           "result_line", "run_dcp_roundtrip", "worker"]

SCRIPT = "scripts/dcp_checkpoint.py"
#: The worker's rank 0 prints one line ``RESULT_PREFIX + json``.
RESULT_PREFIX = "DCP_RESULT "


def build_model(seed: int = 0) -> nn.Module:
    """The checkpointed model: an MLP 64 -> 256 -> 256 -> 10 (83 k parameters), initialised from ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def checkpoint_files(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The files of a DCP checkpoint folder, ``[{"file", "bytes"}]`` sorted by name."""
    folder = Path(directory)
    return [{"file": p.name, "bytes": p.stat().st_size} for p in sorted(folder.iterdir()) if p.is_file()]


def consolidate_checkpoint(dcp_dir: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """One ``torch.save`` file from a DCP folder (``format_utils.dcp_to_torch_save``: every shard read and
    stitched in this one process, no process group needed); ``torch.load(path, weights_only=True)`` reads
    it back as the dict that was saved, with full tensors."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dcp_to_torch_save(dcp_dir, path)
    return path


# ----------------------------------------------------------------------------------------------------
# The worker (one process of a torchrun job)


def _synthetic_batch(step: int, rank: int, world: int, batch: int, device: torch.device
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's slice of global batch ``step``: fixed random inputs, labels from a fixed linear teacher
    (the data do not matter here, only that the weights and AdamW's moments move)."""
    g = torch.Generator().manual_seed(1_000 + step)
    X = torch.randn(batch * world, 64, generator=g)
    teacher = torch.randn(64, 10, generator=torch.Generator().manual_seed(7))
    y = (X @ teacher).argmax(1)
    part = slice(rank * batch, (rank + 1) * batch)
    return X[part].to(device), y[part].to(device)


def _shard(model: nn.Module) -> None:
    """FSDP2: each Linear its own unit, then the root."""
    from torch.distributed.fsdp import fully_shard

    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer)
    fully_shard(model)


def _local_bytes(tree: Any) -> int:
    """Bytes of the tensors this rank holds in a (nested) state dict: a DTensor counts its local shard."""
    from torch.distributed.tensor import DTensor

    if isinstance(tree, DTensor):
        local = tree.to_local()
        return local.numel() * local.element_size()
    if isinstance(tree, torch.Tensor):
        return tree.numel() * tree.element_size()
    if isinstance(tree, dict):
        return sum(_local_bytes(v) for v in tree.values())
    if isinstance(tree, list | tuple):
        return sum(_local_bytes(v) for v in tree)
    return 0


def _full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The unsharded model and optimizer state on rank 0's CPU (a collective: every rank calls it; the
    other ranks get empty dicts)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return {"model": get_model_state_dict(model, options=options),
            "optim": get_optimizer_state_dict(model, optimizer, options=options)}


def _max_abs_diff(a: Any, b: Any) -> float:
    """Largest |a - b| over matching tensors of two nested structures (inf when their keys differ)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape:
            return float("inf")
        return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return float("inf")
        return max((_max_abs_diff(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return float("inf")
        return max((_max_abs_diff(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    return 0.0 if a == b else float("inf")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=SCRIPT, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save", metavar="DIR", help="train --steps steps, then dcp.save model + AdamW to DIR")
    mode.add_argument("--load", metavar="DIR", help="dcp.load DIR into a fresh sharded model and compare")
    parser.add_argument("--reference", metavar="PATH", default=None,
                        help="the full (unsharded) state rank 0 writes after --save and compares after "
                             "--load (default: DIR.reference.pt next to DIR)")
    parser.add_argument("--steps", type=int, default=3, help="training steps before --save (default 3)")
    parser.add_argument("--batch-size", type=int, default=16, help="rows per rank per step (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed of --save (--load uses another)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: NCCL on GPU LOCAL_RANK when CUDA is present, else gloo on the CPU")
    return parser


def result_line(result: dict[str, Any]) -> str:
    """The line the script prints on rank 0: ``RESULT_PREFIX`` + the result as JSON."""
    return json_line(RESULT_PREFIX, result)


def worker(argv: list[str] | None = None) -> dict[str, Any] | None:
    """One torchrun worker: ``--save DIR`` or ``--load DIR`` (see ``scripts/dcp_checkpoint.py``). Returns the
    result on rank 0 (files written and their sizes, bytes per rank, and after ``--load`` the max |diff| from
    the reference), None on the other ranks."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    from bigtrain_lab.distributed.env import cleanup, init_distributed

    args = _parser().parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        raise SystemExit(f"--steps and --batch-size must be >= 1, got {args.steps}, {args.batch_size}")
    directory = Path(args.save or args.load)
    reference = Path(args.reference) if args.reference else directory.with_name(directory.name + ".reference.pt")
    env = init_distributed(args.device, script=SCRIPT)
    result: dict[str, Any] = {"mode": "save" if args.save else "load", "world_size": env.world_size,
                              "backend": env.backend, "directory": str(directory)}
    try:
        # --load starts from other weights: only the checkpoint can make them equal to the saved ones
        model = build_model(args.seed if args.save else args.seed + 1).to(env.device)
        _shard(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        if args.save:
            for step in range(args.steps):
                X, y = _synthetic_batch(step, env.rank, env.world_size, args.batch_size, env.device)
                loss = F.cross_entropy(model(X), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # FSDP2 reduce-scatters: each rank gets its shard of the mean gradient
                optimizer.step()
            model_sd, optim_sd = get_state_dict(model, optimizer)  # DTensor shards, no gathering
            dcp.save({"model": model_sd, "optim": optim_sd, "step": torch.tensor(args.steps)},
                     checkpoint_id=directory)
            local = _local_bytes({"model": model_sd, "optim": optim_sd})
            full = _full_state(model, optimizer)
            if env.is_main:
                reference.parent.mkdir(parents=True, exist_ok=True)
                torch.save(full, reference)
            result.update(steps=args.steps, loss=float(loss.detach()))
        else:
            model_sd, optim_sd = get_state_dict(model, optimizer)
            state = {"model": model_sd, "optim": optim_sd, "step": torch.tensor(0)}
            dcp.load(state, checkpoint_id=directory)  # each rank reads the slices its shards cover
            set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
            local = _local_bytes({"model": state["model"], "optim": state["optim"]})
            full = _full_state(model, optimizer)
            if env.is_main:
                saved = torch.load(reference, weights_only=True)
                result.update(step=int(state["step"]), max_abs_diff_model=_max_abs_diff(full["model"], saved["model"]),
                              max_abs_diff_optim=_max_abs_diff(full["optim"], saved["optim"]))
        per_rank = [None] * env.world_size
        dist.all_gather_object(per_rank, local)
        dist.barrier()
        result.update(bytes_per_rank=per_rank, files=checkpoint_files(directory), reference=str(reference))
    finally:
        cleanup()
    return result if env.is_main else None


# ----------------------------------------------------------------------------------------------------
# The launcher a lesson calls

#: ``python -c`` program that runs ``worker`` as the script does (torchrun ``--no-python``: no script file needed).
_WORKER = ("import sys; from bigtrain_lab.deploy.sharded import result_line, worker; "
           "from bigtrain_lab.distributed.env import exit_process; r = worker(sys.argv[1:]); "
           "r is None or print(result_line(r), flush=True); exit_process(0)")


def parse_result(lines: list[str]) -> dict[str, Any]:
    """The JSON object of the line (rank-tagged or not) that starts with ``RESULT_PREFIX``."""
    return find_json_line(lines, RESULT_PREFIX)


def _launch(script: str | os.PathLike[str] | None, args: list[str], procs: int, timeout_s: float,
            cwd: Path) -> dict[str, Any]:
    from bigtrain_lab.distributed.launch import run_torchrun

    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if script is None:  # torchrun --no-python <python> -c <program> args: the installed package's worker
        result = run_torchrun("--no-python", [sys.executable, "-c", _WORKER, *args], nproc_per_node=procs,
                              env=env, cwd=cwd, timeout_s=timeout_s, echo=False)
    else:
        result = run_torchrun(Path(script).resolve(), args, nproc_per_node=procs, env=env, cwd=cwd,
                              timeout_s=timeout_s, echo=False)
    result.check()
    return {**parse_result(result.lines), "seconds": result.seconds}


def run_dcp_roundtrip(save_procs: int = 2, load_procs: int = 1, tmp_dir: str | os.PathLike[str] | None = None, *,
                      script: str | os.PathLike[str] | None = None, steps: int = 3, device: str = "cpu",
                      timeout_s: float = 300.0) -> dict[str, Any]:
    """Save with ``save_procs`` processes, load with ``load_procs``, consolidate; returns
    ``{"save": {...}, "load": {...}, "consolidated": {...}}``.

    ``save``: the files DCP wrote (``.metadata`` + one ``.distcp`` per rank) with their sizes,
    ``bytes_per_rank`` (model + AdamW shards each rank held), the world size and backend. ``load``: the same
    for the new world size, and ``max_abs_diff_model`` / ``max_abs_diff_optim`` of the reloaded full state
    against the saved one (0.0: bit for bit). ``consolidated``: ``consolidate_checkpoint``'s single file
    (``file``, ``path``, ``bytes``, ``keys``) and its max |difference| from the saved model state. ``script``: the path of
    ``scripts/dcp_checkpoint.py`` to launch (None: the same worker from the installed package).
    ``tmp_dir`` (default: a new temporary folder) keeps the checkpoint and the reference."""
    if save_procs < 1 or load_procs < 1:
        raise ValueError(f"save_procs and load_procs must be >= 1, got {save_procs}, {load_procs}")
    folder = Path(tmp_dir) if tmp_dir is not None else Path(tempfile.mkdtemp(prefix="bigtrain-dcp-"))
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / f"dcp_{save_procs}procs"
    common = ["--device", device, "--reference", str(folder / f"{ckpt.name}.reference.pt")]
    saved = _launch(script, ["--save", str(ckpt), "--steps", str(steps), *common], save_procs, timeout_s, folder)
    loaded = _launch(script, ["--load", str(ckpt), *common], load_procs, timeout_s, folder)
    single = consolidate_checkpoint(ckpt, folder / f"{ckpt.name}.consolidated.pt")
    state = torch.load(single, weights_only=True)
    reference = torch.load(folder / f"{ckpt.name}.reference.pt", weights_only=True)
    consolidated = {"file": single.name, "path": str(single), "bytes": single.stat().st_size, "keys": sorted(state),
                    "max_abs_diff_model": _max_abs_diff(state["model"], reference["model"])}
    return {"save": saved, "load": loaded, "consolidated": consolidated}
