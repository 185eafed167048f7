"""Attention written out: masks, scaled dot-product attention, multi-head self- and cross-attention.

Everything here is checked against torch's own implementations in ``tests/test_attention.py``:
``scaled_dot_product_attention`` against ``torch.nn.functional.scaled_dot_product_attention`` and
``MultiHeadAttention`` against ``torch.nn.MultiheadAttention``. Shapes follow torch: queries
``(..., L, E)``, keys ``(..., S, E)``, values ``(..., S, Ev)``; a boolean mask is ``True`` where a query
MAY attend to a key (SDPA's convention, the opposite of ``nn.MultiheadAttention``'s ``attn_mask``).

``BankBiLSTMTagger`` is the "self-attention" example of an interview bank translated to torch: it holds
no attention at all, and the lesson shows it with ``permutation_equivariance_error``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn

__all__ = ["MultiHeadAttention", "BankBiLSTMTagger", "attention_maps", "attention_weights", "causal_mask",
           "merge_heads", "permutation_equivariance_error", "scaled_dot_product_attention", "split_heads"]

ALIGNMENTS = ("top-left", "bottom-right")


def causal_mask(L: int, S: int | None = None, *, align: str = "top-left",
                device: torch.device | str | None = None) -> torch.Tensor:
    """A ``(L, S)`` boolean mask, ``True`` where query ``i`` may attend to key ``j``.

    ``align="top-left"`` (torch's ``is_causal``): ``j <= i``. ``align="bottom-right"`` (decoding with a
    KV cache, where the L queries are the LAST L of the S positions): ``j <= i + S - L``. The two agree
    when ``L == S``.
    """
    S = L if S is None else S
    if L < 1 or S < 1:
        raise ValueError(f"L and S must be >= 1, got L={L}, S={S}")
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {ALIGNMENTS}, got {align!r}")
    diagonal = 0 if align == "top-left" else S - L
    return torch.ones(L, S, dtype=torch.bool, device=device).tril(diagonal=diagonal)


def _check_qk(q: torch.Tensor, k: torch.Tensor) -> None:
    if q.dim() < 2 or k.dim() < 2:
        raise ValueError(f"q and k need at least 2 dims (..., L, E) and (..., S, E), got {tuple(q.shape)} "
                         f"and {tuple(k.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last dim E, got {q.shape[-1]} and {k.shape[-1]}")


def attention_weights(q: torch.Tensor, k: torch.Tensor, *, causal: bool = False,
                      mask: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """``softmax(q k^T * scale + masking)`` over the keys: shape ``(..., L, S)``, rows sum to 1.

    ``scale`` defaults to ``1 / sqrt(E)``. ``mask`` (boolean, broadcastable to ``(..., L, S)``) is
    ``True`` where attending is allowed; ``causal`` adds the top-left causal mask. A row with every key
    masked gives NaN, as torch's SDPA does.
    """
    _check_qk(q, k)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    allowed = None
    if causal:
        allowed = causal_mask(q.shape[-2], k.shape[-2], device=q.device)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be boolean (True = may attend), got {mask.dtype}")
        allowed = mask if allowed is None else allowed & mask
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1)  # softmax subtracts the row max: no overflow on large scores


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                                 mask: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """``attention_weights(q, k) @ v``: shape ``(..., L, Ev)``; equals
    ``F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale)``."""
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"k and v must have the same number of positions S, got {k.shape[-2]} and {v.shape[-2]}")
    return attention_weights(q, k, causal=causal, mask=mask, scale=scale) @ v


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """``(B, T, C) -> (B, n_head, T, C // n_head)``: each head gets its own slice of the channels."""
    B, T, C = x.shape
    if C % n_head:
        raise ValueError(f"channels ({C}) must be divisible by n_head ({n_head})")
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(B, n_head, T, D) -> (B, T, n_head * D)``: the heads' outputs side by side."""
    B, H, T, D = x.shape
    return x.transpose(1, 2).reshape(B, T, H * D)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query, key and value projections.

    ``forward(x)`` is self-attention; ``forward(x, context)`` is cross-attention: queries from ``x``
    ``(B, L, embed_dim)``, keys and values from ``context`` ``(B, S, kdim)``. Returns ``(out (B, L,
    embed_dim), weights (B, num_heads, L, S) or None)``. The same computation as
    ``nn.MultiheadAttention(embed_dim, num_heads, kdim=kdim, vdim=vdim, batch_first=True)``;
    ``from_torch`` copies one's weights.
    """

    def __init__(self, embed_dim: int, num_heads: int, *, kdim: int | None = None, vdim: int | None = None,
                 bias: bool = True):
        super().__init__()
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a positive multiple of num_heads ({num_heads})")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(kdim or embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(vdim or embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, *, causal: bool = False,
                mask: torch.Tensor | None = None, return_attention: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        context = x if context is None else context
        q = split_heads(self.q_proj(x), self.num_heads)
        k = split_heads(self.k_proj(context), self.num_heads)
        v = split_heads(self.v_proj(context), self.num_heads)
        weights = attention_weights(q, k, causal=causal, mask=mask)
        out = self.out_proj(merge_heads(weights @ v))
        return out, (weights if return_attention else None)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """A copy of a ``batch_first`` ``nn.MultiheadAttention`` (no bias_k / bias_v, no dropout)."""
        if not mha.batch_first or mha.bias_k is not None or mha.dropout:
            raise ValueError("from_torch needs batch_first=True, add_bias_kv=False and dropout=0")
        bias = mha.in_proj_bias is not None
        new = cls(mha.embed_dim, mha.num_heads, kdim=mha.kdim, vdim=mha.vdim, bias=bias)
        new.to(device=mha.out_proj.weight.device, dtype=mha.out_proj.weight.dtype)
        E = mha.embed_dim
        with torch.no_grad():
            if mha._qkv_same_embed_dim:
                weights = mha.in_proj_weight.split(E)
            else:
                weights = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
            for proj, w, i in zip((new.q_proj, new.k_proj, new.v_proj), weights, range(3), strict=True):
                proj.weight.copy_(w)
                if bias:
                    proj.bias.copy_(mha.in_proj_bias[i * E:(i + 1) * E])
            new.out_proj.weight.copy_(mha.out_proj.weight)
            if bias:
                new.out_proj.bias.copy_(mha.out_proj.bias)
        return new


@torch.no_grad()
def attention_maps(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """A TinyGPT's attention weights on ``idx``: ``(n_layer, B, n_head, T, T)`` for a batch ``(B, T)``,
    ``(n_layer, n_head, T, T)`` for one sequence ``(T,)``.

    Row t of a map holds the weights position t gives to positions 0..t (causal: zero above the diagonal),
    summing to 1. Uses the model's ``return_attention`` path (the explicit softmax) in eval mode (no
    dropout), and restores the model's mode.
    """
    if idx.dim() not in (1, 2):
        raise ValueError(f"idx must be a sequence (T,) or a batch (B, T) of token ids, got {tuple(idx.shape)}")
    was_training = model.training
    model.eval()
    try:
        _, _, attentions = model(idx.unsqueeze(0) if idx.dim() == 1 else idx, return_attention=True)
    finally:
        model.train(was_training)
    maps = torch.stack(attentions)
    return maps[:, 0] if idx.dim() == 1 else maps


class BankBiLSTMTagger(nn.Module):
    """The interview bank's "self-attention in a sequence model" example, translated from Keras:
    ``Embedding -> Bidirectional(LSTM(64, return_sequences=True)) -> Dense(num_classes)``.

    It is a recurrent network: no queries, keys, values or attention weights anywhere. ``forward(idx
    (B, T)) -> logits (B, T, num_classes)``.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 32, units: int = 64, num_classes: int = 10):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, units, batch_first=True, bidirectional=True)
        self.dense = nn.Linear(2 * units, num_classes)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.dense(self.lstm(self.embedding(idx))[0])


def permutation_equivariance_error(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                                   perm: torch.Tensor) -> float:
    """``max |fn(x[:, perm]) - fn(x)[:, perm]|`` over a batch of sequences ``x (B, T, ...)``.

    Zero (to rounding) for self-attention without positional information: it treats its input as a
    SET of positions. A recurrent network reads them in order, so the error is large.
    """
    if sorted(perm.tolist()) != list(range(x.shape[1])):
        raise ValueError(f"perm must be a permutation of range({x.shape[1]})")
    with torch.no_grad():
        return float((fn(x[:, perm]) - fn(x)[:, perm]).abs().max())
