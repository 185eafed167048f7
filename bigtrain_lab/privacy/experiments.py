"""Lesson 12's privacy experiments on sklearn's digits: accuracy against epsilon over seeds, and what a
membership-inference attack learns from models trained with and without DP-SGD.

* ``DPRecipe``: the one DP-SGD setting every experiment uses (softmax regression on the 64 pixels, expected
  batch 256 of the 1,257 training digits, SGD lr 1 with momentum 0.9, clipping norm 1, delta 1e-5).
* ``train_digits``: one model of that recipe -- private at a target epsilon (its noise multiplier from the RDP
  accountant), clipped but noiseless (``epsilon=math.inf``), or non-private (``epsilon=None``: the kit's
  ``fit_classifier`` with the same optimizer, batch and epochs).
* ``membership_models``: the attack's targets, trained on a small member set (a model that memorises leaks
  most): an overfit MLP, a regularised one, one under a max-norm weight constraint, and DP-SGD ones.
* ``run_sweep``: both over epsilons and seeds, as a JSON-able dict (the schema of ``bench/privacy.py``'s result
  and of the lesson's ``EpsilonDial``); ``dial_data``: the dial's numbers for one epsilon of a sweep.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from bigtrain_lab.compress.digits import Digits, load_digits
from bigtrain_lab.fit import accuracy, fit_classifier
from bigtrain_lab.models import MLP
from bigtrain_lab.privacy.accountant import epsilon as accounted_epsilon
from bigtrain_lab.privacy.accountant import noise_multiplier_for
from bigtrain_lab.privacy.dpsgd import train_dp
from bigtrain_lab.privacy.membership import (
    attack_advantage,
    chance_advantage,
    dp_advantage_bound,
    per_example_losses,
)
from bigtrain_lab.regularization.penalties import apply_max_norm

__all__ = ["DPRecipe", "MembershipSplit", "dial_data", "eps_key", "membership_models", "membership_split",
           "run_sweep", "train_digits"]


@dataclass(frozen=True)
class DPRecipe:
    """One DP-SGD setting. ``hidden=()``: softmax regression (a linear layer), the most accurate under DP here."""

    hidden: tuple[int, ...] = ()
    expected_batch: int = 256
    lr: float = 1.0
    momentum: float = 0.9
    max_norm: float = 1.0
    delta: float = 1e-5


def eps_key(epsilon: float) -> str:
    """The key of an epsilon in a sweep's dicts: ``f"{epsilon:g}"`` (JSON keys are strings)."""
    return f"{float(epsilon):g}"


