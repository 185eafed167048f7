"""The run both distributed scripts share: flags, corpus windows, TinyGPT, AdamW and the lr schedule.

``scripts/ddp_train.py`` and ``scripts/fsdp_train.py`` differ only in how the model is wrapped (DDP
replicas or FSDP shards) and how checkpoints are written; everything that decides the numbers lives here,
so that a DDP run, an FSDP run and a single-process ``bigtrain_lab.train.train`` run of the same job can
be compared weight for weight. The optimizer settings are a recipe of ``bigtrain_lab.recipes`` (nanoGPT's
by default) with the overrides that are set.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn

from bigtrain_lab.distributed.data import CharWindows
from bigtrain_lab.models import GPTConfig, TinyGPT
from bigtrain_lab.recipes import (
    RECIPE_FIELDS,
    RECIPES,
    Recipe,
    add_dataclass_arguments,
    dataclass_kwargs,
    flag_names,
    recipe_override,
    resolve_recipe,
)
from bigtrain_lab.train import TrainConfig, TrainResult, configure_adamw


@dataclass(frozen=True)
class Job:
    """One training run. ``batch_size`` is per rank and per micro-batch: the global batch of one
    optimizer step is ``batch_size * grad_accum * world_size`` windows of ``block_size`` characters.
    The optimizer fields left None take ``recipe``'s values (``optimizer_recipe()``)."""

    steps: int = field(default=20, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=8, metadata={"help": "windows per rank per micro-batch"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    recipe: str = field(default="nanogpt", metadata={
        "help": "optimizer settings and lr schedule (bigtrain_lab.recipes); the flags below override its parts",
        "choices": tuple(sorted(RECIPES))})
    lr: float | None = recipe_override("lr")
    min_lr: float | None = recipe_override("min_lr")
    warmup_steps: int | None = recipe_override("warmup_steps")
    schedule: str | None = recipe_override("schedule")
    betas: tuple[float, float] | None = recipe_override("betas")
    weight_decay: float | None = recipe_override("weight_decay")
    grad_clip: float | None = recipe_override("grad_clip")
    decay_fraction: float | None = recipe_override("decay_fraction")
    seed: int = field(default=0, metadata={"help": "initialisation and data order"})
    n_layer: int = field(default=2, metadata={"help": "TinyGPT's transformer blocks"})
    n_head: int = field(default=2, metadata={"help": "attention heads"})
    n_embd: int = field(default=64, metadata={"help": "embedding width"})
    block_size: int = field(default=32, metadata={"help": "context length in characters"})
    max_chars: int = field(default=200_000, metadata={"help": "characters of the standard-library corpus"})

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "n_layer", "n_head", "n_embd", "block_size",
                     "max_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)!r}")
        try:
            self.optimizer_recipe()
            self.model_config(vocab_size=1)
        except ValueError as exc:
            raise ValueError(flag_names(str(exc))) from None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The job's flags, ``--steps``, ``--batch-size``, ..., generated from the fields."""
        add_dataclass_arguments(parser.add_argument_group("job (the same in every script)"), cls)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Job:
        return cls(**dataclass_kwargs(args, cls))

    def optimizer_recipe(self) -> Recipe:
        """``recipe`` for a run of ``steps`` steps, with the optimizer fields that are set."""
        return resolve_recipe(self.recipe, self.steps, **{name: getattr(self, name) for name in RECIPE_FIELDS})

    def lr_schedule(self) -> Callable[[int], float]:
        return self.optimizer_recipe().make_schedule(self.steps)

    def optimizer(self, model: nn.Module) -> torch.optim.AdamW:
        """``bigtrain_lab.train.configure_adamw`` with the recipe's settings (on FSDP's shards too)."""
        chosen = self.optimizer_recipe()
        return configure_adamw(model, chosen.lr, chosen.weight_decay, chosen.betas)

    def dataset(self) -> tuple[CharWindows, Any]:
        """``(windows of the training split, the corpus)`` of the standard-library character corpus."""
        from bigtrain_lab.data import load_text_corpus

        corpus = load_text_corpus(max_chars=self.max_chars)
        return CharWindows(corpus.train, self.block_size), corpus

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=vocab_size, block_size=self.block_size, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd)

    def model(self, vocab_size: int) -> TinyGPT:
        """TinyGPT initialised from ``seed`` (call after ``seed_everything(seed)`` for the same weights
        on every rank; DDP also broadcasts rank 0's at start)."""
        return TinyGPT(self.model_config(vocab_size))

    def single_process_config(self, world_size: int) -> TrainConfig:
        """The ``bigtrain_lab.train.TrainConfig`` of the same job on one process with the same global
        batch: one micro-batch of ``batch_size * grad_accum * world_size`` windows per step."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size * self.grad_accum * world_size,
                           grad_accum_steps=1, seed=self.seed, log_every=max(1, self.steps),
                           **self.optimizer_recipe().train_settings())

    def tokens_per_step(self, world_size: int) -> int:
        return self.batch_size * self.grad_accum * world_size * self.block_size


def train_single_process(job: Job, world_size: int, *, progress: bool = False) -> tuple[TinyGPT, TrainResult]:
    """The same job on ONE process with the global batch of ``world_size`` ranks, through
    ``bigtrain_lab.train.train``: ``(model, TrainResult)``. A correct DDP or FSDP run of ``job`` on
    ``world_size`` ranks ends with the same weights, up to float rounding (the mean over the global batch
    is summed in another order)."""
    from bigtrain_lab.distributed.data import as_get_batch, micro_batches
    from bigtrain_lab.reproducibility import seed_everything
    from bigtrain_lab.train import train

    dataset, corpus = job.dataset()
    seed_everything(job.seed)
    model = job.model(corpus.vocab_size)
    config = job.single_process_config(world_size)
    stream = micro_batches(dataset, batch_size=config.batch_size, seed=job.seed)
    result = train(model, as_get_batch(stream), config, schedule=job.lr_schedule(), progress=progress)
    return model, result


def max_weight_difference(a: dict, b: dict) -> float:
    """``max |a[k] - b[k]|`` over two state_dicts with the same keys and shapes."""
    if a.keys() != b.keys():
        raise ValueError(f"different keys: {sorted(set(a) ^ set(b))[:5]}")
    return max(float((a[k].detach().float().cpu() - b[k].detach().float().cpu()).abs().max()) for k in a)


def job_args(job: Job) -> list[str]:
    """The command-line flags that reproduce ``job`` in either script (unset optimizer fields left out)."""
    args = []
    for name, value in asdict(job).items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", *map(str, value if isinstance(value, tuple) else [value])]
    return args
