"""The run both distributed scripts share: flags, corpus windows, TinyGPT, AdamW and the lr schedule.

``scripts/ddp_train.py`` and ``scripts/fsdp_train.py`` differ only in how the model is wrapped (DDP
replicas or FSDP shards) and how checkpoints are written; everything that decides the numbers lives here,
so that a DDP run, an FSDP run and a single-process ``bigtrain_lab.train.train`` run of the same job can
be compared weight for weight.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import Any

from bigtrain_lab.distributed.data import CharWindows
from bigtrain_lab.models import GPTConfig, TinyGPT
from bigtrain_lab.train import TrainConfig, cosine_schedule


@dataclass(frozen=True)
class Job:
    """One training run. ``batch_size`` is per rank and per micro-batch: the global batch of one
    optimizer step is ``batch_size * grad_accum * world_size`` windows of ``block_size`` characters."""

    steps: int = 20
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 2
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    block_size: int = 32
    max_chars: int = 200_000

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "n_layer", "n_head", "n_embd", "block_size",
                     "max_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)!r}")
        if self.warmup_steps < 0 or not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"need --warmup-steps >= 0 and 0 <= --min-lr <= --lr, got "
                             f"{self.warmup_steps}, {self.min_lr}, {self.lr}")
        GPTConfig(n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd, block_size=self.block_size)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The job's flags, ``--steps``, ``--batch-size``, ..., with the dataclass defaults."""
        group = parser.add_argument_group("job (the same in every script)")
        for name, default in asdict(cls()).items():
            group.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default,
                               help=f"(default {default})" + (" per rank per micro-batch"
                                                              if name == "batch_size" else ""))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Job:
        return cls(**{name: getattr(args, name) for name in asdict(cls())})

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

    def schedule(self):
        return cosine_schedule(self.lr, self.min_lr, self.warmup_steps, self.steps)

    def single_process_config(self, world_size: int) -> TrainConfig:
        """The ``bigtrain_lab.train.TrainConfig`` of the same job on one process with the same global
        batch: one micro-batch of ``batch_size * grad_accum * world_size`` windows per step."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size * self.grad_accum * world_size,
                           grad_accum_steps=1, lr=self.lr, weight_decay=self.weight_decay,
                           grad_clip=self.grad_clip, seed=self.seed, log_every=max(1, self.steps))

    def tokens_per_step(self, world_size: int) -> int:
        return self.batch_size * self.grad_accum * world_size * self.block_size


def train_single_process(job: Job, world_size: int, *, progress: bool = False):
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
    result = train(model, as_get_batch(stream), config, schedule=job.schedule(), progress=progress)
    return model, result


def max_weight_difference(a: dict, b: dict) -> float:
    """``max |a[k] - b[k]|`` over two state_dicts with the same keys and shapes."""
    if a.keys() != b.keys():
        raise ValueError(f"different keys: {sorted(set(a) ^ set(b))[:5]}")
    return max(float((a[k].detach().float().cpu() - b[k].detach().float().cpu()).abs().max()) for k in a)


def job_args(job: Job) -> list[str]:
    """The command-line flags that reproduce ``job`` in either script."""
    return [arg for name, value in asdict(job).items() for arg in (f"--{name.replace('_', '-')}", str(value))]
