"""One small training loop for lesson 14's language models, with what the lesson measures on the way.

``train_lm(model, get_batch, steps, ...)`` trains any model whose ``forward(x, y)`` returns
``(logits, loss)`` (TinyGPT, ``bigtrain_lab.llm.model.LLM``): AdamW with decoupled weight decay on the
matrices only (biases, norms and embeddings are not decayed, as in nanoGPT), linear warmup then cosine decay
to a tenth of the peak, optional clipping of the global gradient norm. It records the loss and the gradient
norm (before clipping) of every step, and, if asked, whatever ``on_step`` returns (per-layer statistics in
the stability section). ``evaluate_lm`` is the mean next-token cross-entropy in nats on fixed validation
batches (the language-modelling loss only: auxiliary losses such as MoE balancing or z-loss are left out).

``get_batch(split, step) -> (x, y)`` is ``bigtrain_lab.train.corpus_batches``'s interface: training batch
``step``, or the fixed validation batch number ``step``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

__all__ = ["LMRun", "cosine_with_warmup", "evaluate_lm", "train_lm"]

GetBatch = Callable[[str, int], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class LMRun:
    """What one ``train_lm`` call measured."""

    losses: list[float] = field(default_factory=list)  # training loss per step (as the model returned it)
    grad_norms: list[float] = field(default_factory=list)  # global gradient norm per step, before clipping
    lrs: list[float] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)  # on_step's returns, one per step it returned one
    val_loss: float = float("nan")  # mean validation cross-entropy (nats per token) after training
    seconds: float = 0.0  # wall time of the training steps (evaluation excluded)
    tokens: int = 0  # training tokens seen

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")

    @property
    def diverged(self) -> bool:
        """True when a loss was not finite (NaN or inf): the run blew up."""
        return any(not math.isfinite(v) for v in self.losses)


def cosine_with_warmup(step: int, *, steps: int, warmup: int, lr: float, min_ratio: float = 0.1) -> float:
    """The learning rate at ``step`` (0-based): linear warmup over ``warmup`` steps, then cosine to ``min_ratio * lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay, seen = [], [], set()
    for _, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate_lm(model: nn.Module, get_batch: GetBatch, batches: int = 8) -> float:
    """Mean next-token cross-entropy (nats per token) over validation batches ``0 .. batches - 1``."""
    was_training = model.training
    model.eval()
    try:
        total, count = 0.0, 0
        for i in range(batches):
            x, y = get_batch("val", i)
            logits = model(x, y)[0]
            total += F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1),
                                     reduction="sum").item()
            count += y.numel()
    finally:
        model.train(was_training)
    return total / count


def train_lm(model: nn.Module, get_batch: GetBatch, steps: int, *, lr: float = 3e-3,
             betas: tuple[float, float] = (0.9, 0.95), weight_decay: float = 0.1, warmup: int | None = None,
             clip: float | None = 1.0, eval_batches: int = 8,
             on_step: Callable[[int, nn.Module], dict[str, Any] | None] | None = None,
             stop_when_diverged: bool = True, progress: bool | str = True) -> LMRun:
    """Train ``model`` for ``steps`` AdamW steps and return an ``LMRun``.

    ``warmup`` defaults to a tenth of the steps. ``clip=None`` switches clipping off. ``on_step(step, model)``
    runs after each backward pass, before the optimizer step (gradients are still there); a dict it returns is
    appended to ``run.stats`` with the step number. A run whose loss stops being finite ends there
    (``stop_when_diverged``), with ``val_loss`` NaN. ``progress``: a tqdm bar (a string is its label).
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if clip is not None and clip <= 0:
        raise ValueError(f"clip must be positive or None, got {clip!r}")
    warmup = max(1, steps // 10) if warmup is None else warmup
    optimizer = torch.optim.AdamW(_param_groups(model, weight_decay), lr=lr, betas=betas)
    run = LMRun()
    model.train()
    bar = tqdm(range(steps), desc=progress if isinstance(progress, str) else "train", disable=not progress,
               leave=False)
    for step in bar:
        step_lr = cosine_with_warmup(step, steps=steps, warmup=warmup, lr=lr)
        for group in optimizer.param_groups:
            group["lr"] = step_lr
        x, y = get_batch("train", step)
        start = time.perf_counter()
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip is not None else float("inf"))
        if on_step is not None and (extra := on_step(step, model)) is not None:
            run.stats.append({"step": step, **extra})
        optimizer.step()
        run.seconds += time.perf_counter() - start
        run.tokens += y.numel()
        run.losses.append(loss.item())
        run.grad_norms.append(norm.item())
        run.lrs.append(step_lr)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{run.losses[-1]:.3f}")
        if stop_when_diverged and not math.isfinite(run.losses[-1]):
            break
    bar.close()
    if not run.diverged:
        run.val_loss = evaluate_lm(model, get_batch, eval_batches)
    return run
