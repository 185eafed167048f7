"""Fusing neural networks (lesson 11, ``notebooks/11_fusing_networks.ipynb``): by their outputs or by their weights.

Outputs: members trained from different seeds (``train_members``), their logits on a split (``member_logits``)
fused by one of ``FUSION_RULES`` (``fuse``: the mean of the logits, the mean of the probabilities, a majority
vote), scored by accuracy and negative log-likelihood (``score``), against the members' diversity
(``disagreement_rate``). One run that yields a whole ensemble: ``snapshot_ensemble`` (a cyclic learning rate,
torch's ``CosineAnnealingWarmRestarts``, one snapshot at the end of each cycle).

Weights: ``swa_run`` (stochastic weight averaging with ``torch.optim.swa_utils``, on an MLP with BatchNorm,
``bn_mlp``), and ``interpolate_losses`` (the loss along the straight line between two models' weights: flat
between two fine-tunes of one pretrained model, a barrier between two independently trained ones).
The averaging itself is ``bigtrain_lab.ensemble.average_weights``; probability averaging is ``soft_vote``.

    members = train_members(lambda: MLP(64, (128,), 10), X_train, y_train, seeds=[0, 1, 2], epochs=10)
    logits = member_logits(members, X_test)
    score(fuse(logits, "logits"), y_test), disagreement_rate(logits)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn
from tqdm.auto import tqdm

from bigtrain_lab.ensemble.classic import disagreement_matrix
from bigtrain_lab.ensemble.fusion import average_weights, soft_vote
from bigtrain_lab.fit import fit_classifier
from bigtrain_lab.reproducibility import seed_everything

__all__ = ["FUSION_RULES", "SWARun", "bn_mlp", "cosine_restart_lrs", "disagreement_rate", "fuse",
           "interpolate_losses", "member_logits", "score", "snapshot_ensemble", "swa_run", "train_members"]

#: ``fuse`` rules: softmax of the mean logit, mean of the members' softmax probabilities, majority vote.
FUSION_RULES = ("logits", "probabilities", "vote")

MakeModel = Callable[[], nn.Module]


def _tensor(X: Any, dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
    if isinstance(X, torch.Tensor):
        return X if dtype is None else X.to(dtype)
    return torch.as_tensor(np.asarray(X), dtype=dtype)


def train_members(make_model: MakeModel | Sequence[MakeModel], X: Any, y: Any, *, seeds: Sequence[int],
                  epochs: int | Sequence[int],
                  data_seeds: Sequence[int] | None = None, lr: float = 3e-3, batch_size: int = 64,
                  weight_decay: float = 0.0, progress: bool = False) -> list[nn.Module]:
    """One model per seed, each trained with ``fit_classifier`` (AdamW at a constant ``lr``).

    ``seeds[i]`` seeds ``make_model()`` (the initialisation); ``data_seeds[i]`` (default ``seeds[i]``) the
    training run (the order of the batches); ``epochs`` (one number, or one per member) its length.
    ``make_model`` may be one factory per member. Same init and data seed, other epochs: checkpoints of
    one run (constant lr: the shorter run is the start of the longer one); same init, other data seed: a
    near copy. ``progress``: a progress bar over the members."""
    n = len(seeds)
    data_seeds = list(seeds) if data_seeds is None else list(data_seeds)
    epoch_list = [epochs] * n if isinstance(epochs, int) else list(epochs)
    makers = list(make_model) if isinstance(make_model, Sequence) else [make_model] * n
    if n == 0 or not len(data_seeds) == len(epoch_list) == len(makers) == n:
        raise ValueError(f"need at least one seed and one data seed, epochs and model per seed, got {n} seeds, "
                         f"{len(data_seeds)} data seeds, {len(epoch_list)} epochs, {len(makers)} factories")
    members = []
    runs = list(zip(seeds, data_seeds, epoch_list, makers, strict=True))
    for seed, data_seed, n_epochs, make in tqdm(runs, desc="members", disable=not progress):
        seed_everything(int(seed))
        model = make()
        fit_classifier(model, X, y, epochs=int(n_epochs), batch_size=batch_size, lr=lr,
                       weight_decay=weight_decay, seed=int(data_seed))
        members.append(model.eval())
    return members


@torch.no_grad()
def member_logits(models: Sequence[nn.Module], X: Any) -> torch.Tensor:
    """The logits of every model on ``X``, in eval mode: shape ``(n_models, n_samples, n_classes)``."""
    X = _tensor(X)
    out = []
    for model in models:
        was_training = model.training
        model.eval()
        out.append(model(X))
        model.train(was_training)
    return torch.stack(out)


def fuse(logits: torch.Tensor, rule: str) -> torch.Tensor:
    """Fuse members' logits ``(n_members, n_samples, n_classes)`` into one ``(n_samples, n_classes)``
    probability table by ``rule``:

    ``"logits"``: softmax of the mean logit (a geometric mean of the members' probabilities, renormalised);
    ``"probabilities"``: the mean of the members' softmax probabilities (``soft_vote``);
    ``"vote"``: each member votes for its arg-max class; the share of votes per class (its arg-max, ties to
    the lowest class index, is the majority vote; the shares are not calibrated probabilities: zeros).
    """
    if logits.dim() != 3 or logits.shape[0] < 1:
        raise ValueError(f"logits must have shape (n_members, n_samples, n_classes), got {tuple(logits.shape)}")
    if rule == "logits":
        return torch.softmax(logits.mean(dim=0), dim=-1)
    if rule == "probabilities":
        avg, _ = soft_vote(torch.softmax(logits, dim=-1).numpy())
        return torch.as_tensor(np.asarray(avg), dtype=logits.dtype)
    if rule == "vote":
        votes = F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)
        return votes.mean(dim=0)
    raise ValueError(f"rule must be one of {FUSION_RULES}, got {rule!r}")


def score(proba: torch.Tensor, y: Any) -> dict[str, float]:
    """``{"accuracy", "nll"}`` of a probability table: top-1 accuracy (arg-max, ties to the lowest index) and
    the mean negative log-likelihood of the true class (``inf`` when a true class gets probability 0, as a
    vote can give)."""
    y = _tensor(y, torch.int64)
    if proba.dim() != 2 or len(proba) != len(y):
        raise ValueError(f"proba must be (n_samples, n_classes) with one row per label, got {tuple(proba.shape)}")
    p_true = proba.gather(1, y[:, None]).squeeze(1).double()
    return {"accuracy": float((proba.argmax(dim=1) == y).double().mean()),
            "nll": float(-torch.log(p_true).mean())}


def disagreement_rate(logits: torch.Tensor) -> float:
    """Diversity: the share of samples on which two members predict different classes, averaged over all
    pairs of members (``logits`` of shape ``(n_members, n_samples, n_classes)``, or the predicted labels
    ``(n_members, n_samples)``); 0 for a single member."""
    labels = logits.argmax(dim=-1) if logits.dim() == 3 else logits
    if len(labels) < 2:
        return 0.0
    matrix = disagreement_matrix(labels.numpy())
    return float(matrix[np.triu_indices(len(labels), k=1)].mean())


@torch.no_grad()
def interpolate_losses(model_a: nn.Module, model_b: nn.Module, X: Any, y: Any,
                       alphas: Sequence[float]) -> dict[str, np.ndarray]:
    """Loss and accuracy on ``(X, y)`` of the model with weights ``(1 - a) theta_A + a theta_B`` for each ``a``
    in ``alphas`` (``average_weights`` with weights ``(1 - a, a)``; buffers such as BatchNorm statistics
    interpolated alike). Returns ``{"alpha", "loss", "accuracy"}`` arrays; ``a = 0`` is model A, ``1`` model B."""
    X, y = _tensor(X), _tensor(y, torch.int64)
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    probe = copy.deepcopy(model_a).eval()
    losses, accuracies = [], []
    for a in alphas:
        a = float(a)
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"alphas must lie in [0, 1], got {a}")
        probe.load_state_dict(average_weights([state_a, state_b], weights=[1.0 - a, a]))
        logits = probe(X)
        losses.append(float(F.cross_entropy(logits, y)))
        accuracies.append(float((logits.argmax(dim=1) == y).double().mean()))
    return {"alpha": np.asarray(alphas, dtype=float), "loss": np.asarray(losses), "accuracy": np.asarray(accuracies)}


def cosine_restart_lrs(lr: float, cycle_steps: int, total_steps: int, *, eta_min: float = 0.0) -> list[float]:
    """The learning rate at each of ``total_steps`` optimizer steps under torch's
    ``CosineAnnealingWarmRestarts(T_0=cycle_steps, eta_min=eta_min)`` stepped once per optimizer step."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=cycle_steps, eta_min=eta_min)
    lrs = []
    for _ in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def snapshot_ensemble(make_model: MakeModel, X: Any, y: Any, *, cycles: int, epochs_per_cycle: int,
                      lr: float = 1e-2, batch_size: int = 64, seed: int = 0,
                      progress: bool = False) -> list[nn.Module]:
    """Snapshot ensemble (Huang et al., 2017): one run of ``cycles * epochs_per_cycle`` epochs (AdamW via
    ``fit_classifier``) under a cosine learning rate restarted every ``epochs_per_cycle`` epochs
    (``cosine_restart_lrs``); a copy of the model at the end of each cycle, where the rate is lowest.
    Returns the ``cycles`` snapshots (eval mode); the last one is the run's final model. ``progress``: a
    progress bar over the steps."""
    if cycles < 1 or epochs_per_cycle < 1:
        raise ValueError(f"cycles and epochs_per_cycle must be >= 1, got {cycles}, {epochs_per_cycle}")
    seed_everything(seed)
    model = make_model()
    steps_per_epoch = len(_tensor(X)) // batch_size
    cycle_steps = epochs_per_cycle * steps_per_epoch
    lrs = cosine_restart_lrs(lr, cycle_steps, cycles * cycle_steps)
    snapshots: list[nn.Module] = []

    def take_snapshot(net: nn.Module) -> dict[str, float]:
        snapshots.append(copy.deepcopy(net).eval())
        return {}

    fit_classifier(model, X, y, steps=cycles * cycle_steps, batch_size=batch_size, schedule=lrs.__getitem__,
                   evaluate=take_snapshot, eval_every=cycle_steps, seed=seed, progress=progress)
    return snapshots


def bn_mlp(in_features: int = 64, hidden: Sequence[int] = (128,), out_features: int = 10) -> nn.Sequential:
    """An MLP with BatchNorm after every hidden Linear: ``Linear -> BatchNorm1d -> ReLU`` per hidden layer."""
    layers: list[nn.Module] = [nn.Flatten()]
    for fan_in, fan_out in zip([in_features, *hidden][:-1], hidden, strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.BatchNorm1d(fan_out), nn.ReLU()]
    layers.append(nn.Linear(([in_features, *hidden])[-1], out_features))
    return nn.Sequential(*layers)


@dataclass
class SWARun:
    """What ``swa_run`` returns: the run's last iterate, the SWA average with its BatchNorm statistics
    recomputed (``update_bn``), the same average with the last iterate's statistics (no ``update_bn``),
    and the state dicts it averaged (one per epoch from ``swa_start``)."""

    last: nn.Module
    swa: AveragedModel
    swa_stale_bn: AveragedModel
    averaged_states: list[dict[str, torch.Tensor]]


def swa_run(make_model: MakeModel, X: Any, y: Any, *, epochs: int, swa_start: int, lr: float = 0.05,
            swa_lr: float = 0.05, momentum: float = 0.9, batch_size: int = 64, seed: int = 0) -> SWARun:
    """Stochastic weight averaging (Izmailov et al., 2018) as torch's recipe does it: SGD with momentum for
    ``epochs`` epochs (``fit_classifier``); from epoch ``swa_start`` on, ``SWALR`` anneals to ``swa_lr`` and
    after every epoch ``AveragedModel.update_parameters`` adds the weights to the running average; at the end
    ``update_bn`` recomputes BatchNorm's running statistics for the averaged weights with one pass over the
    training data. ``AveragedModel`` averages parameters only and copies the buffers from the model at each
    update: without ``update_bn`` its BatchNorm statistics are the last iterate's, measured on other weights
    (kept in ``swa_stale_bn``)."""
    if not 0 <= swa_start < epochs:
        raise ValueError(f"swa_start must be in [0, epochs), got {swa_start} with epochs={epochs}")
    seed_everything(seed)
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    swa_model = AveragedModel(model)
    swa_scheduler = SWALR(optimizer, swa_lr=swa_lr, anneal_epochs=max(1, (epochs - swa_start) // 2))
    steps_per_epoch = len(_tensor(X)) // batch_size
    averaged: list[dict[str, torch.Tensor]] = []
    epoch = 0

    def end_of_epoch(net: nn.Module) -> dict[str, float]:
        nonlocal epoch
        epoch += 1
        if epoch > swa_start:
            swa_model.update_parameters(net)
            averaged.append({k: v.detach().clone() for k, v in net.state_dict().items()})
            swa_scheduler.step()
        return {}

    fit_classifier(model, X, y, steps=epochs * steps_per_epoch, batch_size=batch_size, optimizer=optimizer,
                   evaluate=end_of_epoch, eval_every=steps_per_epoch, seed=seed)
    stale = copy.deepcopy(swa_model)
    loader = torch.utils.data.DataLoader(_tensor(X), batch_size=batch_size)
    update_bn(loader, swa_model)
    return SWARun(last=model.eval(), swa=swa_model.eval(), swa_stale_bn=stale.eval(), averaged_states=averaged)
