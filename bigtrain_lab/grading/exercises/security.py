"""Exercises of the security topic (lesson 12). Reference: ``bigtrain_lab.security.adversarial``.

- ``security.fgsm(model, x, y, *, eps, clamp=(0.0, 1.0))``: ``x + eps * sign(grad_x cross_entropy(model(x),
  y))``, clamped to ``clamp`` unless it is None. float64 models (an MLP on digit-like rows in [0, 1], a CNN on
  (1, 8, 8) images, a model with dropout left in eval mode), compared within rounding. A runner checks that
  the model's parameters, their ``.grad`` and its train / eval mode are left as the caller set them and that
  ``x`` is not changed in place. Stepping down the gradient (towards the label), a raw-gradient step, no
  clamp, or attacking the model's own prediction instead of the label all differ on the cases drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from bigtrain_lab.grading.case_models import CaseModel, restore_parameters, snapshot_parameters
from bigtrain_lab.grading.exercises.optim import tensor_close
from bigtrain_lab.grading.registry import Case, Exercise, InputModified, register
from bigtrain_lab.security.adversarial import fgsm


def run_fgsm(fn: Callable[..., Any], model: nn.Module, x: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> Any:
    """``fn(model, x, y, **kwargs)``; InputModified if the model (weights, grads, mode) or ``x`` changed."""
    before = snapshot_parameters(model)
    mode, x_kept = model.training, x.clone()
    for p in model.parameters():
        p.grad = None
    out = fn(model, x, y, **kwargs)
    problems = []
    if any(p.grad is not None for p in model.parameters()):
        problems.append("the model's parameters were left with .grad set (differentiate with respect to the "
                        "input only: torch.autograd.grad(loss, x_adv))")
    if model.training != mode:
        problems.append(f"the model was switched to {'train' if model.training else 'eval'} mode (leave the "
                        "mode as the caller set it)")
    if not torch.equal(x, x_kept):
        problems.append("x was changed in place (attack a copy)")
    if restore_parameters(model, before):
        problems.insert(0, "the model's parameters changed")
    model.train(mode)
    if problems:
        x.copy_(x_kept)
        raise InputModified("; ".join(problems))
    return out


def _models(rng: np.random.Generator) -> dict[str, CaseModel]:
    """The attacked networks, in eval mode (as a caller attacks a deployed model)."""
    torch.manual_seed(int(rng.integers(2**31)))
    models = {
        "mlp": CaseModel("MLP 64 -> 32 (ReLU) -> 10 on digit rows in [0, 1]",
                         nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))),
        "cnn": CaseModel("Conv2d(1, 4, 3) -> ReLU -> Flatten -> Linear(144, 10) on (1, 8, 8) images",
                         nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))),
        "dropout": CaseModel("MLP 64 -> 32 -> Dropout(0.5) -> 10, in eval mode",
                             nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Dropout(0.5), nn.Linear(32, 10))),
        "small": CaseModel("Linear(3, 2) on rows in [-1, 1]", nn.Linear(3, 2)),
    }
    return {name: model.eval() for name, model in models.items()}


def _fgsm_cases(rng: np.random.Generator) -> list[Case]:
    models = _models(rng)
    shapes = {"mlp": (64,), "cnn": (1, 8, 8), "dropout": (64,), "small": (3,)}

    def batch(name: str, n: int, low: float = 0.0, high: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor(rng.uniform(low, high, (n, *shapes[name])), dtype=torch.float64)
        classes = 2 if name == "small" else 10
        return x, torch.tensor(rng.integers(0, classes, n), dtype=torch.int64)

    def case(label: str, name: str, n: int, eps: float, raises: type[BaseException] | None = None,
             **kwargs: Any) -> Case:
        low, high = kwargs.pop("range", (0.0, 1.0))
        return Case(label, (models[name], *batch(name, n, low, high)), {"eps": eps, **kwargs}, raises)

    cases = [
        case("MLP, 8 digit rows, eps 0.1", "mlp", 8, 0.1),
        case("one row", "mlp", 1, 0.05),
        case("a CNN on (1, 8, 8) images, eps 0.2", "cnn", 6, 0.2),
        case("eps 0: x back, unchanged", "mlp", 4, 0.0),
        case("eps 0.5: the clamp to [0, 1] matters", "mlp", 5, 0.5),
        case("clamp=None: no clamp", "mlp", 5, 0.5, clamp=None),
        case("inputs in [-1, 1], clamp=(-1.0, 1.0)", "small", 10, 0.3, clamp=(-1.0, 1.0), range=(-1.0, 1.0)),
        case("dropout in eval mode: the attack uses the model as it is", "dropout", 6, 0.1),
        case("a negative eps: ValueError", "mlp", 2, -0.1, ValueError),
        case("clamp (1, 0): ValueError", "mlp", 2, 0.1, ValueError, clamp=(1.0, 0.0)),
    ]
    names = sorted(models)
    for i in range(4):
        name = names[int(rng.integers(len(names)))]
        eps = float(rng.choice([0.01, 0.05, 0.1, 0.25]))
        cases.append(case(f"random #{i + 1}: {models[name].description}, eps {eps:g}", name,
                          int(rng.integers(2, 12)), eps))
    return cases


register(Exercise(
    id="security.fgsm",
    reference=fgsm,
    make_cases=_fgsm_cases,
    compare=tensor_close("the adversarial inputs", {torch.float64: (1e-9, 1e-12), torch.float32: (1e-6, 1e-7)}),
    run=run_fgsm,
    hint="ValueError for eps < 0 or clamp with lo > hi. x_adv = x.detach().clone().requires_grad_(True); "
         "loss = F.cross_entropy(model(x_adv), y); (g,) = torch.autograd.grad(loss, x_adv); "
         "out = x + eps * g.sign() (UP the loss: away from the label); if clamp is not None: out = "
         "out.clamp(*clamp); return out.detach(). Do not call model.train()/eval() or loss.backward().",
    section="fgsm-and-pgd",
))
