"""How a transformer knows where a token is: learned, sinusoidal, RoPE and ALiBi positions.

Attention itself is blind to order (permute the tokens and the outputs permute with them), so a language
model adds position information in one of four ways, all switchable in ``bigtrain_lab.llm.model.LLM``:

* learned (GPT-2): a trained table ``wpe`` of ``block_size`` vectors added to the token embeddings; a
  position past the table has no vector at all.
* sinusoidal (Vaswani et al., 2017): the fixed table ``sinusoidal_table`` added to the embeddings; defined
  for every position, but the network only ever saw the first ``block_size``.
* RoPE (Su et al., 2021, RoFormer): ``apply_rope`` rotates each (i, i + D/2) pair of every query and key by
  the angle ``position * base ** (-2i / D)``; then ``q_m . k_n`` depends on the positions only through
  ``m - n`` (``rope_relative_scores`` shows it numerically). Llama, Mistral, Qwen use it.
* ALiBi (Press et al., 2022): no embedding; each head adds ``-slope * distance`` to its attention scores
  (``alibi_slopes``, ``alibi_bias``), a linear penalty on far-away keys that extends to any length.

``context_length_losses`` and ``loss_by_position`` measure what happens past the trained context length.

Conventions: queries ``(..., T, D)`` with the head dimension last; ``positions`` a 1-D tensor of T absolute
positions (with a KV cache the new tokens' positions start at the cache length, not at 0). RoPE uses the
half-split pairing of GPT-NeoX and Hugging Face Llama (pair ``i`` with ``i + D/2``), not the interleaved
(``2i``, ``2i + 1``) pairing of the RoFormer paper and Meta's original Llama code: the two differ by a fixed
permutation of the head dimensions, so either trains equally well, but weights are not interchangeable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["POSITIONS", "alibi_bias", "alibi_slopes", "apply_rope", "context_length_losses", "loss_by_position",
           "rope_angles", "rope_relative_scores", "sinusoidal_encoding", "sinusoidal_table"]

POSITIONS = ("learned", "sinusoidal", "rope", "alibi", "none")


def _check_dim(D: int, name: str = "D") -> None:
    if isinstance(D, bool) or not isinstance(D, int) or D < 1:
        raise ValueError(f"{name} must be a positive integer, got {D!r}")


def _as_positions(positions: torch.Tensor | Sequence[float], device: torch.device | None = None) -> torch.Tensor:
    if not isinstance(positions, torch.Tensor):
        positions = torch.as_tensor(positions)
    if positions.dim() != 1:
        raise ValueError(f"positions must be a 1-D tensor of T positions, got shape {tuple(positions.shape)}")
    dtype = torch.float64 if positions.dtype == torch.float64 else torch.float32
    return positions.to(device=device, dtype=dtype)


def rope_angles(positions: torch.Tensor | Sequence[float], D: int, *, base: float = 10000.0) -> torch.Tensor:
    """The ``(T, D/2)`` rotation angles ``positions[t] * base ** (-2i / D)`` (float32, or float64 positions)."""
    _check_dim(D)
    if D % 2:
        raise ValueError(f"RoPE rotates pairs of dimensions: the head dimension must be even, got {D}")
    if not base > 0:
        raise ValueError(f"base must be positive, got {base!r}")
    pos = _as_positions(positions)
    inv_freq = base ** (-torch.arange(0, D, 2, dtype=pos.dtype, device=pos.device) / D)  # (D/2,): 1, ..., ~1/base
    return pos[:, None] * inv_freq[None, :]


def apply_rope(x: torch.Tensor, positions: torch.Tensor | Sequence[float], *, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding of ``x (..., T, D)`` at ``positions (T,)``, half-split convention.

    Pair ``x[..., i]`` with ``x[..., i + D/2]`` and rotate the pair by ``theta_i = positions[t] * base ** (-2i / D)``::

        out_i       = x_i cos(theta_i) - x_{i+D/2} sin(theta_i)
        out_{i+D/2} = x_{i+D/2} cos(theta_i) + x_i sin(theta_i)

    Computed in float32 (float64 if ``x`` is float64), returned in ``x``'s dtype. ``x`` is not modified.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if x.dim() < 2:
        raise ValueError(f"x must have shape (..., T, D), got {tuple(x.shape)}")
    T, D = x.shape[-2], x.shape[-1]
    if D % 2:
        raise ValueError(f"RoPE rotates pairs of dimensions: the last dim D must be even, got {D}")
    pos = _as_positions(positions, x.device)
    if pos.shape[0] != T:
        raise ValueError(f"positions has {pos.shape[0]} entries but x has T = {T} positions")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    angles = rope_angles(pos.to(work), D, base=base)  # (T, D/2)
    cos, sin = angles.cos(), angles.sin()
    xf = x.to(work)
    x1, x2 = xf[..., : D // 2], xf[..., D // 2:]
    out = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return out.to(x.dtype)


def rope_relative_scores(q: torch.Tensor, k: torch.Tensor, pairs: Sequence[tuple[float, float]], *,
                         base: float = 10000.0) -> torch.Tensor:
    """``apply_rope(q at m) . apply_rope(k at n)`` for each ``(m, n)`` in ``pairs``; ``q``, ``k`` of shape ``(D,)``.

    RoPE's point: the result depends only on ``m - n`` (pairs with equal offsets give equal scores, up to
    rounding), because rotating both vectors by the same extra angle leaves their dot product unchanged.
    """
    if q.dim() != 1 or q.shape != k.shape:
        raise ValueError(f"q and k must be vectors of the same length, got {tuple(q.shape)} and {tuple(k.shape)}")
    out = []
    for m, n in pairs:
        qm = apply_rope(q[None].double(), [float(m)], base=base)[0]
        kn = apply_rope(k[None].double(), [float(n)], base=base)[0]
        out.append(qm @ kn)
    return torch.stack(out)


def sinusoidal_encoding(positions: torch.Tensor | Sequence[float], D: int, *, base: float = 10000.0) -> torch.Tensor:
    """Vaswani et al.'s fixed encoding at ``positions (T,)``: ``(T, D)`` float32 (on positions' device) with
    ``PE[t, 2i] = sin(pos_t / base ** (2i / D))`` and ``PE[t, 2i + 1] = cos(pos_t / base ** (2i / D))``."""
    _check_dim(D)
    pos = _as_positions(positions)
    inv_freq = base ** (-torch.arange(0, D, 2, dtype=pos.dtype, device=pos.device) / D)  # (ceil(D/2),)
    angles = pos[:, None] * inv_freq[None, :]
    pe = torch.empty(pos.shape[0], D, dtype=pos.dtype, device=pos.device)
    pe[:, 0::2] = angles.sin()
    pe[:, 1::2] = angles.cos()[:, : D // 2]
    return pe.float()


def sinusoidal_table(T: int, D: int, *, base: float = 10000.0) -> torch.Tensor:
    """``sinusoidal_encoding`` of positions ``0 .. T - 1``: the ``(T, D)`` table added to the embeddings."""
    _check_dim(T, "T")
    return sinusoidal_encoding(torch.arange(T), D, base=base)


def alibi_slopes(n_head: int) -> torch.Tensor:
    """ALiBi's per-head slopes ``(n_head,)`` float32, as in Press et al.'s reference code.

    For a power of two n: the geometric sequence ``2 ** (-8 (h + 1) / n)``, h = 0 .. n - 1 (for 8 heads:
    1/2, 1/4, ..., 1/256). Otherwise the slopes of the closest power of two below n, then every other
    slope of twice that power for the remaining heads.
    """
    _check_dim(n_head, "n_head")

    def power_of_2(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (h + 1) for h in range(n)]

    if math.log2(n_head).is_integer():
        slopes = power_of_2(n_head)
    else:
        closest = 2 ** math.floor(math.log2(n_head))
        slopes = power_of_2(closest) + power_of_2(2 * closest)[0::2][: n_head - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(n_head: int, L: int, S: int | None = None, *, causal: bool = True,
               device: torch.device | str | None = None) -> torch.Tensor:
    """ALiBi's additive attention bias ``(n_head, L, S)`` float32 for L queries that are the LAST L of S positions.

    Query ``i`` sits at position ``p = i + S - L`` (with a KV cache, the new tokens come after the cached
    ones); ``bias[h, i, j] = -slope_h * (p - j)``. With ``causal`` the future keys ``j > p`` get ``-inf``, so
    the bias is also the causal mask (pass it as SDPA's ``attn_mask``); without, ``-slope_h * |p - j|``.
    """
    S = L if S is None else S
    _check_dim(L, "L")
    _check_dim(S, "S")
    if L > S:
        raise ValueError(f"L ({L}) queries cannot be the last L of S ({S}) positions")
    q_pos = torch.arange(S - L, S, device=device, dtype=torch.float32)
    k_pos = torch.arange(S, device=device, dtype=torch.float32)
    distance = q_pos[:, None] - k_pos[None, :]  # (L, S), >= 0 for past keys
    slopes = alibi_slopes(n_head).to(device)
    bias = -slopes[:, None, None] * distance.abs()[None]
    if causal:
        bias = bias.masked_fill((distance < 0)[None], float("-inf"))
    return bias


GetBatch = Callable[[str, int], tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def loss_by_position(model: nn.Module, get_batch: GetBatch, batches: int = 4) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) at each position ``0 .. T - 1`` of validation batches ``0 .. batches - 1``.

    Past a model's trained context length this is where the loss goes up (or does not): position ``t``
    predicts token ``t + 1`` from ``t + 1`` tokens of context.
    """
    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise ValueError(f"batches must be a positive integer, got {batches!r}")
    was_training = model.training
    model.eval()
    try:
        total = None
        for i in range(batches):
            x, y = get_batch("val", i)
            logits = model(x)[0].float()
            ce = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(0)  # (T,)
            total = ce if total is None else total + ce
    finally:
        model.train(was_training)
    return total / batches


def context_length_losses(model: nn.Module, corpus, lengths: Sequence[int], *, batch_size: int = 8,
                          batches: int = 4, seed: int = 0, on_error: str = "raise") -> dict[int, float]:
    """Validation loss (mean nats per token) at each evaluation length in ``lengths``, on the same text.

    The validation windows are ``batches`` batches of ``batch_size`` windows of ``max(lengths)`` tokens; length
    ``L`` is scored on the first ``L`` tokens of every window, so the lengths differ only in how far the model
    is asked to read, not in the text. ``corpus`` is a ``bigtrain_lab.data.CharCorpus`` (batches through
    ``bigtrain_lab.train.corpus_batches``) or anything with ``batches(block_size, batch_size, seed)``
    (``bigtrain_lab.llm.lm_data.TokenStream``). A model that cannot take a length (learned positions past
    ``block_size``) raises ``ValueError``; with ``on_error="nan"`` that length's loss is NaN instead.
    """
    from bigtrain_lab.train import corpus_batches  # imported here: positions itself needs torch only

    if on_error not in ("raise", "nan"):
        raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
    lengths = list(lengths)
    if not lengths:
        raise ValueError("lengths must name at least one evaluation length")
    for L in lengths:
        _check_dim(L, "length")
    longest = max(lengths)
    get_batch = (corpus.batches(longest, batch_size, seed) if hasattr(corpus, "batches")
                 else corpus_batches(corpus, longest, batch_size, seed=seed))
    windows = [get_batch("val", i) for i in range(batches)]
    out: dict[int, float] = {}
    for L in lengths:
        try:
            out[L] = float(loss_by_position(model, lambda split, i, L=L: (windows[i][0][:, :L], windows[i][1][:, :L]),
                                            batches).mean())
        except ValueError:
            if on_error == "raise":
                raise
            out[L] = float("nan")
    return out
