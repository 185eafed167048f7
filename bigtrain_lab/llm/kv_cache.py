"""The KV cache: decode one token at a time without recomputing the keys and values of the past.

A causal language model's keys and values at position ``t`` depend only on tokens ``<= t``, so when it
generates token after token they never change: keep them (the cache) and each new step computes the new
token's query, key and value only, attending over the cached keys. Per step that is O(T) work in place of
the O(T^2) of re-running attention over the whole sequence (and the MLPs over every past token).

* ``attention_step_with_kv_cache(q_new, k_new, v_new, cache)`` -- one attention step with a dict cache
  (the exercise reference): the new queries at positions ``S ..`` attend keys ``0 .. S + t``.
* ``KVCache`` -- what ``bigtrain_lab.llm.model.LLM`` keeps: per-layer keys and values of shape
  ``(B, n_kv_head, S, head_dim)``, grown by concatenation, ``crop``-ped to roll back rejected tokens
  (speculative decoding).
* ``kv_cache_bytes`` -- its size: ``2 (K and V) * n_layer * n_kv_head * head_dim * tokens * batch * bytes``;
  grouped-query attention (fewer KV heads than query heads) shrinks it by ``n_head / n_kv_head``.
* ``generation_tokens_per_s`` -- tokens/s of ``LLM.generate`` against generated length, with and without the cache.

The cache only helps generation: in training every position is computed once, in parallel, in one
forward pass, so there is nothing to reuse.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

__all__ = ["KVCache", "attention_step_with_kv_cache", "generation_tokens_per_s", "kv_cache_bytes"]


def _check_tensor(name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if t.dim() < 2:
        raise ValueError(f"{name} must have shape (..., T, E), got {tuple(t.shape)}")
    return t


def attention_step_with_kv_cache(q_new: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor,
                                 cache: dict[str, torch.Tensor] | None
                                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Causal attention of ``T_new`` new tokens that come after ``S`` cached ones; returns ``(out, new_cache)``.

    ``q_new``, ``k_new`` ``(..., T_new, E)``, ``v_new`` ``(..., T_new, Ev)``; ``cache`` is ``None`` (S = 0) or
    ``{"k": (..., S, E), "v": (..., S, Ev)}``. New query ``t`` sits at absolute position ``S + t`` and attends
    keys ``0 .. S + t`` with scale ``1 / sqrt(E)``: ``out (..., T_new, Ev)`` equals rows ``S ..`` of
    ``F.scaled_dot_product_attention(q, k, v, is_causal=True)`` over the whole sequence. ``new_cache`` holds
    ``cat(old, new)`` along dim -2; the old cache's tensors are not modified.
    """
    _check_tensor("q_new", q_new)
    _check_tensor("k_new", k_new)
    _check_tensor("v_new", v_new)
    T_new, E = k_new.shape[-2], k_new.shape[-1]
    if T_new < 1:
        raise ValueError("there must be at least one new token (T_new >= 1)")
    if q_new.shape[-2:] != k_new.shape[-2:]:
        raise ValueError(f"q_new and k_new must both be (..., T_new, E), got {tuple(q_new.shape)} and "
                         f"{tuple(k_new.shape)}")
    if v_new.shape[:-1] != k_new.shape[:-1]:
        raise ValueError(f"v_new must be (..., T_new, Ev) with k_new's leading dims, got {tuple(v_new.shape)} "
                         f"and k_new {tuple(k_new.shape)}")
    if cache is None:
        k, v = k_new, v_new
    else:
        if not isinstance(cache, dict) or set(cache) != {"k", "v"}:
            raise TypeError(f"cache must be None or a dict with keys 'k' and 'v', got "
                            f"{sorted(cache) if isinstance(cache, dict) else type(cache).__name__}")
        k_old, v_old = _check_tensor("cache['k']", cache["k"]), _check_tensor("cache['v']", cache["v"])
        if k_old.shape[:-2] != k_new.shape[:-2] or k_old.shape[-1] != E:
            raise ValueError(f"cache['k'] {tuple(k_old.shape)} does not fit k_new {tuple(k_new.shape)}: "
                             f"expected (..., S, {E}) with the same leading dims")
        if v_old.shape[:-2] != v_new.shape[:-2] or v_old.shape[-1] != v_new.shape[-1]:
            raise ValueError(f"cache['v'] {tuple(v_old.shape)} does not fit v_new {tuple(v_new.shape)}")
        if v_old.shape[-2] != k_old.shape[-2]:
            raise ValueError(f"cache['k'] and cache['v'] hold different lengths: {k_old.shape[-2]} and "
                             f"{v_old.shape[-2]}")
        k, v = torch.cat((k_old, k_new), dim=-2), torch.cat((v_old, v_new), dim=-2)
    S_total = k.shape[-2]
    S = S_total - T_new
    scores = (q_new @ k.transpose(-2, -1)) * (1.0 / math.sqrt(E))  # (..., T_new, S_total)
    # query t is at position S + t: it may see key j iff j <= S + t (the bottom-right aligned causal mask)
    allowed = torch.arange(S_total, device=k.device)[None, :] <= (S + torch.arange(T_new, device=k.device))[:, None]
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    return weights @ v, {"k": k, "v": v}


