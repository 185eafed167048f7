"""Federated training simulated in one process: every round, every client, the global model's accuracy, the
clients' local models and how far they drift from the average.

``simulate`` runs the clients one after the other with the same functions the torchrun worker uses
(``fedavg.local_sgd`` for a client's round, the weighted average for the server), so a simulated run and a
run of ``scripts/fedavg_train.py`` on N processes end at the same parameters (a test checks it). Client
``k`` of round ``r`` draws its mini-batches from ``torch.Generator().manual_seed(seed + r * K + k)``: round 0
is exactly ``fedavg.fedavg_round(..., seed=seed)``.

Variants the lesson runs as common mistakes: ``weighting="uniform"`` (the plain mean of the clients,
whatever their sizes) and ``resync=False`` (clients keep training their own model and never restart from
the global one: the average is computed but nobody uses it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from bigtrain_lab.compress.measure import num_threads
from bigtrain_lab.federated.fedavg import (
    Forward,
    check_clients,
    init_softmax_params,
    local_sgd,
    softmax_regression,
    weighted_average,
)
from bigtrain_lab.federated.partition import dirichlet_split, iid_split

__all__ = ["ALGORITHMS", "VIEWER_ALPHAS", "VIEWER_LOCAL_STEPS", "FederatedRun", "FederatedTask", "accuracy",
           "client_seed", "federated_digits", "param_distance", "simulate", "viewer_data"]

ALGORITHMS = ("fedavg", "fedsgd")


def client_seed(seed: int, round_index: int, client: int, n_clients: int) -> int:
    """The seed of client ``client``'s mini-batch generator in round ``round_index``: ``seed + r * K + k``."""
    return seed + round_index * n_clients + client


@dataclass(frozen=True)
class FederatedTask:
    """Clients' private ``(x_k, y_k)`` and a shared test set (the server's, or the union of the clients')."""

    clients: list[tuple[torch.Tensor, torch.Tensor]]
    x_test: torch.Tensor
    y_test: torch.Tensor
    alpha: float | None  # None: an IID split
    n_classes: int

    @property
    def sizes(self) -> list[int]:
        return [len(x) for x, _ in self.clients]

    def label_histogram(self) -> np.ndarray:
        """``(clients, classes)`` example counts."""
        return np.stack([np.bincount(y.numpy(), minlength=self.n_classes) for _, y in self.clients])


def federated_digits(n_clients: int, alpha: float | None, *, seed: int = 0, data_seed: int = 0) -> FederatedTask:
    """sklearn's digits (``compress.digits.load_digits(data_seed)``, pixels in [0, 1]): the training split cut
    among ``n_clients`` by ``partition.dirichlet_split(labels, n_clients, alpha, seed)`` (``alpha=None``: IID,
    equal sizes), the test split kept for evaluation."""
    from bigtrain_lab.compress.digits import load_digits

    digits = load_digits(data_seed)
    y = digits.y_train
    parts = (iid_split(len(y), n_clients, seed) if alpha is None
             else dirichlet_split(y, n_clients, alpha, seed))
    clients = [(digits.X_train[torch.from_numpy(p)], y[torch.from_numpy(p)]) for p in parts]
    return FederatedTask(clients, digits.X_test, digits.y_test, alpha, int(y.max()) + 1)


def accuracy(params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
             forward: Forward = softmax_regression) -> float:
    """Share of ``x``'s rows whose arg-max logit is ``y``."""
    with torch.no_grad():
        return float((forward(params, x).argmax(1) == y).float().mean())


