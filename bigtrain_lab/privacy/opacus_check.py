"""The same DP-SGD step and the same training run through opacus, to check the from-scratch version against.

* ``opacus_grad_samples``: per-sample gradients from opacus's ``GradSampleModule`` (its backward hooks).
  With ``loss_reduction="mean"`` and a mean-reduced loss, opacus multiplies the batch's backprops by ``B``, so
  ``grad_sample`` is each example's own gradient, ``per_sample_gradients`` exactly; with ``"sum"`` and a mean
  loss it is that divided by ``B``.
* ``opacus_dp_gradient``: the gradient ``DPOptimizer`` hands the optimizer for one batch (clip, sum, noise,
  divide by ``expected_batch_size``), read after its ``pre_step`` -- ``clip_and_noise``'s result.
* ``train_with_opacus``: ``PrivacyEngine.make_private_with_epsilon`` (Poisson sampling, the RDP accountant)
  on digits with the lesson's recipe, for comparison with ``train_dp``.

Work happens on deep copies: the models handed in are left as they were.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from opacus import GradSampleModule, PrivacyEngine
from opacus.optimizers import DPOptimizer
from torch.utils.data import DataLoader, TensorDataset

from bigtrain_lab.privacy.dpsgd import LossFn

__all__ = ["opacus_dp_gradient", "opacus_grad_samples", "train_with_opacus"]


def _flat_params(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def opacus_grad_samples(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *,
                        loss_reduction: str = "mean") -> torch.Tensor:
    """opacus's ``(B, P)`` per-sample gradients of ``loss_fn(model(x), y)`` (one backward of the batch loss)."""
    gsm = GradSampleModule(copy.deepcopy(model), loss_reduction=loss_reduction)
    with warnings.catch_warnings():  # "full backward hook is firing ... no inputs require gradients": expected
        warnings.simplefilter("ignore", UserWarning)
        loss_fn(gsm(x), y).backward()
    return torch.cat([p.grad_sample.reshape(len(x), -1) for p in _flat_params(gsm)], dim=1)


def opacus_dp_gradient(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, *, max_norm: float,
                       noise_multiplier: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """The flat ``(P,)`` gradient opacus's ``DPOptimizer`` (``expected_batch_size=B``, mean loss reduction)
    would step with on this batch: clipped per-sample gradients summed, noise added, divided by ``B``."""
    gsm = GradSampleModule(copy.deepcopy(model), loss_reduction="mean")
    optimizer = DPOptimizer(torch.optim.SGD(_flat_params(gsm), lr=0.0), noise_multiplier=noise_multiplier,
                            max_grad_norm=max_norm, expected_batch_size=len(x), loss_reduction="mean",
                            generator=generator)
    optimizer.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loss_fn(gsm(x), y).backward()
    optimizer.pre_step()
    return torch.cat([p.grad.reshape(-1) for p in _flat_params(gsm)])


def train_with_opacus(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, target_epsilon: float, delta: float,
                      epochs: int, expected_batch: int, max_norm: float, lr: float, momentum: float,
                      seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """Train a copy of ``model`` with opacus's ``PrivacyEngine`` (Poisson sampling at ``expected_batch / N``, the
    noise multiplier its RDP accountant needs for ``target_epsilon`` over ``epochs``). Returns the trained
    copy and ``{"noise_multiplier", "epsilon", "steps", "sample_rate"}``."""
    net = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(TensorDataset(X, y), batch_size=expected_batch, shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    with warnings.catch_warnings():  # opacus warns that a non-secure RNG is used (fine for teaching)
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant="rdp")
        net, optimizer, loader = engine.make_private_with_epsilon(
            module=net, optimizer=optimizer, data_loader=loader, target_epsilon=target_epsilon,
            target_delta=delta, epochs=epochs, max_grad_norm=max_norm, poisson_sampling=True,
            noise_generator=torch.Generator().manual_seed(seed + 1))
        steps = 0
        for _ in range(epochs):
            for xb, yb in loader:
                optimizer.zero_grad()
                if len(xb):
                    F.cross_entropy(net(xb), yb).backward()
                optimizer.step()
                steps += 1
        spent = engine.get_epsilon(delta)
    return net._module, {"noise_multiplier": optimizer.noise_multiplier, "epsilon": spent, "steps": steps,
                         "sample_rate": 1 / len(loader)}
