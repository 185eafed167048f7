"""Training recipes, the one source of optimizer defaults, and command-line flags made from config dataclasses.

A ``Recipe`` is AdamW's settings plus a learning-rate schedule. ``KIT`` is the kit's default:
``bigtrain_lab.train.TrainConfig`` takes its optimizer defaults from it and ``scripts/train_gpt.py`` runs it.
``NANOGPT`` is nanoGPT's shakespeare-char configuration: the distributed scripts' default and
``bare_train_loop``'s. ``bench/recipes.py`` trains both on the same batches and measures the steps each needs
to reach the same validation loss (``bench/results/recipes.json``).

``add_dataclass_arguments`` turns a config dataclass's fields into ``argparse`` flags (name, type, default,
help and choices from the field), so that a script's flags cannot drift from the configuration they fill.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bigtrain_lab.schedules import constant_schedule, cosine_schedule, wsd_schedule

SCHEDULE_KINDS = ("constant", "cosine", "wsd")

#: nanoGPT's CPU configuration for shakespeare-char (config/train_shakespeare_char.py, CPU overrides):
#: the TinyGPT shape (GPTConfig keyword arguments) and the batch size the benches measure at.
NANOGPT_CPU_SHAPE: dict[str, Any] = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0}
NANOGPT_CPU_BATCH_SIZE = 12


@dataclass(frozen=True)
class Recipe:
    """AdamW settings and a schedule: linear warm-up to ``lr``, then ``schedule`` down to ``min_lr``."""

    lr: float = field(metadata={"help": "peak learning rate"})
    min_lr: float = field(metadata={"help": "final learning rate of cosine / wsd"})
    warmup_steps: int = field(metadata={"help": "steps of linear warm-up"})
    schedule: str = field(metadata={"help": "shape after the warm-up", "choices": SCHEDULE_KINDS})
    betas: tuple[float, float] = field(metadata={"help": "AdamW's moment decays", "metavar": ("BETA1", "BETA2")})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW's decoupled decay of >= 2-D weights"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the global gradient norm (0: off)"})
    decay_fraction: float = field(default=0.2, metadata={"help": "wsd: the decaying last part of the run"})

    def __post_init__(self) -> None:
        checks = {
            "lr": (self.lr > 0, "> 0"),
            "min_lr": (0 <= self.min_lr <= self.lr, "in [0, lr]"),
            "warmup_steps": (self.warmup_steps >= 0, ">= 0"),
            "schedule": (self.schedule in SCHEDULE_KINDS, f"one of {SCHEDULE_KINDS}"),
            "betas": (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "two numbers in [0, 1)"),
            "weight_decay": (self.weight_decay >= 0, ">= 0"),
            "grad_clip": (self.grad_clip >= 0, ">= 0 (0 disables)"),
            "decay_fraction": (0 < self.decay_fraction <= 1, "in (0, 1]"),
        }
        for name, (ok, expected) in checks.items():
            if not ok:
                raise ValueError(f"Recipe.{name} must be {expected}, got {getattr(self, name)!r}")
        object.__setattr__(self, "betas", (float(self.betas[0]), float(self.betas[1])))

    def for_run(self, steps: int) -> Recipe:
        """This recipe for a run of ``steps`` steps: the warm-up shortened to at most a tenth of the run."""
        return replace(self, warmup_steps=min(self.warmup_steps, steps // 10))

    def train_settings(self) -> dict[str, Any]:
        """The ``TrainConfig`` keyword arguments of this recipe."""
        return {"lr": self.lr, "weight_decay": self.weight_decay, "betas": self.betas, "grad_clip": self.grad_clip}

    def make_schedule(self, steps: int) -> Callable[[int], float]:
        """step -> learning rate for a run of ``steps`` steps."""
        return make_schedule(self.schedule, self.lr, self.min_lr, self.warmup_steps, steps,
                             decay_fraction=self.decay_fraction)


def make_schedule(kind: str, lr: float, min_lr: float, warmup_steps: int, steps: int, *,
                  decay_fraction: float = 0.2) -> Callable[[int], float]:
    """A schedule by name: ``constant``, ``cosine`` or ``wsd``."""
    if kind == "constant":
        return constant_schedule(lr, warmup_steps)
    if kind == "cosine":
        return cosine_schedule(lr, min_lr, warmup_steps, steps)
    if kind == "wsd":
        return wsd_schedule(lr, min_lr, warmup_steps, steps, decay_fraction=decay_fraction)
    raise ValueError(f"unknown schedule {kind!r}; choose one of {SCHEDULE_KINDS}")


#: nanoGPT's config/train_shakespeare_char.py: lr 1e-3 -> 1e-4 cosine, 100 warm-up steps, beta2 0.99
NANOGPT = Recipe(lr=1e-3, min_lr=1e-4, warmup_steps=100, schedule="cosine", betas=(0.9, 0.99))
#: the kit's: 3x the peak lr, beta2 0.95, warmup-stable-decay with the last 30 % decaying to lr / 100
KIT = Recipe(lr=3e-3, min_lr=3e-5, warmup_steps=50, schedule="wsd", betas=(0.9, 0.95), decay_fraction=0.3)

RECIPES: dict[str, Recipe] = {
    "nanogpt": NANOGPT,
    "kit": KIT,
    # candidates bench/recipes.py compared when choosing the kit's (600-step runs)
    "cosine-3e-3": replace(KIT, schedule="cosine"),
    "wsd-5e-3": replace(KIT, lr=5e-3, min_lr=5e-5),
}


def resolve_recipe(name: str, steps: int, **overrides: Any) -> Recipe:
    """Recipe ``name`` for a run of ``steps`` steps, with the ``overrides`` that are not None (e.g. flags
    left unset). An overridden ``warmup_steps`` is taken as given; the recipe's own is capped at a tenth."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return replace(RECIPES[name].for_run(steps), **{k: v for k, v in overrides.items() if v is not None})