def _model(hidden: Sequence[int], seed: int, dropout: float = 0.0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MLP(64, tuple(hidden), 10, dropout=dropout)


def train_digits(X: torch.Tensor, y: torch.Tensor, *, epsilon: float | None, epochs: int, seed: int,
                 recipe: DPRecipe = DPRecipe(),
                 hidden: Sequence[int] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """A model of ``recipe`` trained on ``(X, y)`` for ``epochs`` (expected passes); returns it with its settings.

    ``epsilon``: a target epsilon at ``recipe.delta`` (the noise multiplier that reaches it over the run, from
    the RDP accountant); ``math.inf``: clipping without noise; ``None``: non-private (no clipping, no noise,
    the kit's epoch batches of ``expected_batch``). ``hidden`` overrides ``recipe.hidden``."""
    hidden = recipe.hidden if hidden is None else tuple(hidden)
    model = _model(hidden, seed)
    n = len(X)
    sample_rate = min(1.0, recipe.expected_batch / n)
    steps = max(1, round(epochs / sample_rate))
    if epsilon is None:
        batch = min(recipe.expected_batch, n)
        opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum)
        fit_classifier(model, X, y, steps=steps, batch_size=batch, optimizer=opt, seed=seed)
        return model, {"epsilon": None, "noise_multiplier": 0.0, "sample_rate": sample_rate, "steps": steps}
    sigma = 0.0 if math.isinf(epsilon) else noise_multiplier_for(epsilon, sample_rate=sample_rate, steps=steps,
                                                                   delta=recipe.delta)
    run = train_dp(model, X, y, noise_multiplier=sigma, max_norm=recipe.max_norm, sample_rate=sample_rate,
                   steps=steps, lr=recipe.lr, momentum=recipe.momentum, seed=seed)
    spent = accounted_epsilon(sigma, sample_rate, steps, delta=recipe.delta)
    return model, {"epsilon": spent, "noise_multiplier": sigma, "sample_rate": sample_rate, "steps": steps,
                   "mean_batch": float(np.mean(run.batch_sizes)), "clipped": float(np.mean(run.clipped_fraction))}


@dataclass(frozen=True)
class MembershipSplit:
    """The attack's data: the members a model trains on, the non-members it never sees (same distribution)."""

    X_in: torch.Tensor
    y_in: torch.Tensor
    X_out: torch.Tensor
    y_out: torch.Tensor


def membership_split(digits: Digits, n_members: int, seed: int) -> MembershipSplit:
    """``n_members`` random training digits as members; the rest of the training split as non-members."""
    if not 1 <= n_members < len(digits.X_train):
        raise ValueError(f"n_members must be in 1..{len(digits.X_train) - 1}, got {n_members!r}")
    order = torch.randperm(len(digits.X_train), generator=torch.Generator().manual_seed(seed))
    inside, outside = order[:n_members], order[n_members:]
    return MembershipSplit(digits.X_train[inside], digits.y_train[inside], digits.X_train[outside],
                           digits.y_train[outside])


def _attack(model: nn.Module, split: MembershipSplit, digits: Digits) -> dict[str, Any]:
    r = attack_advantage(per_example_losses(model, split.X_in, split.y_in),
                         per_example_losses(model, split.X_out, split.y_out))
    return {"train_accuracy": accuracy(model, split.X_in, split.y_in),
            "test_accuracy": accuracy(model, digits.X_test, digits.y_test), "advantage": r.advantage,
            "auc": r.auc, "yeom_advantage": r.yeom_advantage, "roc": (r.fpr, r.tpr)}


def membership_models(digits: Digits, split: MembershipSplit, *, epochs: int, epsilons: Sequence[float],
                      seed: int = 0, dp_epochs: int = 20, recipe: DPRecipe = DPRecipe()) -> dict[str, dict[str, Any]]:
    """Train the attack's targets on ``split``'s members and attack each. Returns name -> accuracies, advantage,
    AUC, Yeom's advantage, the ROC curve, and for DP models epsilon, noise multiplier and the bound.

    overfit: MLP 64-256-256-10, AdamW, no regularisation, ``epochs`` epochs of batch 32. regularised: the same
    with dropout 0.5 and weight decay 0.3, stopped after ``max(1, epochs // 10)`` epochs. max-norm: the overfit
    recipe with every unit's incoming weights projected to norm <= 1 after each step (Keras' ``MaxNorm``).
    no DP, same recipe: the DP models' recipe (softmax regression, ``dp_epochs`` passes, batch a quarter of the
    members) without clipping or noise. DP eps=E: that recipe with DP-SGD at each target epsilon."""
    out: dict[str, dict[str, Any]] = {}
    X, y = split.X_in, split.y_in
    overfit = _model((256, 256), seed)
    fit_classifier(overfit, X, y, epochs=epochs, batch_size=32, seed=seed)
    out["overfit"] = _attack(overfit, split, digits)
    regularised = _model((256, 256), seed, dropout=0.5)
    fit_classifier(regularised, X, y, epochs=max(1, epochs // 10), batch_size=32, weight_decay=0.3, seed=seed)
    out["regularised"] = _attack(regularised, split, digits)
    constrained = _model((256, 256), seed)
    opt = torch.optim.AdamW(constrained.parameters(), lr=3e-3, weight_decay=0.0)
    opt.register_step_post_hook(lambda *_: apply_max_norm(constrained, 1.0))
    fit_classifier(constrained, X, y, epochs=epochs, batch_size=32, optimizer=opt, seed=seed)
    out["max-norm"] = _attack(constrained, split, digits)
    small = DPRecipe(**{**asdict(recipe), "expected_batch": min(recipe.expected_batch, max(1, len(X) // 4))})
    plain, _ = train_digits(X, y, epsilon=None, epochs=dp_epochs, seed=seed, recipe=small)
    out["no DP, same recipe"] = _attack(plain, split, digits)
    for eps in epsilons:
        model, info = train_digits(X, y, epsilon=eps, epochs=dp_epochs, seed=seed, recipe=small)
        out[f"DP eps={eps_key(eps)}"] = {**_attack(model, split, digits), **info,
                                          "bound": dp_advantage_bound(info["epsilon"], small.delta)}
    return out


def run_sweep(epsilons: Sequence[float], seeds: Sequence[int], *, epochs: int, mia_members: int = 200,
              mia_epochs: int = 20, recipe: DPRecipe = DPRecipe(), progress: bool = True) -> dict[str, Any]:
    """Accuracy and membership advantage against epsilon, over ``seeds``, as a JSON-able dict.

    Accuracy: models of ``recipe`` trained on all 1,257 training digits (``epochs`` expected passes) at each
    epsilon, clipped without noise, and non-private; test accuracy. Attack: the same recipe trained on
    ``mia_members`` members (``mia_epochs`` passes; the member set and the batch are smaller, so a member is a
    larger share of each step), attacked against the rest of the training split."""
    digits = load_digits()
    small = DPRecipe(**{**asdict(recipe), "expected_batch": min(recipe.expected_batch, max(1, mia_members // 4))})
    keys = [eps_key(e) for e in epsilons]
    acc: dict[str, list[float]] = {k: [] for k in keys}
    adv: dict[str, list[float]] = {k: [] for k in keys}
    auc: dict[str, list[float]] = {k: [] for k in keys}
    sigma: dict[str, float] = {}
    mia_sigma: dict[str, float] = {}
    clip_only, nonprivate, nonprivate_adv, settings, mia_settings = [], [], [], {}, {}
    jobs = [(seed, eps) for seed in seeds for eps in [*epsilons, math.inf, None]]
    for seed, eps in tqdm(jobs, desc="accuracy vs epsilon", disable=not progress):
        model, info = train_digits(digits.X_train, digits.y_train, epsilon=eps, epochs=epochs, seed=seed,
                                   recipe=recipe)
        test = accuracy(model, digits.X_test, digits.y_test)
        settings = {"sample_rate": info["sample_rate"], "steps": info["steps"]}
        split = membership_split(digits, mia_members, seed)
        target, target_info = train_digits(split.X_in, split.y_in, epsilon=eps, epochs=mia_epochs, seed=seed,
                                           recipe=small)
        attack = _attack(target, split, digits)
        if eps is None:
            nonprivate.append(test)
            nonprivate_adv.append(attack["advantage"])
        elif math.isinf(eps):
            clip_only.append(test)
        else:
            k = eps_key(eps)
            acc[k].append(test)
            adv[k].append(attack["advantage"])
            auc[k].append(attack["auc"])
            sigma[k], mia_sigma[k] = info["noise_multiplier"], target_info["noise_multiplier"]
            mia_settings = {"sample_rate": target_info["sample_rate"], "steps": target_info["steps"]}
    n_out = len(digits.X_train) - mia_members
    return {"task": "sklearn digits (1,257 train / 270 test), softmax regression", "recipe": asdict(recipe),
            "epochs": epochs, "delta": recipe.delta, "n_train": len(digits.X_train), **settings,
            "epsilons": [float(e) for e in epsilons], "seeds": list(seeds), "noise_multipliers": sigma,
            "accuracy": acc, "clip_only_accuracy": clip_only, "nonprivate_accuracy": nonprivate,
            "mia": {"members": mia_members, "nonmembers": n_out, "epochs": mia_epochs, **mia_settings,
                    "noise_multipliers": mia_sigma, "advantage": adv, "auc": auc,
                    "nonprivate_advantage": nonprivate_adv,
                    "chance": chance_advantage(mia_members, n_out, repeats=100, seed=0)}}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def dial_data(sweep: Mapping[str, Any], epsilon: float) -> dict[str, Any]:
    """The epsilon dial's numbers for ``epsilon`` (one of ``sweep["epsilons"]``): the noise multipliers the
    accountant needed, test accuracy mean and spread over seeds (and non-private), the attack's advantage with
    the bound DP guarantees, the curves over every epsilon, and an HTML ``summary``."""
    k = eps_key(epsilon)
    if k not in sweep["accuracy"]:
        raise ValueError(f"no epsilon {k} in this sweep: it has {', '.join(eps_key(e) for e in sweep['epsilons'])}")
    mia, delta = sweep["mia"], float(sweep["delta"])
    keys = [eps_key(e) for e in sweep["epsilons"]]
    acc_mean, acc_std = zip(*(_mean_std(sweep["accuracy"][e]) for e in keys), strict=True)
    adv_mean, adv_std = zip(*(_mean_std(mia["advantage"][e]) for e in keys), strict=True)
    bounds = [dp_advantage_bound(float(e), delta) for e in sweep["epsilons"]]
    here = keys.index(k)
    np_mean, np_std = _mean_std(sweep["nonprivate_accuracy"])
    np_adv = float(np.mean(mia["nonprivate_advantage"]))
    seeds = len(sweep["seeds"])
    summary = (f"<b>epsilon = {k}</b> (delta = {delta:g}, {sweep['steps']} steps at sample rate "
               f"{sweep['sample_rate']:.3f}): noise multiplier <b>{sweep['noise_multipliers'][k]:.2f}</b><br>"
               f"test accuracy {acc_mean[here]:.3f} ± {acc_std[here]:.3f} over {seeds} seed(s); "
               f"non-private {np_mean:.3f} ± {np_std:.3f}<br>"
               f"membership attack ({mia['members']} members, noise multiplier {mia['noise_multipliers'][k]:.2f}): "
               f"advantage {adv_mean[here]:.3f} ± {adv_std[here]:.3f}, DP bound {bounds[here]:.3f}, "
               f"non-private {np_adv:.3f}, a coin {mia['chance']:.3f}")
    return {"epsilon": float(sweep["epsilons"][here]), "key": k,
            "noise_multiplier": float(sweep["noise_multipliers"][k]),
            "mia_noise_multiplier": float(mia["noise_multipliers"][k]),
            "accuracy": (acc_mean[here], acc_std[here]), "nonprivate_accuracy": (np_mean, np_std),
            "advantage": (adv_mean[here], adv_std[here]), "bound": bounds[here], "nonprivate_advantage": np_adv,
            "chance": float(mia["chance"]),
            "curves": {"epsilons": [float(e) for e in sweep["epsilons"]], "accuracy_mean": list(acc_mean),
                       "accuracy_std": list(acc_std), "advantage_mean": list(adv_mean),
                       "advantage_std": list(adv_std), "bound": bounds},
            "summary": summary}
