"""Penalties and constraints on a network's weights, and what they leave behind (lesson 10).

"Weights" here are the >= 2-D parameters (the matrices of linear and conv layers): the penalties, the
decay and the counts leave biases and normalisation parameters alone, as ``bigtrain_lab.train.configure_adamw``
does. ``l2_penalty`` is ``1/2 * sum(w**2)``, so that ``wd * l2_penalty(model)`` in the loss has the gradient
``wd * w``: exactly what ``torch.optim.Adam(..., weight_decay=wd)`` adds to the gradient.

>>> import torch
>>> net = torch.nn.Linear(3, 2)
>>> with torch.no_grad():
...     _ = net.weight.copy_(torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.5, 1e-4]]))
>>> round(float(l1_penalty(net).detach()), 4), float(l2_penalty(net).detach())
(7.5001, 12.625)
>>> round(weight_summary(net, threshold=1e-3)["sparsity"], 3)  # 0.0, 0.0 and 1e-4 of the six
0.5
>>> _ = apply_max_norm(net, 1.0)
>>> [round(float(r), 4) for r in net.weight.detach().norm(dim=1)]  # the first row was 5 long
[1.0, 0.5]
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["adam_effective_decay", "apply_max_norm", "decay_groups", "l1_penalty", "l2_penalty", "layer_sparsity",
           "weight_matrices", "weight_summary", "weight_values"]


def weight_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The >= 2-D parameters of ``model`` (linear / conv weights), in registration order."""
    return [p for p in model.parameters() if p.dim() >= 2]


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """``sum |w|`` over the weight matrices (add ``lambda * l1_penalty(model)`` to the loss)."""
    return sum(p.abs().sum() for p in weight_matrices(model))


def l2_penalty(model: nn.Module) -> torch.Tensor:
    """``1/2 * sum w**2`` over the weight matrices: ``wd * l2_penalty`` has the gradient ``wd * w``."""
    return 0.5 * sum((p ** 2).sum() for p in weight_matrices(model))


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups: ``weight_decay`` on the weight matrices, 0 on the rest."""
    weights = {id(p) for p in weight_matrices(model)}
    return [{"params": [p for p in model.parameters() if id(p) in weights], "weight_decay": weight_decay},
            {"params": [p for p in model.parameters() if id(p) not in weights], "weight_decay": 0.0}]


@torch.no_grad()
def apply_max_norm(model: nn.Module, max_norm: float) -> nn.Module:
    """Project every unit's incoming weight vector (a row of an ``nn.Linear`` weight) back onto the ball of
    radius ``max_norm`` (Srivastava et al., 2014; Keras' ``MaxNorm``): rows longer than ``max_norm`` are
    rescaled to it, shorter ones are left alone. Call it after every optimizer step. Returns ``model``."""
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.weight.copy_(torch.renorm(module.weight, p=2, dim=0, maxnorm=max_norm))
    return model


def weight_values(model: nn.Module) -> torch.Tensor:
    """Every weight-matrix entry of ``model``, flattened into one detached 1-D tensor."""
    return torch.cat([p.detach().flatten() for p in weight_matrices(model)])


def weight_summary(model: nn.Module, *, threshold: float = 1e-3) -> dict[str, float]:
    """``norm``: the L2 norm of all weight matrices together; ``sparsity``: the share of their entries with
    ``|w| < threshold``; ``largest``: the largest ``|w|``."""
    w = weight_values(model)
    return {"norm": float(w.norm()), "sparsity": float((w.abs() < threshold).double().mean()),
            "largest": float(w.abs().max())}


def layer_sparsity(model: nn.Module, *, threshold: float = 1e-3) -> dict[str, float]:
    """Per weight matrix (by parameter name), the share of its entries with ``|w| < threshold``."""
    return {name: float((p.detach().abs() < threshold).double().mean())
            for name, p in model.named_parameters() if p.dim() >= 2}


def adam_effective_decay(optimizer: torch.optim.Adam) -> torch.Tensor:
    """Per weight, the decay rate that L2 through Adam really applies at the optimizer's last step.

    ``torch.optim.Adam(weight_decay=wd)`` adds ``wd * w`` to the gradient, and Adam then divides the whole
    gradient by ``sqrt(v_hat) + eps``: the weight shrinks by about ``lr * wd / (sqrt(v_hat) + eps)`` of itself
    per step (the momentum average aside). ``AdamW`` shrinks every weight by ``lr * wd``. Returns, flattened over
    the groups with a non-zero ``weight_decay``, ``lr * wd / (sqrt(v_hat) + eps)`` divided by ``lr * wd``,
    i.e. ``1 / (sqrt(v_hat) + eps)``: how many times AdamW's rate each weight gets.
    """
    ratios = []
    for group in optimizer.param_groups:
        if not group["weight_decay"]:
            continue
        beta2, eps = group["betas"][1], group["eps"]
        for p in group["params"]:
            state = optimizer.state.get(p)
            if not state:
                continue
            v_hat = state["exp_avg_sq"] / (1 - beta2 ** float(state["step"]))
            ratios.append((1.0 / (v_hat.sqrt() + eps)).flatten())
    if not ratios:
        raise ValueError("no Adam state with weight decay: take at least one step with weight_decay > 0")
    return torch.cat(ratios)