RECIPE_FIELDS = {f.name: f for f in dataclasses.fields(Recipe)}


def recipe_override(name: str) -> Any:
    """A dataclass field that overrides ``Recipe.<name>``: default None, the recipe's value."""
    return field(default=None, metadata=RECIPE_FIELDS[name].metadata)


# ----------------------------------------------------------------------------------------------------
# Command-line flags from dataclass fields


def add_dataclass_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, *,
                            only: Collection[str] | None = None, skip: Collection[str] = (),
                            defaults: Mapping[str, Any] | None = None) -> None:
    """One flag per field of dataclass ``cls``: ``--field-name``, typed from the annotation (``bool``:
    ``--x/--no-x``; ``tuple[float, float]``: two values; ``T | None``: a ``T``), with the field's default
    (or ``defaults[name]``) and ``help``, ``choices`` and ``metavar`` from the field's metadata."""
    hints = typing.get_type_hints(cls)
    defaults = defaults or {}
    for f in dataclasses.fields(cls):
        if f.name in skip or (only is not None and f.name not in only):
            continue
        default = defaults.get(f.name, f.default)
        if default is dataclasses.MISSING:
            raise ValueError(f"{cls.__name__}.{f.name} has no default: pass defaults={{{f.name!r}: ...}}")
        help_text = f.metadata.get("help", "")
        if default is not None:
            shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
            help_text = f"{help_text} (default: {shown})".lstrip()
        kwargs = {k: f.metadata[k] for k in ("choices", "metavar") if k in f.metadata}
        parser.add_argument(f"--{f.name.replace('_', '-')}", default=default, help=help_text,
                            **_argparse_type(hints[f.name]), **kwargs)


def _argparse_type(annotation: Any) -> dict[str, Any]:
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = [a for a in args if a is not type(None)]
        args = typing.get_args(annotation)
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(annotation) is tuple:
        return {"nargs": len(args), "type": args[0]}
    return {"type": annotation}


def dataclass_kwargs(args: argparse.Namespace, cls: type, *, skip: Collection[str] = ()) -> dict[str, Any]:
    """The values of ``cls``'s fields that ``args`` holds, but those in ``skip`` (two-value flags as tuples)."""
    return {f.name: tuple(value) if isinstance(value := getattr(args, f.name), list) else value
            for f in dataclasses.fields(cls) if hasattr(args, f.name) and f.name not in skip}


def add_recipe_arguments(parser: argparse.ArgumentParser, *, default: str) -> None:
    """``--recipe NAME`` and one flag per ``Recipe`` field that overrides a part of it."""
    group = parser.add_argument_group(
        "optimizer and schedule", "--recipe picks the settings (bigtrain_lab.recipes; bench/recipes.py compares "
        "them); the flags after it override its parts")
    group.add_argument("--recipe", choices=sorted(RECIPES), default=default,
                       help=f"kit: {_describe(KIT)}; nanogpt: {_describe(NANOGPT)} (default: {default})")
    add_dataclass_arguments(group, Recipe, defaults=dict.fromkeys(RECIPE_FIELDS))


def recipe_from_args(args: argparse.Namespace, steps: int) -> Recipe:
    """The recipe that ``add_recipe_arguments``' flags describe, for a run of ``steps`` steps."""
    return resolve_recipe(args.recipe, steps, **dataclass_kwargs(args, Recipe))


def flag_names(message: str) -> str:
    """Speak of ``--grad-accum-steps`` rather than ``TrainConfig.grad_accum_steps`` in an error message."""
    return re.sub(r"\b(?:TrainConfig|GPTConfig|Recipe)\.(\w+)", lambda m: "--" + m.group(1).replace("_", "-"),
                  message)


def _describe(r: Recipe) -> str:
    return (f"AdamW lr {r.lr:g} -> {r.min_lr:g} {r.schedule}, betas {r.betas}, {r.warmup_steps} warm-up steps "
            f"(at most a tenth of the run)")
