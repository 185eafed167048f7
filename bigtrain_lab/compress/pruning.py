"""Pruning with ``torch.nn.utils.prune``: unstructured (per layer or global magnitude), structured pruning
that really shrinks the layers, iterative prune + fine-tune, and ``prune.remove`` to make it permanent.

``torch.nn.utils.prune`` never deletes anything: it renames ``weight`` to ``weight_orig``, adds a buffer
``weight_mask`` and recomputes ``weight = weight_orig * weight_mask`` before every forward (a forward
pre-hook). The model keeps its shapes, and its dense matmuls, whatever the sparsity. Only removing whole
rows / channels (``shrink_*`` here) makes the layers smaller and faster.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from bigtrain_lab.compress.measure import sparsity
from bigtrain_lab.models import CNN, MLP

PRUNABLE = (nn.Linear, nn.Conv2d)


def _check_amount(amount: float) -> float:
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"amount must be a fraction in [0, 1], got {amount!r}")
    return float(amount)


def magnitude_prune_mask(weight: torch.Tensor, amount: float) -> torch.Tensor:
    """The 0/1 mask (dtype of ``weight``) that ``prune.l1_unstructured(module, 'weight', amount=amount)``
    puts on ``weight``: the ``round(amount * numel)`` entries of smallest ``|w|`` get 0 (Python's
    ``round``, halves to even, as torch does), the rest 1."""
    amount = _check_amount(amount)
    k = round(amount * weight.numel())
    mask = torch.ones_like(weight)
    if k:
        idx = torch.topk(weight.detach().abs().reshape(-1), k, largest=False).indices
        mask.view(-1)[idx] = 0
    return mask


def prunable_parameters(model: nn.Module, types: tuple[type, ...] = PRUNABLE) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` for every Linear / Conv2d layer, the form ``prune.global_unstructured`` takes."""
    return [(m, "weight") for m in model.modules() if isinstance(m, types)]


def prune_unstructured(model: nn.Module, amount: float, *, scope: str = "layer",
                       skip_last: bool = False) -> nn.Module:
    """Magnitude (L1) pruning of Linear / Conv2d weights, in place; returns ``model``.

    ``scope="layer"``: each layer loses the fraction ``amount`` of its own smallest weights
    (``prune.l1_unstructured``). ``scope="global"``: one threshold over all of them
    (``prune.global_unstructured``), so layers with many small weights lose more. ``skip_last``: leave the
    output layer (few weights, each important) dense. Applied again, it prunes ``amount`` of what is left.
    """
    amount = _check_amount(amount)
    params = prunable_parameters(model)
    if skip_last:
        params = params[:-1]
    if not params:
        raise ValueError("the model has no Linear or Conv2d layer to prune")
    if scope == "layer":
        for module, name in params:
            prune.l1_unstructured(module, name, amount=amount)
    elif scope == "global":
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    else:
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """``prune.remove`` on every pruned parameter: ``weight`` becomes a plain Parameter holding the zeros,
    the mask and ``weight_orig`` go away (the state dict shrinks back to the dense size). In place."""
    for module in model.modules():
        for name in [n[: -len("_orig")] for n, _ in module.named_parameters(recurse=False) if n.endswith("_orig")]:
            prune.remove(module, name)
    return model


def per_round_amount(target: float, rounds: int) -> float:
    """The fraction to prune each round so that ``rounds`` rounds (each pruning a fraction of what is
    left) reach the overall sparsity ``target``: ``1 - (1 - target) ** (1 / rounds)``."""
    target = _check_amount(target)
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    return 1.0 - (1.0 - target) ** (1.0 / rounds)


def iterative_prune(model: nn.Module, target: float, rounds: int, finetune: Callable[[nn.Module], object], *,
                    scope: str = "global", skip_last: bool = False,
                    evaluate: Callable[[nn.Module], float] | None = None) -> list[dict[str, float]]:
    """Prune to ``target`` sparsity in ``rounds`` steps, calling ``finetune(model)`` after each one (the
    masks keep pruned weights at zero while the others adapt). In place. Returns one dict per round with
    the measured ``sparsity`` and, when ``evaluate`` is given, ``metric`` after fine-tuning."""
    step = per_round_amount(target, rounds)
    history = []
    for r in range(rounds):
        prune_unstructured(model, step, scope=scope, skip_last=skip_last)
        finetune(model)
        entry = {"round": float(r + 1), "sparsity": sparsity(model)}
        if evaluate is not None:
            entry["metric"] = float(evaluate(model))
        history.append(entry)
    return history


# ---- structured pruning that shrinks the layers ---------------------------------------------------

def _kept_rows(layer: nn.Module, amount: float) -> torch.Tensor:
    """Indices of the output units (rows / filters) that ``prune.ln_structured(n=2, dim=0)`` keeps."""
    probe = copy.deepcopy(layer)
    prune.ln_structured(probe, "weight", amount=amount, n=2, dim=0)
    alive = probe.weight_mask.reshape(probe.weight_mask.shape[0], -1).any(dim=1)
    return torch.nonzero(alive).flatten()


def _linear_subset(layer: nn.Linear, rows: torch.Tensor | None, cols: torch.Tensor | None) -> nn.Linear:
    w = layer.weight.detach()
    w = w if rows is None else w[rows]
    w = w if cols is None else w[:, cols]
    out = nn.Linear(w.shape[1], w.shape[0], bias=layer.bias is not None)
    with torch.no_grad():
        out.weight.copy_(w)
        if layer.bias is not None:
            out.bias.copy_(layer.bias.detach() if rows is None else layer.bias.detach()[rows])
    return out


