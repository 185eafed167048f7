"""The transfer strategies of lesson 10 on ``bigtrain_lab.models.CNN``, and the learning-curve sweep.

Every strategy starts from a CNN (pretrained, or random for ``"scratch"``), puts a fresh ``Linear(64, 5)``
head in place of ``head[-1]``, and trains with AdamW for a fixed number of steps on random batches:

- ``scratch``: a randomly initialised CNN, everything trains.
- ``probe`` (feature extraction, a linear probe): the backbone frozen with
  ``bigtrain_lab.transfer.freezing.freeze_for_feature_extraction``, only the new head trains.
- ``finetune``: everything trains at one learning rate.
- ``discriminative``: everything trains, the learning rate divided by ``decay`` per layer below the head
  (ULMFiT's discriminative fine-tuning: conv1 gets ``lr / decay**3``).
- ``gradual``: gradual unfreezing (ULMFiT): a third of the steps head only, a third head + fc, a third
  everything, with the discriminative rates.
- ``lora``: the backbone frozen, a rank-``r`` LoRA adapter on the fully connected layer ``head.1`` and the
  new head train.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from bigtrain_lab.fit import accuracy, fit_classifier
from bigtrain_lab.models import CNN
from bigtrain_lab.transfer.freezing import freeze_for_feature_extraction
from bigtrain_lab.transfer.lora import add_lora
from bigtrain_lab.transfer.pretrain import pretrained_cnn, target_task

__all__ = ["LAYERS", "STRATEGIES", "curve_figure_data", "learning_curves", "new_head", "prepare", "relative_change",
           "train_strategy", "trainable_names"]

STRATEGIES = {
    "scratch": "random init, all layers train",
    "probe": "frozen pretrained backbone + new linear head (feature extraction)",
    "finetune": "pretrained, all layers train at one learning rate",
    "discriminative": "pretrained, all layers train, lr / 3 per layer further from the head",
    "gradual": "pretrained, unfrozen top-down in three stages, discriminative lrs",
    "lora": "frozen pretrained backbone + rank-4 LoRA on the fc layer + new head",
}
#: The CNN's weight layers, from the input up: (name shown, module path).
LAYERS = (("conv1", "features.0"), ("conv2", "features.2"), ("fc", "head.1"), ("head", "head.4"))


def new_head(model: CNN, num_classes: int, *, seed: int) -> CNN:
    """Replace ``model.head[-1]`` by a fresh ``Linear`` (initialised from ``seed``); returns ``model``."""
    old = model.head[-1]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model.head[-1] = nn.Linear(old.in_features, num_classes)
    return model


def _groups(model: CNN, lr: float, decay: float, layers: Sequence[tuple[str, str]]) -> list[dict]:
    """One param group per layer, lr divided by ``decay`` per step down from the head."""
    top = len(LAYERS) - 1
    depth = {path: top - i for i, (_, path) in enumerate(LAYERS)}
    return [{"params": list(model.get_submodule(path).parameters()), "lr": lr / decay ** depth[path]}
            for _, path in layers]


def prepare(strategy: str, backbone: Callable[[], CNN] | None = None, *, num_classes: int = 5, seed: int = 0,
            lr: float = 3e-3, decay: float = 3.0, lora_rank: int = 4) -> tuple[CNN, list[dict]]:
    """The model a strategy trains (new head in place) and its optimizer param groups (with ``lr``).

    ``backbone()`` makes the pretrained CNN (default ``pretrained_cnn("digits_0_4")``); ``"scratch"`` ignores
    it. Frozen parameters get ``requires_grad=False`` and appear in no group."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    if strategy == "scratch":
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = CNN(num_classes)
        return model, [{"params": list(model.parameters()), "lr": lr}]
    model = new_head((backbone or pretrained_cnn)(), num_classes, seed=seed)
    if strategy == "probe":
        groups = freeze_for_feature_extraction(model, "head.4")
    elif strategy == "lora":
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            add_lora(model.head, "1", r=lora_rank)
        groups = freeze_for_feature_extraction(model, ["head.4", "head.1.lora_A", "head.1.lora_B"])
    elif strategy == "finetune":
        groups = [{"params": list(model.parameters())}]
    else:  # discriminative; gradual starts the same way and unfreezes in train_strategy
        return model, _groups(model, lr, decay, LAYERS)
    return model, [{**g, "lr": lr} for g in groups]


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the parameters that will train (``requires_grad``)."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def _fit(model: nn.Module, groups: list[dict], X: torch.Tensor, y: torch.Tensor, steps: int, seed: int) -> None:
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    fit_classifier(model, X, y, steps=steps, batch_size=min(32, len(X)), sampling="random", optimizer=optimizer,
                   seed=seed)


