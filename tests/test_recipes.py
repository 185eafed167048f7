"""bigtrain_lab.recipes: nanoGPT's recipe and the kit's, as the training script and bench/recipes.py use them."""

import math

import pytest

from bigtrain_lab.recipes import RECIPES, make_schedule, recipe


def test_nanogpt_recipe_is_nanogpts_shakespeare_char_config():
    settings, schedule = recipe("nanogpt", 2000)
    assert settings == {"lr": 1e-3, "weight_decay": 0.1, "betas": (0.9, 0.99), "grad_clip": 1.0}
    assert schedule(99) < schedule(100) == pytest.approx(1e-3)  # the 100-step warm-up ends
    assert schedule(1050) == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * 950 / 1900)))
    assert schedule(2000) == pytest.approx(1e-4)


def test_kit_recipe_is_warmup_stable_decay():
    settings, schedule = recipe("kit", 2000)
    assert settings["lr"] == 3e-3 and settings["betas"] == (0.9, 0.95)
    assert schedule(0) < schedule(49) < schedule(50) == pytest.approx(3e-3)
    assert schedule(1000) == schedule(1399) == 3e-3  # flat until the last 30 %
    assert schedule(1400) == pytest.approx(3e-3)
    assert 3e-5 < schedule(1700) < 3e-3
    assert schedule(2000) == pytest.approx(3e-5)


def test_short_runs_warm_up_for_at_most_a_tenth():
    assert RECIPES["nanogpt"].warmup_for(200) == 20
    _, schedule = recipe("kit", 100)
    assert schedule(9) < schedule(10) == pytest.approx(3e-3)


def test_bad_names_and_steps_are_refused():
    with pytest.raises(ValueError, match="unknown recipe 'adam'"):
        recipe("adam", 10)
    with pytest.raises(ValueError, match="steps"):
        recipe("kit", 0)
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("linear", 1e-3, 0.0, 0, 10)
