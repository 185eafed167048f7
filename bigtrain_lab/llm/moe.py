"""Mixture of experts: the top-k router with capacity, the Switch balancing loss and the MoE layer.

A mixture-of-experts MLP (Shazeer et al. 2017; GShard, Lepikhin et al. 2020; Switch Transformer, Fedus et
al. 2021; Mixtral, Jiang et al. 2024) replaces a transformer block's one MLP by ``E`` expert MLPs and a
router, a ``Linear(n_embd, E, bias=False)`` whose logits choose, per token, ``k`` experts. Only the chosen
experts run for that token, so the *active* parameters per token are ``k`` experts' worth (plus the router)
while the *total* parameters are ``E`` experts' worth.

Conventions (``topk_router`` is the lesson's exercise reference):

* ``probs = softmax(logits, -1)`` in float32 over ALL ``E`` experts; ``experts`` (T, k) are the ``k`` most
  probable, most probable first, ties to the lower expert index (a stable sort; ``torch.topk`` does not
  promise that).
* Gates: for ``k == 1`` the chosen expert's probability itself (Switch Transformer: the gate is what gives
  the router a gradient from the language-modelling loss); for ``k >= 2`` the top-k probabilities divided
  by their sum (GShard, Mixtral). Computed before any dropping.
* Capacity: each expert processes at most ``capacity`` assignments per batch. Assignments are served by
  choice rank first, then token index (every token's first choice in token order, then every second
  choice, ...), so a token loses its second choice before any token loses its first. A dropped
  assignment gets ``kept = False`` and gate 0; the token's other gates are NOT renormalised. A token all
  of whose choices are dropped gets 0 from the layer: the residual connection carries it unchanged.
* ``expert_capacity(tokens, E, k, capacity_factor) = ceil(capacity_factor * tokens * k / E)``.
* ``load_balancing_loss``: Switch's ``E * sum_i f_i P_i`` with ``f_i`` the fraction of the ``T * k``
  assignments routed to expert ``i`` (before capacity; not differentiable) and ``P_i`` the mean router
  probability of expert ``i`` (differentiable). 1.0 when both are uniform, ``E`` when every token goes
  to one expert with probability 1.
* ``router_z_loss``: ST-MoE's (Zoph et al. 2022) mean over tokens of ``logsumexp(logits)^2``.

``MoEMLP(config)`` reads only ``n_embd``, ``n_experts``, ``expert_top_k``, ``capacity_factor``, ``bias`` and
``dropout`` of ``bigtrain_lab.llm.model.LLMConfig``; each expert is a GPT MLP (``C -> 4C -> GELU -> C``),
so top-1 routing has the dense model's active parameters plus the router. ``forward(x (B, T, C)) ->
(y (B, T, C), aux)`` dispatches with ``index_select`` / ``index_add_`` (a loop over experts, none over
tokens).

>>> logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
>>> experts, gates, kept = topk_router(logits, k=1, capacity=1)
>>> experts[:, 0].tolist(), kept[:, 0].tolist()
([0, 0, 1], [True, False, True])
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MoEMLP", "active_parameters", "expert_capacity", "load_balancing_loss", "router_z_loss",
           "topk_router"]


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def topk_router(logits: torch.Tensor, k: int, capacity: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Route ``T`` tokens to ``k`` of ``E`` experts each, with at most ``capacity`` assignments per expert.

    ``logits`` (T, E): the router's logits. Returns ``(experts, gates, kept)``, each (T, k): ``experts``
    int64, most probable first (ties to the lower index); ``gates`` float32 (the chosen probability for
    ``k == 1``, the top-k probabilities renormalised over the top k for ``k >= 2``; 0 where dropped);
    ``kept`` bool. Expert slots are filled by choice rank first, then token index. Gates are differentiable
    with respect to ``logits``.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (tokens, n_experts), got {tuple(logits.shape)}")
    n_tokens, n_experts = logits.shape
    k = _check_int("k", k, 1)
    if k > n_experts:
        raise ValueError(f"k must be between 1 and n_experts ({n_experts}), got {k}")
    capacity = _check_int("capacity", capacity, 0)
    probs = F.softmax(logits.float(), dim=-1)
    top_probs, experts = torch.sort(probs, dim=-1, descending=True, stable=True)
    top_probs, experts = top_probs[:, :k], experts[:, :k]
    gates = top_probs if k == 1 else top_probs / top_probs.sum(dim=-1, keepdim=True)
    # Serve rank 0 of every token (in token order), then rank 1, ...: flatten (k, T) row-major.
    order = experts.t().reshape(-1)  # (k * T,)
    one_hot = F.one_hot(order, n_experts)  # (k * T, E)
    slot = ((one_hot.cumsum(dim=0) - 1) * one_hot).sum(dim=-1)  # 0-based arrival number at its expert
    kept = (slot < capacity).view(k, n_tokens).t()
    return experts, gates * kept, kept


def load_balancing_loss(probs: torch.Tensor, experts: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Switch Transformer's auxiliary loss ``E * sum_i f_i * P_i`` (a scalar tensor; 1.0 when uniform).

    ``probs`` (T, E): router probabilities; ``experts`` (T, k): chosen experts (before capacity). ``f_i`` =
    fraction of the ``T * k`` assignments that chose expert ``i`` (no gradient); ``P_i`` = mean of
    ``probs[:, i]`` (the gradient flows through it).
    """
    n_experts = _check_int("n_experts", n_experts, 1)
    if probs.dim() != 2 or probs.size(1) != n_experts:
        raise ValueError(f"probs must have shape (tokens, {n_experts}), got {tuple(probs.shape)}")
    if experts.dim() != 2 or experts.size(0) != probs.size(0):
        raise ValueError(f"experts must have shape ({probs.size(0)}, k), got {tuple(experts.shape)}")
    if experts.numel() == 0:
        raise ValueError("no tokens: the balancing loss of an empty batch is undefined")
    f = torch.bincount(experts.reshape(-1), minlength=n_experts).to(probs.dtype) / experts.numel()
    return n_experts * (f * probs.mean(dim=0)).sum()


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE's router z-loss: the mean over tokens of ``logsumexp(logits, -1) ** 2`` (logits (..., E))."""
    if logits.dim() < 1 or logits.numel() == 0:
        raise ValueError(f"logits must be a non-empty (..., n_experts) tensor, got {tuple(logits.shape)}")
    return torch.logsumexp(logits.float(), dim=-1).pow(2).mean()


