"""Exercises of the federated topic (lesson 12). Reference: ``bigtrain_lab.federated.fedavg``.

- ``federated.fedavg_round(global_params, client_data, *, local_steps, lr, batch_size, seed)``: one round of
  FedAvg for softmax regression (``{"weight": (C, D), "bias": (C,)}``, logits ``F.linear(x, weight, bias)``):
  each client ``k`` starts from the global parameters, takes ``local_steps`` plain SGD steps on mini-batches
  ``torch.randint(0, n_k, (batch_size,), generator=torch.Generator().manual_seed(seed + k))`` of its own
  data, and the new global parameters are the average of the clients' weighted by their sample counts.
  Compared per parameter within float32 rounding (rtol 1e-5, atol 1e-6). The cases give clients of unequal
  sizes (the unweighted mean differs), several local steps (FedSGD, one averaged gradient step per round,
  differs), several clients (copying the last client's weights differs) and non-IID labels (a client that
  starts from the previous client's model instead of the global one drifts). A runner checks that the
  global parameters and the clients' data are left as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from bigtrain_lab.federated.fedavg import fedavg_round
from bigtrain_lab.grading.exercises.optim import tensor_close
from bigtrain_lab.grading.registry import Case, Exercise, InputModified, register
from bigtrain_lab.grading.sandbox import describe

_KEYS = ("weight", "bias")
_CLOSE = {key: tensor_close(f"the new global {key}", {torch.float32: (1e-5, 1e-6)}) for key in _KEYS}


def run_round(fn: Callable[..., Any], global_params: dict[str, torch.Tensor],
              client_data: Sequence[tuple[torch.Tensor, torch.Tensor]], **kwargs: Any) -> Any:
    """``fn(global_params, client_data, **kwargs)``; InputModified if it changed what it was handed."""
    kept_params = {k: v.clone() for k, v in global_params.items()}
    kept_data = [(x.clone(), y.clone()) for x, y in client_data]
    out = fn(global_params, client_data, **kwargs)
    if any(not torch.equal(kept_params[k], global_params[k]) for k in kept_params):
        raise InputModified("global_params was changed in place: each client trains a copy")
    if any(not (torch.equal(x, kx) and torch.equal(y, ky))
           for (x, y), (kx, ky) in zip(client_data, kept_data, strict=True)):
        raise InputModified("a client's data was changed in place")
    return out


def _round_compare(got: Any, expected: dict[str, torch.Tensor]) -> str | None:
    if not isinstance(got, dict):
        return f"expected a dict {{'weight': ..., 'bias': ...}} (the new global parameters), got " \
               f"{type(got).__name__}: {describe(got, 80)}"
    missing = [k for k in _KEYS if k not in got]
    if missing:
        return f"the new global parameters have no {', '.join(missing)}"
    for key in _KEYS:
        value = got[key]
        if isinstance(value, torch.Tensor) and value.requires_grad:
            value = value.detach()
        if reason := _CLOSE[key](value, expected[key]):
            return reason
    return None


def _problem(rng: np.random.Generator, sizes: Sequence[int], classes: int, features: int, *,
             non_iid: bool = False) -> tuple[dict[str, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
    centres = rng.normal(0, 2.0, (classes, features))
    data = []
    for k, n in enumerate(sizes):
        if non_iid:  # each client sees mostly one or two classes
            favourite = k % classes
            y = np.where(rng.random(n) < 0.8, favourite, rng.integers(0, classes, n))
        else:
            y = rng.integers(0, classes, n)
        x = centres[y] + rng.normal(0, 1.0, (n, features))
        data.append((torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)))
    params = {"weight": torch.tensor(rng.normal(0, 0.1, (classes, features)), dtype=torch.float32),
              "bias": torch.tensor(rng.normal(0, 0.1, classes), dtype=torch.float32)}
    return params, data


def _round_cases(rng: np.random.Generator) -> list[Case]:
    def case(label: str, sizes: Sequence[int], *, classes: int = 3, features: int = 4, local_steps: int = 5,
             lr: float = 0.1, batch_size: int = 8, non_iid: bool = False,
             raises: type[BaseException] | None = None) -> Case:
        params, data = _problem(rng, sizes, classes, features, non_iid=non_iid)
        return Case(label, (params, data), {"local_steps": local_steps, "lr": lr, "batch_size": batch_size,
                                            "seed": int(rng.integers(10_000))}, raises)

    cases = [
        case("one client: the round is that client's local training", [40]),
        case("two clients of equal size, one local step", [30, 30], local_steps=1),
        case("clients of 10, 50 and 140 examples: weighted by sample count", [10, 50, 140]),
        case("three clients, 10 local steps each (FedAvg, not one averaged gradient step)", [40, 40, 40],
             local_steps=10),
        case("non-IID: each client mostly sees one class", [60, 25, 90, 45], classes=4, non_iid=True),
        case("a batch larger than a client (sampling with replacement)", [5, 50], batch_size=16),
        case("five features, six classes, lr 0.5", [20, 35, 15], classes=6, features=5, lr=0.5),
        case("no clients: ValueError", [], raises=ValueError),
        case("local_steps 0: ValueError", [10, 10], local_steps=0, raises=ValueError),
        case("a client with no data: ValueError", [10, 0, 5], raises=ValueError),
    ]
    for i in range(4):
        k = int(rng.integers(2, 7))
        sizes = [int(s) for s in rng.integers(5, 120, k)]
        steps, batch = int(rng.integers(1, 15)), int(rng.choice([1, 4, 8, 32]))
        non_iid = bool(rng.random() < 0.5)
        cases.append(case(f"random #{i + 1}: {k} clients of {sizes}, {steps} local steps, batch {batch}"
                          + (", non-IID" if non_iid else ""), sizes, local_steps=steps, batch_size=batch,
                          lr=float(rng.choice([0.05, 0.1, 0.3])), non_iid=non_iid))
    return cases


register(Exercise(
    id="federated.fedavg_round",
    reference=fedavg_round,
    make_cases=_round_cases,
    compare=_round_compare,
    run=run_round,
    hint="For k, (x, y) in enumerate(client_data): w, b = clones of the GLOBAL weight and bias with "
         "requires_grad; g = torch.Generator().manual_seed(seed + k); local_steps times: idx = torch.randint(0, "
         "len(x), (batch_size,), generator=g); loss = F.cross_entropy(F.linear(x[idx], w, b), y[idx]); "
         "dw, db = torch.autograd.grad(loss, (w, b)); w, b = w - lr * dw, b - lr * db. Then the new global = "
         "sum_k n_k / n * (w_k, b_k). ValueError for no clients, an empty client, local_steps / batch_size < 1.",
    section="federated-averaging",
    time_limit=10.0,
))
