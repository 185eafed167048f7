"""Low-rank compression: truncated-SVD factorization of Linear layers, and LoRA adapters from scratch.

SVD: ``W (out x in) ~ U_r S_r V_r^T`` is the best rank-r approximation in Frobenius and spectral norm
(Eckart-Young). As two Linear layers ``in -> r -> out`` it costs ``r (in + out)`` weights instead of
``in * out``: a saving only when ``r < in * out / (in + out)``.

LoRA (Hu et al., 2021): keep a pretrained ``W`` frozen and learn a low-rank update,
``y = x W^T + b + (alpha / r) x A^T B^T`` with ``A (r x in)`` random and ``B (out x r)`` zero, so
training starts exactly from the pretrained model; ``merge`` folds ``(alpha / r) B A`` into ``W``
(no extra inference cost).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def _check_rank(rank: int, limit: int) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= limit:
        raise ValueError(f"rank must be an integer in [1, {limit}], got {rank!r}")
    return rank


def low_rank_factorize(linear: nn.Linear, rank: int) -> nn.Sequential:
    """``nn.Sequential(Linear(in, rank, bias=False), Linear(rank, out))`` whose product of weights is the
    truncated SVD ``U_r diag(S_r) V_r^T`` of ``linear.weight`` (each factor takes ``sqrt(S_r)``); the
    bias is kept on the second layer. ``linear`` is not modified."""
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"expected an nn.Linear, got {type(linear).__name__}")
    out_f, in_f = linear.weight.shape
    rank = _check_rank(rank, min(in_f, out_f))
    W = linear.weight.detach()
    U, S, Vh = torch.linalg.svd(W.double(), full_matrices=False)
    root = S[:rank].sqrt()
    first = nn.Linear(in_f, rank, bias=False, dtype=W.dtype)
    second = nn.Linear(rank, out_f, bias=linear.bias is not None, dtype=W.dtype)
    with torch.no_grad():
        first.weight.copy_((root[:, None] * Vh[:rank]).to(W.dtype))
        second.weight.copy_((U[:, :rank] * root).to(W.dtype))
        if linear.bias is not None:
            second.bias.copy_(linear.bias.detach())
    return nn.Sequential(first, second)


def factorize_linears(model: nn.Module, rank: int | float, *, min_features: int = 2) -> nn.Module:
    """Replace, in place, every ``nn.Linear`` where it saves weights by its ``low_rank_factorize``: ``rank``
    an int (capped at each layer's min dimension) or a fraction of each layer's min dimension."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not nn.Linear or min(child.weight.shape) < min_features:
                continue
            limit = min(child.weight.shape)
            r = max(1, round(rank * limit)) if isinstance(rank, float) else min(int(rank), limit)
            if r * sum(child.weight.shape) < child.weight.numel():
                setattr(parent, name, low_rank_factorize(child, r))
    return model


def energy_kept(weight: torch.Tensor, rank: int) -> float:
    """Fraction of ``||W||_F^2`` the best rank-``rank`` approximation keeps (sum of the top S^2 / total)."""
    s2 = torch.linalg.svdvals(weight.detach().double()) ** 2
    return float(s2[:rank].sum() / s2.sum())


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * x A^T B^T`` with ``base`` frozen and only ``A (rank x in)`` (Kaiming
    uniform, as in the LoRA reference code) and ``B (out x rank)`` (zeros) trainable."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"expected an nn.Linear, got {type(base).__name__}")
        out_f, in_f = base.weight.shape
        self.rank = _check_rank(rank, min(in_f, out_f))
        self.alpha = float(alpha)
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        dtype, device = base.weight.dtype, base.weight.device
        self.A = nn.Parameter(torch.empty(rank, in_f, dtype=dtype, device=device))
        self.B = nn.Parameter(torch.zeros(out_f, rank, dtype=dtype, device=device))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scaling * ((x @ self.A.T) @ self.B.T)

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` computing the same function: ``W + (alpha / rank) B A``, same bias."""
        out_f, in_f = self.base.weight.shape
        merged = nn.Linear(in_f, out_f, bias=self.base.bias is not None, dtype=self.base.weight.dtype,
                           device=self.base.weight.device)
        merged.weight.copy_(self.base.weight + self.scaling * (self.B @ self.A))
        if self.base.bias is not None:
            merged.bias.copy_(self.base.bias)
        return merged


def add_lora(model: nn.Module, rank: int, alpha: float, *, targets: tuple[str, ...] = ("c_attn", "c_fc")
             ) -> nn.Module:
    """Freeze every parameter of ``model`` and wrap, in place, each ``nn.Linear`` whose name ends with
    one of ``targets`` in a ``LoRALinear``. Returns ``model``; only the adapters are trainable."""
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and name.endswith(targets):
                setattr(parent, name, LoRALinear(child, min(rank, *child.weight.shape), alpha))
                wrapped += 1
    if not wrapped:
        raise ValueError(f"no nn.Linear named like {targets} in the model")
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace, in place, every ``LoRALinear`` by its merged plain Linear."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merge())
    return model
