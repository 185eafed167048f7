"""Lesson 12's digits experiments (``bigtrain_lab.privacy.experiments``) and the dial's plain function."""

import json
import math

import pytest

from bigtrain_lab.compress.digits import load_digits
from bigtrain_lab.privacy.accountant import epsilon as accounted
from bigtrain_lab.privacy.experiments import (
    DPRecipe,
    dial_data,
    membership_models,
    membership_split,
    run_sweep,
    train_digits,
)
from bigtrain_lab.privacy.membership import dp_advantage_bound


def tiny_sweep() -> dict:
    """A hand-made sweep in ``run_sweep``'s schema (two epsilons, two seeds)."""
    return {"task": "digits", "recipe": {}, "epochs": 5, "delta": 1e-5, "n_train": 1257, "sample_rate": 0.2,
            "steps": 25, "epsilons": [1.0, 8.0], "seeds": [0, 1], "noise_multipliers": {"1": 4.5, "8": 1.0},
            "accuracy": {"1": [0.8, 0.9], "8": [0.9, 0.9]}, "clip_only_accuracy": [0.91, 0.92],
            "nonprivate_accuracy": [0.95, 0.93],
            "mia": {"members": 200, "nonmembers": 1057, "epochs": 20, "sample_rate": 0.25, "steps": 80,
                    "noise_multipliers": {"1": 9.3, "8": 1.7}, "advantage": {"1": [0.1, 0.2], "8": [0.2, 0.2]},
                    "auc": {"1": [0.5, 0.6], "8": [0.6, 0.6]}, "nonprivate_advantage": [0.3, 0.25], "chance": 0.05}}


def test_dial_data_reads_one_epsilon_of_the_sweep():
    d = dial_data(tiny_sweep(), 1.0)
    assert d["noise_multiplier"] == 4.5 and d["mia_noise_multiplier"] == 9.3
    assert d["accuracy"] == pytest.approx((0.85, 0.05)) and d["nonprivate_accuracy"] == pytest.approx((0.94, 0.01))
    assert d["advantage"] == pytest.approx((0.15, 0.05)) and d["nonprivate_advantage"] == pytest.approx(0.275)
    assert d["bound"] == pytest.approx(dp_advantage_bound(1.0, 1e-5))
    assert d["curves"]["accuracy_mean"] == pytest.approx([0.85, 0.9]) and len(d["curves"]["bound"]) == 2
    assert "epsilon = 1" in d["summary"] and "4.50" in d["summary"] and "DP bound 0.462" in d["summary"]
    with pytest.raises(ValueError, match="no epsilon 3 in this sweep: it has 1, 8"):
        dial_data(tiny_sweep(), 3.0)


def test_train_digits_reaches_its_epsilon_and_the_nonprivate_baseline_learns():
    digits = load_digits()
    X, y = digits.X_train[:400], digits.y_train[:400]
    model, info = train_digits(X, y, epsilon=2.0, epochs=2, seed=0)
    assert info["epsilon"] <= 2.0 + 1e-6 and info["noise_multiplier"] > 0
    assert info["epsilon"] == pytest.approx(accounted(info["noise_multiplier"], info["sample_rate"], info["steps"]))
    assert info["sample_rate"] == pytest.approx(256 / 400) and info["steps"] == round(2 / (256 / 400))
    _, clip_only = train_digits(X, y, epsilon=math.inf, epochs=2, seed=0)
    assert clip_only["noise_multiplier"] == 0.0 and math.isinf(clip_only["epsilon"])
    plain, info = train_digits(X, y, epsilon=None, epochs=5, seed=0, recipe=DPRecipe(expected_batch=64))
    assert info["epsilon"] is None
    assert float((plain(digits.X_test).argmax(1) == digits.y_test).double().mean()) > 0.8


def test_run_sweep_schema_is_json_and_feeds_the_dial():
    sweep = run_sweep([2.0], [0], epochs=1, mia_members=100, mia_epochs=2, progress=False)
    sweep = json.loads(json.dumps(sweep))
    assert sweep["epsilons"] == [2.0] and len(sweep["accuracy"]["2"]) == 1
    assert len(sweep["nonprivate_accuracy"]) == len(sweep["clip_only_accuracy"]) == 1
    assert sweep["mia"]["members"] == 100 and sweep["mia"]["nonmembers"] == 1157
    assert 0 <= sweep["mia"]["advantage"]["2"][0] <= 1
    assert dial_data(sweep, 2.0)["noise_multiplier"] == sweep["noise_multipliers"]["2"]


def test_membership_models_names_and_bounds():
    digits = load_digits()
    split = membership_split(digits, 100, seed=0)
    assert len(split.X_in) == 100 and len(split.X_out) == len(digits.X_train) - 100
    out = membership_models(digits, split, epochs=5, epsilons=[1.0], dp_epochs=2)
    assert list(out) == ["overfit", "regularised", "max-norm", "no DP, same recipe", "DP eps=1"]
    dp = out["DP eps=1"]
    assert dp["epsilon"] <= 1.0 + 1e-6 and dp["bound"] == pytest.approx(dp_advantage_bound(dp["epsilon"], 1e-5))
    for r in out.values():
        assert 0 <= r["advantage"] <= 1 and 0 <= r["auc"] <= 1
    with pytest.raises(ValueError, match="n_members"):
        membership_split(digits, 0, seed=0)