def train_strategy(strategy: str, X: torch.Tensor, y: torch.Tensor, *, steps: int, seed: int = 0,
                   backbone: Callable[[], CNN] | None = None, lr: float = 3e-3, decay: float = 3.0) -> CNN:
    """Train ``strategy`` on ``(X, y)`` for ``steps`` AdamW steps (batches of up to 32, drawn with
    replacement from ``seed``); returns the trained model."""
    model, groups = prepare(strategy, backbone, num_classes=int(y.max()) + 1 if len(y) else 5, seed=seed, lr=lr,
                            decay=decay)
    if strategy != "gradual":
        _fit(model, groups, X, y, steps, seed)
        return model
    for stage, paths in enumerate((LAYERS[3:], LAYERS[2:], LAYERS)):
        model.requires_grad_(False)
        for _, path in paths:
            model.get_submodule(path).requires_grad_(True)
        stage_groups = _groups(model, lr, decay, paths)
        _fit(model, stage_groups, X, y, steps // 3 + (stage < steps % 3), seed + stage)
    model.requires_grad_(True)
    return model


def learning_curves(strategies: Iterable[str], budgets: Sequence[int], seeds: Sequence[int], *, steps: int,
                    backbone: Callable[[], CNN] | None = None, lr: float = 3e-3,
                    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    progress: Callable[[list], Iterable] = iter) -> dict[str, Any]:
    """Test accuracy of each strategy at each label budget (per class) and seed, on the target task.

    ``transform`` is applied to train and test images (e.g. a pixel permutation: a far domain). Returns
    ``{"budgets", "seeds", "steps", "lr", "accuracy": {strategy: [[acc per seed] per budget]}}``."""
    strategies = list(strategies)
    jobs = [(b, s, name) for b in budgets for s in seeds for name in strategies]
    acc: dict[str, list[list[float]]] = {name: [[] for _ in budgets] for name in strategies}
    data: dict[tuple[int, int], tuple[torch.Tensor, ...]] = {}
    for b, s, name in progress(jobs):
        if (b, s) not in data:
            X, y, X_test, y_test = target_task(s, b)
            data[(b, s)] = (X, y, X_test, y_test) if transform is None else (transform(X), y, transform(X_test), y_test)
        X, y, X_test, y_test = data[(b, s)]
        model = train_strategy(name, X, y, steps=steps, seed=s, backbone=backbone, lr=lr)
        acc[name][list(budgets).index(b)].append(accuracy(model, X_test, y_test))
    return {"budgets": list(budgets), "seeds": list(seeds), "steps": steps, "lr": lr, "accuracy": acc}


def curve_figure_data(results: dict[str, Any]) -> dict[str, Any]:
    """Per strategy the mean, std, mean - std and mean + std of test accuracy at each budget (``ddof=0``)."""
    series = {}
    for name, per_budget in results["accuracy"].items():
        a = [np.asarray(v, dtype=float) for v in per_budget]
        mean, std = [float(v.mean()) for v in a], [float(v.std()) for v in a]
        series[name] = {"mean": mean, "std": std, "low": [m - s for m, s in zip(mean, std, strict=True)],
                        "high": [m + s for m, s in zip(mean, std, strict=True)]}
    return {"x": list(results["budgets"]), "series": series, "seeds": len(results["seeds"])}


@torch.no_grad()
def relative_change(before: nn.Module, after: nn.Module, layers: Sequence[tuple[str, str]] = LAYERS[:3]
                    ) -> dict[str, float]:
    """``||W_after - W_before|| / ||W_before||`` (Frobenius) of each layer's weight, by shown name."""
    out = {}
    for shown, path in layers:
        w0 = before.get_submodule(path).weight
        w1 = after.get_submodule(path)
        w1 = w1.base.weight + w1.delta_weight() if hasattr(w1, "delta_weight") else w1.weight
        out[shown] = float((w1 - w0).norm() / w0.norm())
    return out