def shrink_mlp(model: MLP | nn.Sequential, amount: float) -> nn.Module:
    """A NEW, smaller copy of an MLP: each hidden Linear loses the fraction ``amount`` of its neurons with
    the smallest L2 weight norm (the mask ``prune.ln_structured(..., n=2, dim=0)`` chooses), and the next
    Linear loses the matching input columns. The output layer keeps its size. Works on
    ``bigtrain_lab.models.MLP`` and on any ``nn.Sequential`` of Linear and element-wise layers."""
    amount = _check_amount(amount)
    if any(hasattr(m, "weight_orig") for m in model.modules()):
        raise ValueError("the model carries pruning masks: call make_permanent(model) first")
    new = copy.deepcopy(model)
    seq = new.net if isinstance(new, MLP) else new
    if not isinstance(seq, nn.Sequential):
        raise TypeError(f"expected an MLP or an nn.Sequential, got {type(model).__name__}")
    linear_at = [i for i, m in enumerate(seq) if isinstance(m, nn.Linear)]
    if len(linear_at) < 2:
        raise ValueError("need at least two Linear layers (a hidden one to shrink and one after it)")
    cols = None
    for pos, i in enumerate(linear_at):
        last = pos == len(linear_at) - 1
        rows = None if last else _kept_rows(seq[i], amount)
        seq[i] = _linear_subset(seq[i], rows, cols)
        cols = rows
    return new


def _conv_subset(conv: nn.Conv2d, out_idx: torch.Tensor | None, in_idx: torch.Tensor | None) -> nn.Conv2d:
    if conv.groups != 1:
        raise ValueError("shrinking grouped / depthwise convolutions is not supported")
    w = conv.weight.detach()
    w = w if out_idx is None else w[out_idx]
    w = w if in_idx is None else w[:, in_idx]
    out = nn.Conv2d(w.shape[1], w.shape[0], conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    bias=conv.bias is not None, padding_mode=conv.padding_mode)
    with torch.no_grad():
        out.weight.copy_(w)
        if conv.bias is not None:
            out.bias.copy_(conv.bias.detach() if out_idx is None else conv.bias.detach()[out_idx])
    return out


def shrink_cnn(model: CNN, amount: float) -> CNN:
    """A NEW, smaller ``bigtrain_lab.models.CNN``: both conv layers lose the fraction ``amount`` of their
    filters with the smallest L2 norm; the next conv and the first Linear of the head lose the matching
    input channels / columns (each channel feeds 4 x 4 = 16 flattened columns)."""
    amount = _check_amount(amount)
    if not isinstance(model, CNN):
        raise TypeError(f"expected a bigtrain_lab.models.CNN, got {type(model).__name__}")
    new = copy.deepcopy(model)
    conv1, conv2 = new.features[0], new.features[2]
    keep1 = _kept_rows(conv1, amount)
    keep2 = _kept_rows(conv2, amount)
    new.features[0] = _conv_subset(conv1, keep1, None)
    new.features[2] = _conv_subset(conv2, keep2, keep1)
    fc = new.head[1]
    per_channel = fc.in_features // conv2.out_channels
    cols = (keep2[:, None] * per_channel + torch.arange(per_channel)).flatten()
    new.head[1] = _linear_subset(fc, None, cols)
    return new


def layer_sparsities(model: nn.Module) -> dict[str, float]:
    """Measured fraction of zeros in each Linear / Conv2d weight (as the forward pass sees it)."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE):
            w = module.weight
            out[name] = 1.0 - int(torch.count_nonzero(w)) / w.numel()
    return out


def polynomial_sparsity(step: int, *, final: float, begin_step: int, end_step: int, initial: float = 0.0,
                        power: int = 3) -> float:
    """Zhu & Gupta's gradual schedule (what tfmot's ``PolynomialDecay`` computes): ``initial`` before
    ``begin_step``, ``final`` from ``end_step`` on, in between ``final + (initial - final) * (1 - p)^power``
    with ``p`` the fraction of the way from ``begin_step`` to ``end_step``."""
    if not end_step > begin_step:
        raise ValueError(f"end_step must be > begin_step, got {begin_step}, {end_step}")
    p = min(1.0, max(0.0, (step - begin_step) / (end_step - begin_step)))
    return final + (initial - final) * (1.0 - p) ** power


class GradualPruner:
    """Global magnitude pruning that follows ``schedule(step) -> target sparsity``, but only when the
    training loop calls ``step()`` (the job of tfmot's ``UpdatePruningStep`` callback): each call advances
    the step counter and prunes the weights still alive until the target is reached. A pruner that is
    declared but never stepped leaves the model dense."""

    def __init__(self, model: nn.Module, schedule: Callable[[int], float], *, skip_last: bool = True) -> None:
        self.model, self.schedule, self.steps = model, schedule, 0
        self.params = prunable_parameters(model)[:-1] if skip_last else prunable_parameters(model)
        if not self.params:
            raise ValueError("the model has no Linear or Conv2d layer to prune")

    def sparsity(self) -> float:
        """Fraction of zeros among the pruned layers' weights."""
        zeros = sum(int((getattr(m, n) == 0).sum()) for m, n in self.params)
        return zeros / sum(getattr(m, n).numel() for m, n in self.params)

    def step(self) -> float:
        """Advance one step and prune up to the scheduled sparsity; returns the sparsity reached."""
        self.steps += 1
        target, now = self.schedule(self.steps), self.sparsity()
        if target > now:
            prune.global_unstructured(self.params, pruning_method=prune.L1Unstructured,
                                      amount=min(1.0, (target - now) / (1.0 - now)))
        return self.sparsity()
