"""Federated averaging (FedAvg, McMahan et al. 2017) and FedSGD: the client step and the server step.

A round of FedAvg: the server sends the global parameters to every client; client ``k`` runs
``local_steps`` steps of plain SGD on its own ``n_k`` examples (``local_sgd``), starting from the global
parameters; the server replaces the global parameters by the average of the clients' parameters,
weighted by ``n_k / sum(n)`` (``weighted_average``). Only parameters travel, never data.

FedSGD is the same round with ONE gradient per client: the weighted average of the clients' gradients
at the global parameters is the gradient of the total loss over all clients' data, so a FedSGD round is
one step of large-batch (full-batch) gradient descent on the union of the data: one communication per
step. FedAvg's point is to take many local steps per communication.

The core works for any model written as ``forward(params, x) -> logits``: ``softmax_regression`` for the
reference ``fedavg_round`` (``logits = F.linear(x, weight, bias)``), ``module_forward(module)`` for any
``nn.Module`` through ``torch.func.functional_call`` (an MLP, say).

>>> import torch
>>> params = {"weight": torch.zeros(3, 4), "bias": torch.zeros(3)}
>>> x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
>>> new = fedavg_round(params, [(x[:6], y[:6]), (x[6:], y[6:])], local_steps=2, lr=0.1, batch_size=4, seed=0)
>>> sorted(new), tuple(new["weight"].shape), bool(params["weight"].abs().sum() == 0)
(['bias', 'weight'], (3, 4), True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Forward", "PARAM_KEYS", "check_clients", "client_gradient", "fedavg_round", "fedsgd_round",
           "init_softmax_params", "local_sgd", "module_forward", "softmax_regression", "weighted_average"]

#: ``forward(params, x) -> logits``: a model as a function of its parameters.
Forward = Callable[[Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor]
#: The parameters of the reference model (``fedavg_round``): a softmax regression.
PARAM_KEYS = ("weight", "bias")


def softmax_regression(params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of a softmax regression: ``F.linear(x, params["weight"], params["bias"])``, weight ``(C, D)``."""
    return F.linear(x, params["weight"], params["bias"])


