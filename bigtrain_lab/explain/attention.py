"""Attention maps and attention rollout for ``bigtrain_lab.models.TinyGPT``.

``attention_maps`` asks TinyGPT for its weights (``forward(..., return_attention=True)``, the explicit
softmax(q k^T / sqrt(d) + mask) the fused kernel never materialises). ``attention_rollout`` (Abnar &
Zuidema, 2020) composes the layers: each layer's head-averaged map A is mixed with the identity for the
residual connection, A' = (A + I) / 2 (rows renormalised), and the rollout is A'_L ... A'_1: row t says
how much of position t's final representation flows, through all layers, from each input position.
Both are descriptions of information flow, not of what the prediction depends on (see the lesson's
"attention is not explanation" section, which compares them with gradients).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from bigtrain_lab.attention import attention_maps

__all__ = ["attention_maps", "attention_rollout", "mass_at_offset", "token_saliency"]


def attention_rollout(maps: torch.Tensor, *, residual: bool = True, head_fusion: str = "mean"
                      ) -> torch.Tensor:
    """Attention rollout of (n_layer, n_head, T, T) maps -> (T, T), rows summing to 1.

    ``head_fusion``: "mean" (Abnar & Zuidema) or "max" over heads. ``residual`` adds the identity for the
    skip connection before renormalising each row.
    """
    if maps.dim() != 4 or maps.shape[-1] != maps.shape[-2]:
        raise ValueError(f"maps must have shape (n_layer, n_head, T, T), got {tuple(maps.shape)}")
    if head_fusion == "mean":
        fused = maps.mean(dim=1)
    elif head_fusion == "max":
        fused = maps.amax(dim=1)
    else:
        raise ValueError(f"head_fusion must be 'mean' or 'max', got {head_fusion!r}")
    T = maps.shape[-1]
    rollout = torch.eye(T, dtype=maps.dtype, device=maps.device)
    for layer in fused:
        a = (layer + torch.eye(T, dtype=maps.dtype, device=maps.device)) / 2 if residual else layer
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a @ rollout
    return rollout


def mass_at_offset(attention: torch.Tensor, offset: int) -> float:
    """Mean attention weight that rows t >= offset give to position t - offset, for a (T, T) map."""
    T = attention.shape[-1]
    if not 0 <= offset < T:
        raise ValueError(f"offset must be in [0, {T}), got {offset}")
    rows = torch.arange(offset, T)
    return float(attention[..., rows, rows - offset].mean())


def token_saliency(model: nn.Module, idx: torch.Tensor, *, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient importance of every input position for every prediction: (T, T), row t = output position.

    Entry (t, j) is the L2 norm over the embedding dimensions of d log p(token_t) / d e_j, where e_j is
    position j's input embedding (token + position) and token_t is ``targets[t]`` (default: the model's
    own greedy prediction at t). Rows are normalised to sum to 1 (a zero row stays zero). Unlike an
    attention map, this measures what the output is sensitive to, through all layers and the MLPs.
    """
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)
    if idx.dim() != 2 or idx.shape[0] != 1:
        raise ValueError(f"idx must be one sequence, shape (T,) or (1, T), got {tuple(idx.shape)}")
    T = idx.shape[1]
    store: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        store["e"] = output
        return output

    was_training = model.training
    model.eval()
    handle = model.transformer.drop.register_forward_hook(keep)  # the sum of token and position embeddings
    rows = []
    try:
        for t in range(T):
            logits, _ = model(idx)
            log_probs = torch.log_softmax(logits[0, t], dim=-1)
            token = int(log_probs.argmax()) if targets is None else int(targets.reshape(-1)[t])
            (grad,) = torch.autograd.grad(log_probs[token], store["e"])
            rows.append(grad[0].norm(dim=-1).detach())
    finally:
        handle.remove()
        model.train(was_training)
    saliency = torch.stack(rows)
    total = saliency.sum(dim=1, keepdim=True)
    return torch.where(total > 0, saliency / total.clamp_min(1e-30), saliency)
