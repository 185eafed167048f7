"""Everything a training run needs to resume bit-identically, saved as data only.

Lesson 13 (``notebooks/13_saving_and_export.ipynb``). A resumable checkpoint holds the model's and the
optimizer's ``state_dict`` (AdamW's moments and step counts), the LR scheduler's, the step reached and the
RNG state (dropout masks and the batch order come from it). Every value is a tensor, number, string, list or
dict, so ``torch.load(..., weights_only=True)`` reads it back without unpickling arbitrary objects.

``resume_experiment`` is the outcome test the ``deploy.*`` exercises are graded by: train a small net with
dropout, AdamW and a one-cycle schedule for ``total_steps``; with ``save_at`` it stops there, saves with
``save``, round-trips the state through bytes (``torch.save`` / ``torch.load(weights_only=True)``), rebuilds
every object from a different seed, restores with ``restore`` and trains on. Resumed correctly, the final
weights equal the uninterrupted run's bit for bit.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

__all__ = ["ResumeRun", "restore_training_state", "resume_experiment", "state_round_trip", "training_state"]


def training_state(model: nn.Module, optimizer: torch.optim.Optimizer,
                   scheduler: torch.optim.lr_scheduler.LRScheduler, step: int) -> dict[str, Any]:
    """The resumable state: ``{"model", "optimizer", "scheduler", "step", "rng"}`` (data only)."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "step": int(step), "rng": torch.get_rng_state()}


def restore_training_state(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                           scheduler: torch.optim.lr_scheduler.LRScheduler) -> int:
    """Load ``training_state``'s dict into fresh objects and the RNG; returns the step to continue from."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return int(state["step"])


def state_round_trip(state: Any) -> Any:
    """``state`` written with ``torch.save`` and read back with ``torch.load(weights_only=True)`` (as a file
    on disk would be): raises ``pickle.UnpicklingError`` for anything but tensors and plain data."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


#: ``resume_experiment``'s result: final parameters and buffers, the loss of every step, the steps run.
ResumeRun = dict[str, Any]


def _setup(seed: int, *, features: int, hidden: int, classes: int, total_steps: int, lr: float):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, classes)).double()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    return model, optimizer, scheduler


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, X: torch.Tensor, y: torch.Tensor,
           steps: range, batch_size: int, losses: list[float]) -> None:
    model.train()
    for _ in steps:
        index = torch.randint(0, len(X), (batch_size,))  # the batch order comes from the global RNG
        loss = nn.functional.cross_entropy(model(X[index]), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))


def resume_experiment(save: Callable[..., Any] = training_state, restore: Callable[..., Any] = restore_training_state,
                      *, seed: int = 0, total_steps: int = 40, save_at: int | None = 20, features: int = 8,
                      hidden: int = 16, classes: int = 3, samples: int = 64, batch_size: int = 8,
                      lr: float = 0.05) -> ResumeRun:
    """Train for ``total_steps``, interrupted at ``save_at`` (None: never) and resumed with ``save`` /
    ``restore``; returns ``{"params": {name: tensor}, "losses": [...], "steps": int}``. ``restore``'s return
    value is the step training continues from. Data and the first init come from ``seed``."""
    g = torch.Generator().manual_seed(10_000 + seed)
    X = torch.randn(samples, features, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (samples,), generator=g)
    sizes = {"features": features, "hidden": hidden, "classes": classes, "total_steps": total_steps, "lr": lr}
    with torch.random.fork_rng():
        model, optimizer, scheduler = _setup(seed, **sizes)
        losses: list[float] = []
        if save_at is None:
            _train(model, optimizer, scheduler, X, y, range(total_steps), batch_size, losses)
        else:
            _train(model, optimizer, scheduler, X, y, range(save_at), batch_size, losses)
            state = state_round_trip(save(model, optimizer, scheduler, save_at))
            del model, optimizer, scheduler
            model, optimizer, scheduler = _setup(seed + 7_919, **sizes)  # fresh objects, different weights
            torch.manual_seed(seed + 104_729)  # and a different RNG: only the checkpoint can restore it
            start = restore(state, model, optimizer, scheduler)
            if isinstance(start, bool) or not isinstance(start, int):
                raise TypeError(f"the restore function must return the step (an int), got {type(start).__name__}")
            _train(model, optimizer, scheduler, X, y, range(start, total_steps), batch_size, losses)
        final = {f"param:{k}": v.detach().clone() for k, v in model.named_parameters()}
    return {"params": final, "losses": losses, "steps": len(losses)}