def module_forward(module: nn.Module) -> Forward:
    """``forward(params, x)`` for any module: ``torch.func.functional_call(module, params, (x,))``; its
    parameters are ``{name: p.detach().clone() for name, p in module.named_parameters()}``."""
    from torch.func import functional_call

    def forward(params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(module, dict(params), (x,))

    return forward


def init_softmax_params(n_features: int, n_classes: int, *, seed: int = 0, scale: float = 0.01) -> dict[str, torch.Tensor]:
    """Initial parameters of the softmax regression: weight ``(n_classes, n_features)`` ~ N(0, scale^2) from
    ``seed``, bias zeros, float32."""
    if n_features < 1 or n_classes < 2:
        raise ValueError(f"need n_features >= 1 and n_classes >= 2, got {n_features}, {n_classes}")
    g = torch.Generator().manual_seed(seed)
    return {"weight": scale * torch.randn(n_classes, n_features, generator=g), "bias": torch.zeros(n_classes)}


def _check_hyper(local_steps: int, lr: float, batch_size: int | None) -> None:
    if local_steps < 1:
        raise ValueError(f"local_steps must be >= 1, got {local_steps}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (or None for the full local data), got {batch_size}")


def check_clients(client_data: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[int]:
    """The clients' sample counts ``n_k``; ValueError for no clients, an empty client or x / y of other lengths."""
    if len(client_data) == 0:
        raise ValueError("no clients: client_data is empty")
    sizes = []
    for k, (x, y) in enumerate(client_data):
        if len(x) != len(y):
            raise ValueError(f"client {k}: x has {len(x)} rows but y has {len(y)}")
        if len(x) == 0:
            raise ValueError(f"client {k} has 0 examples")
        sizes.append(len(x))
    return sizes


def _check_params(params: Mapping[str, torch.Tensor], required: Sequence[str] = ()) -> None:
    if not params:
        raise ValueError("params is empty")
    missing = [k for k in required if k not in params]
    if missing:
        raise ValueError(f"params lacks {missing} (has {sorted(params)})")


def local_sgd(params: Mapping[str, torch.Tensor], forward: Forward, x: torch.Tensor, y: torch.Tensor, *,
              local_steps: int, lr: float, batch_size: int | None, generator: torch.Generator | None = None
              ) -> dict[str, torch.Tensor]:
    """One client's work in a round: ``local_steps`` steps of plain SGD on cross-entropy from ``params``.

    Each step draws ``idx = torch.randint(0, n, (batch_size,), generator=generator)`` (with replacement),
    takes ``loss = F.cross_entropy(forward(p, x[idx]), y[idx])`` and sets ``p = p - lr * grad`` for every
    parameter (``torch.autograd.grad``). ``batch_size=None``: every step uses all ``n`` rows (gradient
    descent, no draw). Returns new detached tensors; ``params`` is not modified."""
    _check_hyper(local_steps, lr, batch_size)
    _check_params(params)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as rows, and at least one row: x {len(x)}, y {len(y)}")
    if batch_size is not None and generator is None:
        raise ValueError("a mini-batch (batch_size) needs a torch.Generator to draw it")
    names = list(params)
    p = [params[k].detach().clone().requires_grad_(True) for k in names]
    for _ in range(local_steps):
        if batch_size is None:
            xb, yb = x, y
        else:
            idx = torch.randint(0, len(x), (batch_size,), generator=generator).to(x.device)
            xb, yb = x[idx], y[idx]
        loss = F.cross_entropy(forward(dict(zip(names, p, strict=True)), xb), yb)
        grads = torch.autograd.grad(loss, p)
        p = [(v - lr * g).detach().requires_grad_(True) for v, g in zip(p, grads, strict=True)]
    return {k: v.detach() for k, v in zip(names, p, strict=True)}


def client_gradient(params: Mapping[str, torch.Tensor], forward: Forward, x: torch.Tensor, y: torch.Tensor
                    ) -> dict[str, torch.Tensor]:
    """The gradient of the mean cross-entropy over all of one client's ``(x, y)`` at ``params`` (FedSGD's
    message), detached."""
    _check_params(params)
    names = list(params)
    p = [params[k].detach().clone().requires_grad_(True) for k in names]
    loss = F.cross_entropy(forward(dict(zip(names, p, strict=True)), x), y)
    return {k: g.detach() for k, g in zip(names, torch.autograd.grad(loss, p), strict=True)}


def weighted_average(param_dicts: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]
                     ) -> dict[str, torch.Tensor]:
    """``sum_k (w_k / sum(w)) * params_k`` per key (the server step of FedAvg with ``w_k = n_k``).

    ValueError: no dicts, a weight count that differs, a negative weight or weights that sum to 0, dicts
    with other keys or shapes."""
    if len(param_dicts) == 0:
        raise ValueError("nothing to average: param_dicts is empty")
    if len(weights) != len(param_dicts):
        raise ValueError(f"{len(param_dicts)} parameter dicts but {len(weights)} weights")
    w = [float(v) for v in weights]
    if any(v < 0 for v in w) or sum(w) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {w}")
    keys = list(param_dicts[0])
    for k, d in enumerate(param_dicts):
        if list(d) != keys:
            raise ValueError(f"dict {k} has keys {list(d)}, dict 0 has {keys}")
        for name in keys:
            if d[name].shape != param_dicts[0][name].shape:
                raise ValueError(f"dict {k}: {name} has shape {tuple(d[name].shape)}, "
                                 f"dict 0 {tuple(param_dicts[0][name].shape)}")
    total = sum(w)
    return {name: sum((wk / total) * d[name].detach() for wk, d in zip(w, param_dicts, strict=True))
            for name in keys}


def fedavg_round(global_params: dict[str, torch.Tensor], client_data: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
                 local_steps: int, lr: float, batch_size: int, seed: int,
                 forward: Forward = softmax_regression) -> dict[str, torch.Tensor]:
    """One round of FedAvg: client ``k`` (in order) runs ``local_sgd`` from the global parameters with
    ``torch.Generator().manual_seed(seed + k)``; the new global parameters are the clients' average weighted
    by ``n_k / sum(n)``. Default model: ``softmax_regression`` (keys "weight" ``(C, D)``, "bias" ``(C,)``).

    Returns a new dict of detached tensors (inputs untouched). ValueError: no clients, an empty client,
    x / y of other lengths, local_steps < 1, batch_size < 1, lr <= 0, missing keys."""
    if batch_size is None or batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _check_hyper(local_steps, lr, batch_size)
    _check_params(global_params, PARAM_KEYS if forward is softmax_regression else ())
    sizes = check_clients(client_data)
    local = [local_sgd(global_params, forward, x, y, local_steps=local_steps, lr=lr, batch_size=batch_size,
                       generator=torch.Generator().manual_seed(seed + k))
             for k, (x, y) in enumerate(client_data)]
    return weighted_average(local, sizes)


def fedsgd_round(global_params: dict[str, torch.Tensor], client_data: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
                 lr: float, forward: Forward = softmax_regression) -> dict[str, torch.Tensor]:
    """One round of FedSGD: every client sends the gradient of its loss over all its data at the global
    parameters; the server takes one step ``global - lr * sum_k (n_k / n) g_k``: full-batch gradient
    descent on the union of the clients' data, one round per step."""
    _check_hyper(1, lr, None)
    _check_params(global_params, PARAM_KEYS if forward is softmax_regression else ())
    sizes = check_clients(client_data)
    grads = [client_gradient(global_params, forward, x, y) for x, y in client_data]
    mean = weighted_average(grads, sizes)
    return {k: (global_params[k].detach() - lr * mean[k]) for k in global_params}
