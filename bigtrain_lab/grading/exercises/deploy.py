"""Exercises of the deploy topic (lesson 13): a checkpoint a training run resumes from bit-identically.

Both are graded by OUTCOME with ``bigtrain_lab.deploy.checkpoint.resume_experiment``: a small MLP with
dropout, AdamW (weight decay) and a one-cycle LR schedule, batches drawn from the global RNG, trains for
``total_steps``; at ``save_at`` it stops, the state is saved, written with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (so anything but tensors and plain data is refused, as a safe loader
must), every object is rebuilt from another seed, the RNG reseeded, the state restored and training goes on.
A case passes when the final parameters equal the uninterrupted run's bit for bit (the runner drives the
reference the same way, and a unit test checks the reference against the uninterrupted run) and every
step's loss matches. The runner runs where the candidate lives (``probe.resume_training``: in a learner's
kernel when grading a notebook); the verdict is computed here.

- ``deploy.training_state(model, optimizer, scheduler, step)``: the learner saves, the reference
  (``restore_training_state``) restores, so the saved dict must use the lesson's keys ``model``,
  ``optimizer``, ``scheduler``, ``step`` and ``rng`` (``torch.get_rng_state()``).
- ``deploy.restore_training_state(state, model, optimizer, scheduler) -> int``: the reference saves, the
  learner restores into the fresh objects and the RNG and returns the step to continue from.

Forgetting the optimizer's moments, the scheduler, the RNG (dropout masks and batch order) or the step, or
saving a whole module (refused by weights_only=True), changes the result.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from bigtrain_lab.deploy.checkpoint import restore_training_state, training_state
from bigtrain_lab.grading import probe
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe


def _configs(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("resume half way (step 20 of 40)", ({"seed": 0, "total_steps": 40, "save_at": 20},)),
        Case("resume after the first step", ({"seed": 1, "total_steps": 30, "save_at": 1},)),
        Case("resume one step before the end", ({"seed": 2, "total_steps": 30, "save_at": 29},)),
        Case("save before any step (step 0)", ({"seed": 3, "total_steps": 25, "save_at": 0},)),
        Case("a wider net, batch 16", ({"seed": 4, "total_steps": 36, "save_at": 12, "hidden": 32,
                                        "batch_size": 16},)),
        Case("five classes, twelve features", ({"seed": 5, "total_steps": 32, "save_at": 17, "features": 12,
                                                "classes": 5},)),
        Case("resume during warm-up (one-cycle LR still rising)", ({"seed": 6, "total_steps": 60, "save_at": 5},)),
    ]
    for i in range(5):
        total = int(rng.integers(12, 50))
        config = {"seed": int(rng.integers(0, 2**20)), "total_steps": total, "save_at": int(rng.integers(1, total)),
                  "hidden": int(rng.choice([8, 16, 24])), "batch_size": int(rng.choice([4, 8, 12])),
                  "lr": float(rng.choice([0.01, 0.05, 0.1]))}
        cases.append(Case(f"random #{i + 1} (save at {config['save_at']} of {total})", (config,)))
    return cases


def run_save(fn: Any, config: dict) -> dict:
    """The learner's ``training_state`` saves, the reference restores."""
    return probe.resume_training(fn, "save", config)


def run_restore(fn: Any, config: dict) -> dict:
    """The reference saves, the learner's ``restore_training_state`` restores."""
    return probe.resume_training(fn, "restore", config)


def _resume_reason(got: Any, expected: dict) -> str | None:
    if not isinstance(got, dict):
        return f"the run returned {type(got).__name__}: {describe(got, 80)}"
    if got.get("problem"):
        return str(got["problem"])
    steps, want = got.get("steps"), expected["steps"]
    if steps != want:
        return (f"training ran {steps} steps in total after the restart, the uninterrupted run {want}: the step "
                "saved (or returned by restore) is not the step training stopped at")
    losses, want_losses = list(got.get("losses", [])), expected["losses"]
    for i, (a, b) in enumerate(zip(losses, want_losses, strict=False)):
        if not (a == b or (math.isnan(a) and math.isnan(b))):
            return (f"the loss of step {i} is {a!r}, the uninterrupted run's {b!r}: resumed training differs from "
                    "there on (is the model, the optimizer's state, the scheduler or the RNG state missing?)")
    params = got.get("params", {})
    for name, value in expected["params"].items():
        other = params.get(name)
        if not isinstance(other, torch.Tensor) or other.shape != value.shape or not torch.equal(other, value):
            return f"the final {name.removeprefix('param:')} differs from the uninterrupted run's"
    return None


_HINT_SAVE = ("Return {'model': model.state_dict(), 'optimizer': optimizer.state_dict(), "
              "'scheduler': scheduler.state_dict(), 'step': step, 'rng': torch.get_rng_state()}: only tensors "
              "and plain data, so torch.load(..., weights_only=True) can read it.")
_HINT_RESTORE = ("load_state_dict the model, the optimizer and the scheduler from state['model'], "
                 "state['optimizer'], state['scheduler'], torch.set_rng_state(state['rng']) and return "
                 "int(state['step']).")

register(Exercise(
    id="deploy.training_state",
    reference=training_state,
    make_cases=_configs,
    compare=_resume_reason,
    hint=_HINT_SAVE,
    section="resumable-checkpoints",
    time_limit=30.0,
    run=run_save,
))

register(Exercise(
    id="deploy.restore_training_state",
    reference=restore_training_state,
    make_cases=_configs,
    compare=_resume_reason,
    hint=_HINT_RESTORE,
    section="resumable-checkpoints",
    time_limit=30.0,
    run=run_restore,
))