class KVCache:
    """Per-layer keys and values ``(B, n_kv_head, S, head_dim)`` of the tokens a model has seen so far.

    ``LLM.forward(idx, cache=cache)`` reads ``length`` (the position of the first new token) and each layer
    calls ``update``. ``crop(n)`` keeps the first ``n`` positions (speculative decoding rolls back the
    draft tokens the target rejected); ``reset()`` empties it.
    """

    def __init__(self, n_layer: int):
        if isinstance(n_layer, bool) or not isinstance(n_layer, int) or n_layer < 1:
            raise ValueError(f"n_layer must be a positive integer, got {n_layer!r}")
        self.n_layer = n_layer
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer

    @property
    def length(self) -> int:
        """Number of cached positions (of the first layer; every layer holds the same after a forward)."""
        return 0 if self.keys[0] is None else self.keys[0].shape[-2]

    def __len__(self) -> int:
        return self.length

    def update(self, layer: int, k_new: torch.Tensor, v_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k_new``, ``v_new`` ``(B, n_kv_head, T_new, head_dim)`` to ``layer``'s cache; return all its keys and values."""
        if not 0 <= layer < self.n_layer:
            raise IndexError(f"layer {layer} out of range for a cache of {self.n_layer} layers")
        if self.keys[layer] is None:
            self.keys[layer], self.values[layer] = k_new, v_new
        else:
            self.keys[layer] = torch.cat((self.keys[layer], k_new), dim=-2)
            self.values[layer] = torch.cat((self.values[layer], v_new), dim=-2)
        return self.keys[layer], self.values[layer]

    def nbytes(self) -> int:
        """Bytes held by the cached keys and values (all layers)."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values) if t is not None)

    def crop(self, length: int) -> None:
        """Keep only the first ``length`` positions (0 <= length <= self.length)."""
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= self.length:
            raise ValueError(f"crop length must be an int in [0, {self.length}], got {length!r}")
        if length == 0:
            self.reset()
            return
        for i in range(self.n_layer):
            if self.keys[i] is not None:
                self.keys[i] = self.keys[i][..., :length, :]
                self.values[i] = self.values[i][..., :length, :]

    def reset(self) -> None:
        """Empty the cache."""
        self.keys = [None] * self.n_layer
        self.values = [None] * self.n_layer

    def __repr__(self) -> str:
        return f"KVCache(n_layer={self.n_layer}, length={self.length}, nbytes={self.nbytes()})"


def kv_cache_bytes(*, n_layer: int, n_kv_head: int, head_dim: int, tokens: int, batch: int = 1,
                   bytes_per_element: int = 2) -> int:
    """Size of a KV cache: ``2 * n_layer * n_kv_head * head_dim * tokens * batch * bytes_per_element``.

    The 2 is one key and one value vector per KV head, layer and token; ``bytes_per_element`` is 2 for
    fp16/bf16 (the default: how models are served), 4 for float32. Use ``n_kv_head``, not ``n_head``:
    with grouped-query attention the query heads share fewer key/value heads.
    """
    values = {"n_layer": n_layer, "n_kv_head": n_kv_head, "head_dim": head_dim, "tokens": tokens,
              "batch": batch, "bytes_per_element": bytes_per_element}
    for name, value in values.items():
        minimum = 0 if name == "tokens" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return 2 * n_layer * n_kv_head * head_dim * tokens * batch * bytes_per_element


def generation_tokens_per_s(model, prompt: torch.Tensor, lengths: Sequence[int], *, use_cache: bool = True,
                            repeats: int = 1) -> list[float]:
    """Greedy-generation speed of an ``LLM``: for each n in ``lengths``, n / (seconds to generate the first n tokens).

    One generation of ``max(lengths)`` tokens per repeat, timed token by token through ``model.stream``
    (the loop ``generate`` runs); each n keeps its fastest repeat. Wall-clock: the numbers depend on the machine.
    """
    lengths = list(lengths)
    if not lengths or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in lengths):
        raise ValueError(f"lengths must be positive integers, got {lengths!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    n_max = max(lengths)
    best = [math.inf] * n_max
    for _ in range(repeats):
        start = time.perf_counter()
        for i, _token in enumerate(model.stream(prompt, n_max, use_cache=use_cache)):
            if prompt.is_cuda:  # kernels run asynchronously: wait for the token before reading the clock
                torch.cuda.synchronize()
            best[i] = min(best[i], time.perf_counter() - start)
    return [n / best[n - 1] for n in lengths]
