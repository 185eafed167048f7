"""bigtrain_lab.recipes: nanoGPT's recipe and the kit's, the one source of optimizer defaults, and the flags
the scripts generate from config dataclasses."""

import argparse
import dataclasses
import math

import pytest

from bigtrain_lab.recipes import (
    KIT,
    NANOGPT,
    RECIPES,
    Recipe,
    add_dataclass_arguments,
    add_recipe_arguments,
    dataclass_kwargs,
    make_schedule,
    recipe_from_args,
    resolve_recipe,
)
from bigtrain_lab.train import TrainConfig


def test_nanogpt_recipe_is_nanogpts_shakespeare_char_config():
    chosen = resolve_recipe("nanogpt", 2000)
    assert chosen.train_settings() == {"lr": 1e-3, "weight_decay": 0.1, "betas": (0.9, 0.99), "grad_clip": 1.0}
    schedule = chosen.make_schedule(2000)
    assert schedule(99) < schedule(100) == pytest.approx(1e-3)  # the 100-step warm-up ends
    assert schedule(1050) == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * 950 / 1900)))
    assert schedule(2000) == pytest.approx(1e-4)


def test_kit_recipe_is_warmup_stable_decay():
    chosen = resolve_recipe("kit", 2000)
    assert chosen.lr == 3e-3 and chosen.betas == (0.9, 0.95)
    schedule = chosen.make_schedule(2000)
    assert schedule(0) < schedule(49) < schedule(50) == pytest.approx(3e-3)
    assert schedule(1000) == schedule(1399) == 3e-3  # flat until the last 30 %
    assert schedule(1400) == pytest.approx(3e-3)
    assert 3e-5 < schedule(1700) < 3e-3
    assert schedule(2000) == pytest.approx(3e-5)


def test_train_config_takes_its_optimizer_defaults_from_the_kit_recipe():
    config = TrainConfig()
    assert (config.lr, config.weight_decay, config.betas, config.grad_clip) == (
        KIT.lr, KIT.weight_decay, KIT.betas, KIT.grad_clip)
    assert TrainConfig(**NANOGPT.train_settings()).betas == (0.9, 0.99)


def test_short_runs_warm_up_for_at_most_a_tenth_unless_told_otherwise():
    assert resolve_recipe("nanogpt", 200).warmup_steps == 20
    schedule = resolve_recipe("kit", 100).make_schedule(100)
    assert schedule(9) < schedule(10) == pytest.approx(3e-3)
    assert resolve_recipe("kit", 100, warmup_steps=30).warmup_steps == 30  # an override is taken as given
    assert resolve_recipe("kit", 100, lr=None, min_lr=1e-4) == dataclasses.replace(
        resolve_recipe("kit", 100), min_lr=1e-4)  # None: the recipe's


@pytest.mark.parametrize("call, message", [
    (lambda: resolve_recipe("adam", 10), "unknown recipe 'adam'"),
    (lambda: make_schedule("linear", 1e-3, 0.0, 0, 10), "unknown schedule"),
    (lambda: resolve_recipe("kit", 10, min_lr=1.0), "Recipe.min_lr must be in"),
    (lambda: resolve_recipe("kit", 10, betas=(0.9, 1.0)), "Recipe.betas"),
    (lambda: resolve_recipe("kit", 10, schedule="step"), "Recipe.schedule"),
])
def test_bad_names_and_values_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_named_recipe_is_valid_and_distinct():
    assert len({dataclasses.astuple(r) for r in RECIPES.values()}) == len(RECIPES)
    assert all(isinstance(r, Recipe) for r in RECIPES.values())


def train_config_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_dataclass_arguments(parser, TrainConfig, skip={"checkpoint_path", "checkpoint_every"},
                            defaults={"steps": 2000})
    return parser


def test_flags_are_generated_from_the_config_fields():
    parser = train_config_parser()
    flags = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert set(flags) == {f.name for f in dataclasses.fields(TrainConfig)} - {"checkpoint_path", "checkpoint_every"}
    assert flags["steps"].default == 2000 and flags["batch_size"].default == TrainConfig().batch_size
    assert flags["precision"].choices == ("fp32", "bf16", "fp16") and "autocast" in flags["precision"].help
    assert flags["grad_accum_steps"].option_strings == ["--grad-accum-steps"]

    args = parser.parse_args(["--steps", "5", "--betas", "0.8", "0.9", "--compile", "--precision", "bf16",
                              "--grad-clip", "0"])
    config = TrainConfig(**dataclass_kwargs(args, TrainConfig))
    assert config == TrainConfig(steps=5, betas=(0.8, 0.9), compile=True, precision="bf16", grad_clip=0.0)
    assert TrainConfig(**dataclass_kwargs(parser.parse_args(["--no-compile"]), TrainConfig)) == TrainConfig(steps=2000)
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(["--precision", "fp8"])


def test_recipe_flags_override_parts_of_the_chosen_recipe():
    parser = argparse.ArgumentParser()
    add_recipe_arguments(parser, default="kit")
    assert recipe_from_args(parser.parse_args([]), 2000) == KIT
    args = parser.parse_args(["--recipe", "nanogpt", "--lr", "2e-3", "--betas", "0.9", "0.98"])
    assert recipe_from_args(args, 2000) == dataclasses.replace(NANOGPT, lr=2e-3, betas=(0.9, 0.98))
    assert recipe_from_args(parser.parse_args(["--recipe", "nanogpt"]), 300).warmup_steps == 30