def expert_capacity(tokens: int, n_experts: int, k: int, capacity_factor: float) -> int:
    """Assignments each expert may take: ``ceil(capacity_factor * tokens * k / n_experts)``.

    Rounded to 9 decimals before the ceiling so that float noise (``1.1 * 10 = 11.000000000000002``) does
    not add a slot.
    """
    tokens = _check_int("tokens", tokens, 0)
    n_experts = _check_int("n_experts", n_experts, 1)
    k = _check_int("k", k, 1)
    if isinstance(capacity_factor, bool) or not isinstance(capacity_factor, numbers.Real) \
            or not math.isfinite(capacity_factor) or capacity_factor <= 0:
        raise ValueError(f"capacity_factor must be a positive finite number, got {capacity_factor!r}")
    return math.ceil(round(float(capacity_factor) * tokens * k / n_experts, 9))


class _ExpertMLP(nn.Module):
    """One expert: GPT's MLP, ``C -> 4C -> GELU -> C`` (the parameter names of ``bigtrain_lab.models.GPTMLP``)."""

    def __init__(self, n_embd: int, bias: bool, dropout: float):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class MoEMLP(nn.Module):
    """A mixture-of-experts MLP: a router ``Linear(n_embd, n_experts, bias=False)`` and ``n_experts`` GPT MLPs.

    ``forward(x (B, T, C)) -> (y (B, T, C), aux)``. The ``B * T`` tokens of the batch are routed together by
    ``topk_router`` with ``capacity = min(B * T, expert_capacity(B * T, E, k, capacity_factor))`` (a
    ``capacity_factor`` of ``E / k`` or more drops nothing). ``y`` for a token is the gate-weighted sum of its
    kept experts' outputs (0 if all were dropped). ``aux``: ``"balance"`` (the Switch loss, a tensor),
    ``"router_z"`` (a tensor), ``"dropped_fraction"`` (float: dropped / all assignments), ``"expert_load"``
    ((E,) int64: assignments that chose each expert, before capacity), ``"kept_load"`` ((E,) int64: those it
    processed) and ``"capacity"`` (int). ``last_stats`` keeps the last forward's balance loss (a float) and
    counts (no tensors with a graph): what a training loop's per-step hook reads, layer by layer.
    """

    def __init__(self, config: Any):
        super().__init__()
        n_embd = _check_int("n_embd", config.n_embd, 1)
        self.n_experts = _check_int("n_experts", config.n_experts, 1)
        self.top_k = _check_int("expert_top_k", config.expert_top_k, 1)
        if self.top_k > self.n_experts:
            raise ValueError(f"expert_top_k ({self.top_k}) must be <= n_experts ({self.n_experts})")
        expert_capacity(1, self.n_experts, self.top_k, config.capacity_factor)  # validates the factor
        self.capacity_factor = float(config.capacity_factor)
        self.router = nn.Linear(n_embd, self.n_experts, bias=False)
        self.experts = nn.ModuleList(_ExpertMLP(n_embd, config.bias, config.dropout)
                                     for _ in range(self.n_experts))
        self.last_stats: dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        if x.dim() != 3:
            raise ValueError(f"x must have shape (batch, time, n_embd), got {tuple(x.shape)}")
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        n_tokens = flat.size(0)
        logits = self.router(flat)
        capacity = min(n_tokens, expert_capacity(n_tokens, self.n_experts, self.top_k, self.capacity_factor))
        experts, gates, kept = topk_router(logits, self.top_k, capacity)
        probs = F.softmax(logits.float(), dim=-1)
        y = torch.zeros_like(flat)
        kept_load = torch.zeros(self.n_experts, dtype=torch.long)
        for e, expert in enumerate(self.experts):
            token, rank = torch.nonzero((experts == e) & kept, as_tuple=True)
            kept_load[e] = token.numel()
            if token.numel() == 0:
                continue
            out = expert(flat.index_select(0, token))
            y.index_add_(0, token, out * gates[token, rank].unsqueeze(-1).to(out.dtype))
        aux = {
            "balance": load_balancing_loss(probs, experts, self.n_experts),
            "router_z": router_z_loss(logits),
            "dropped_fraction": int((~kept).sum().item()) / kept.numel(),
            "expert_load": torch.bincount(experts.reshape(-1), minlength=self.n_experts).cpu(),
            "kept_load": kept_load,
            "capacity": capacity,
        }
        self.last_stats = {"balance": aux["balance"].item(),
                           **{name: aux[name] for name in ("dropped_fraction", "expert_load", "kept_load", "capacity")}}
        return y.view(shape), aux


def active_parameters(model: nn.Module) -> int:
    """Parameters one token uses: all of ``model``'s, minus the ``E - k`` unchosen experts of every ``MoEMLP``.

    (The token embedding table counts whole, as in ``TinyGPT.num_parameters``.) Compare a dense and an MoE
    model by this, not by ``sum(p.numel())``, which counts every expert.
    """
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, MoEMLP):
            per_expert = sum(p.numel() for p in module.experts[0].parameters())
            total -= (module.n_experts - module.top_k) * per_expert
    return total