def param_distance(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Euclidean distance between two parameter dicts (all tensors flattened together)."""
    return float(torch.sqrt(sum(((a[k] - b[k]).double() ** 2).sum() for k in a)))


@dataclass
class FederatedRun:
    """Per round (index 0 = after round 1): the global model's test accuracy, each client's local model's
    test accuracy and its distance from the global model that round started from, and the final parameters."""

    algorithm: str
    local_steps: int
    global_accuracy: list[float] = field(default_factory=list)
    client_accuracy: list[list[float]] = field(default_factory=list)
    client_drift: list[list[float]] = field(default_factory=list)
    params: dict[str, torch.Tensor] = field(default_factory=dict)

    def rounds_to(self, target: float) -> int | None:
        """The first round (1-based) whose global accuracy reaches ``target``; None if none does."""
        return next((r + 1 for r, a in enumerate(self.global_accuracy) if a >= target), None)


def simulate(task: FederatedTask, *, rounds: int, local_steps: int = 1, lr: float = 0.5, batch_size: int | None = 32,
             seed: int = 0, algorithm: str = "fedavg", forward: Forward = softmax_regression,
             init: Mapping[str, torch.Tensor] | None = None, weighting: str = "samples", resync: bool = True,
             progress: Callable[[int], None] | None = None, threads: int | None = 1) -> FederatedRun:
    """Train a global model for ``rounds`` rounds over ``task.clients``.

    ``algorithm``: "fedavg" (``local_steps`` SGD steps of ``batch_size`` per client and round) or "fedsgd"
    (one full-batch gradient per client and round: ``local_steps`` and ``batch_size`` are ignored).
    ``init``: the starting global parameters (default ``init_softmax_params(D, C, seed=seed)``).
    ``weighting``: "samples" (``n_k / n``, FedAvg) or "uniform" (``1 / K``). ``resync=False``: clients start
    each round from their own last model instead of the global one. ``progress``: called with each round.
    ``threads``: torch threads meanwhile (default 1: these models are so small that more threads only add
    overhead, 30x on a busy 2-core machine; None leaves the setting)."""
    with num_threads(threads):
        return _simulate(task, rounds=rounds, local_steps=local_steps, lr=lr, batch_size=batch_size, seed=seed,
                         algorithm=algorithm, forward=forward, init=init, weighting=weighting, resync=resync,
                         progress=progress)


def _simulate(task: FederatedTask, *, rounds: int, local_steps: int, lr: float, batch_size: int | None, seed: int,
              algorithm: str, forward: Forward, init: Mapping[str, torch.Tensor] | None, weighting: str,
              resync: bool, progress: Callable[[int], None] | None) -> FederatedRun:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if weighting not in ("samples", "uniform"):
        raise ValueError(f"weighting must be 'samples' or 'uniform', got {weighting!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    sizes = check_clients(task.clients)
    k_clients = len(sizes)
    if init is None:
        init = init_softmax_params(task.clients[0][0].shape[1], task.n_classes, seed=seed)
    global_params = {k: v.detach().clone() for k, v in init.items()}
    weights = sizes if weighting == "samples" else [1] * k_clients
    steps, batch = (1, None) if algorithm == "fedsgd" else (local_steps, batch_size)
    run = FederatedRun(algorithm, steps)
    starts = [global_params] * k_clients
    for r in range(rounds):
        local = [local_sgd(starts[k], forward, x, y, local_steps=steps, lr=lr, batch_size=batch,
                           generator=torch.Generator().manual_seed(client_seed(seed, r, k, k_clients)))
                 for k, (x, y) in enumerate(task.clients)]
        run.client_accuracy.append([accuracy(p, task.x_test, task.y_test, forward) for p in local])
        run.client_drift.append([param_distance(p, global_params) for p in local])
        global_params = weighted_average(local, weights)
        run.global_accuracy.append(accuracy(global_params, task.x_test, task.y_test, forward))
        starts = [global_params] * k_clients if resync else local
        if progress is not None:
            progress(r + 1)
    run.params = global_params
    return run


#: The grid the federated viewer offers (its plain function accepts any values).
VIEWER_ALPHAS = (100.0, 10.0, 1.0, 0.3, 0.1)
VIEWER_LOCAL_STEPS = (1, 2, 5, 10, 20)


@lru_cache(maxsize=16)
def _viewer_task(alpha: float, n_clients: int, seed: int) -> FederatedTask:
    return federated_digits(n_clients, alpha, seed=seed)


@lru_cache(maxsize=16)
def _viewer_fedsgd(alpha: float, n_clients: int, rounds: int, lr: float, seed: int) -> FederatedRun:
    return simulate(_viewer_task(alpha, n_clients, seed), rounds=rounds, lr=lr, seed=seed, algorithm="fedsgd")


@lru_cache(maxsize=64)
def _viewer_runs(alpha: float, local_steps: int, n_clients: int, rounds: int, lr: float, batch_size: int,
                 seed: int) -> tuple[FederatedTask, FederatedRun, FederatedRun]:
    """The task, FedAvg's run and FedSGD's (which does not depend on the local steps: computed once per split)."""
    task = _viewer_task(alpha, n_clients, seed)
    fedavg = simulate(task, rounds=rounds, local_steps=local_steps, lr=lr, batch_size=batch_size, seed=seed)
    return task, fedavg, _viewer_fedsgd(alpha, n_clients, rounds, lr, seed)


def viewer_data(alpha: float, local_steps: int, *, n_clients: int = 5, rounds: int = 20, lr: float = 0.5,
                batch_size: int = 32, seed: int = 0, target: float = 0.9) -> dict[str, Any]:
    """What the federated viewer shows for one Dirichlet ``alpha`` and number of local steps (runs cached):
    ``rounds`` (1..R), ``global`` (FedAvg's test accuracy per round), ``fedsgd`` (FedSGD's, same lr),
    ``clients`` (per client, its local model's test accuracy per round), ``drift`` (per round, the mean
    distance of the local models from the global model they started from), ``histogram`` (clients x
    classes), ``sizes`` and a one-paragraph ``summary``."""
    if not alpha > 0 or local_steps < 1:
        raise ValueError(f"need alpha > 0 and local_steps >= 1, got {alpha}, {local_steps}")
    task, run, base = _viewer_runs(float(alpha), int(local_steps), n_clients, rounds, float(lr), batch_size, seed)
    clients = [[acc[k] for acc in run.client_accuracy] for k in range(n_clients)]
    drift = [sum(d) / len(d) for d in run.client_drift]
    reach, reach_sgd = run.rounds_to(target), base.rounds_to(target)

    def rounds_text(r: int | None) -> str:
        return f"{r} rounds" if r is not None else f"not within {rounds} rounds"

    last = [c[-1] for c in clients]
    summary = (f"alpha {alpha:g}, {local_steps} local step{'s' if local_steps > 1 else ''}: FedAvg's global model "
               f"{run.global_accuracy[-1]:.3f} after {rounds} rounds (FedSGD {base.global_accuracy[-1]:.3f}); "
               f"to {target:.0%}: FedAvg {rounds_text(reach)}, FedSGD {rounds_text(reach_sgd)}. "
               f"Clients' local models in the last round: {min(last):.3f} to {max(last):.3f}; "
               f"mean drift from the global model {drift[-1]:.2f}.")
    return {"alpha": float(alpha), "local_steps": int(local_steps), "rounds": list(range(1, rounds + 1)),
            "global": list(run.global_accuracy), "fedsgd": list(base.global_accuracy), "clients": clients,
            "drift": drift, "histogram": task.label_histogram().tolist(), "sizes": task.sizes, "summary": summary}
