"""Networks the checkers hand to a candidate (a model to differentiate or attack), and the check that the
candidate left them as it found them."""

from __future__ import annotations

import torch
import torch.nn as nn


class CaseModel(nn.Module):
    """A float64 network with a description for the learner; copies share it (a runner checks, after the
    call, the very model the candidate was handed)."""

    def __init__(self, description: str, net: nn.Module) -> None:
        super().__init__()
        self.description, self.net = description, net.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def __deepcopy__(self, memo: dict) -> CaseModel:
        return self

    def extra_repr(self) -> str:
        return self.description


def snapshot_parameters(model: nn.Module) -> list[torch.Tensor]:
    """Copies of ``model``'s parameters, for :func:`restore_parameters`."""
    return [p.detach().clone() for p in model.parameters()]


def restore_parameters(model: nn.Module, before: list[torch.Tensor]) -> bool:
    """Put ``before`` back into ``model``'s parameters and clear their ``.grad``; True if any had changed."""
    changed = any(not torch.equal(a, p.detach()) for a, p in zip(before, model.parameters(), strict=True))
    with torch.no_grad():
        for a, p in zip(before, model.parameters(), strict=True):
            p.copy_(a)
            p.grad = None
    return changed
