"""``LLM``: the kit's TinyGPT with the switches of a modern large language model.

``LLMConfig`` turns on, one at a time or together:

* ``position``: ``"learned"`` (GPT-2's ``wpe`` table), ``"sinusoidal"`` (the fixed table added to the token
  embeddings, which are multiplied by ``sqrt(n_embd)`` first as in Vaswani et al.),
  ``"rope"`` (queries and keys rotated, ``bigtrain_lab.llm.positions.apply_rope``), ``"alibi"`` (a distance
  penalty on the attention scores) or ``"none"`` (a causal model still infers some order from the mask).
* ``n_kv_head``: grouped-query attention (Ainslie et al., 2023): ``n_head`` query heads share ``n_kv_head``
  key/value heads, query head ``h`` reading KV head ``h // (n_head / n_kv_head)``; ``n_kv_head = 1`` is
  multi-query attention (Shazeer, 2019), ``n_kv_head = n_head`` ordinary multi-head attention.
  ``c_attn`` produces ``(n_head + 2 n_kv_head) * head_dim`` values: queries, then keys, then values.
* ``qk_norm``: normalise each head's query and key before RoPE and the dot product (``True`` or
  ``"layernorm"``: LayerNorm over the head dimension, as in ViT-22B, Dehghani et al. 2023; ``"rmsnorm"``:
  RMSNorm, as in OLMo 2), which bounds the attention logits.
* ``n_experts > 0``: each block's MLP is ``bigtrain_lab.llm.moe.MoEMLP`` (top-``expert_top_k`` routing with
  ``capacity_factor``); ``moe_aux_weight`` times the mean of the layers' Switch balancing losses joins the loss.
* ``z_loss_weight``: PaLM's z-loss, ``mean(logsumexp(logits)^2)``, which keeps the softmax normaliser near 1.

``forward(idx, targets=None, *, cache=None) -> (logits, loss)``. With a ``KVCache`` the ``idx`` are the NEW
tokens, at positions ``cache.length ..``, and the cache is extended in place. ``model.aux`` holds the last
forward's loss parts as floats: ``"ce"``, ``"z_loss"`` (with targets), and for MoE ``"moe_balance"``,
``"moe_router_z"``, ``"moe_dropped_fraction"`` (means over the MoE layers) and ``"moe_expert_load"`` (an
``(n_layer, n_experts)`` tensor of assignments per expert).

``block_size`` is the context the model trains and generates with. Learned positions exist only for
``0 .. block_size - 1``; the other schemes accept longer inputs (the "past the trained context length"
experiment measures what they do there). ``generate`` crops the context to ``block_size`` as TinyGPT does.

With ``position="learned"``, ``n_kv_head == n_head``, no QK-norm and no MoE, the parameters (names, shapes)
and the outputs are exactly TinyGPT's (``bigtrain_lab.models``): ``LLM(cfg).load_state_dict(tiny.state_dict())``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bigtrain_lab.llm.kv_cache import KVCache
from bigtrain_lab.llm.positions import POSITIONS, alibi_bias, apply_rope, sinusoidal_encoding
from bigtrain_lab.models import GPTMLP

__all__ = ["LLM", "LLMConfig", "QK_NORMS"]

QK_NORMS = (False, True, "layernorm", "rmsnorm")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"LLMConfig.{name} must be a positive integer, got {value!r}")
    return value


@dataclass
class LLMConfig:
    """The shape of an ``LLM`` and its switches (see the module docstring). Defaults: TinyGPT's."""

    vocab_size: int = 256
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_kv_head: int | None = None  # None: n_head (multi-head attention)
    position: str = "learned"
    rope_base: float = 10000.0
    qk_norm: bool | str = False
    n_experts: int = 0
    expert_top_k: int = 1
    capacity_factor: float = 1.25
    moe_aux_weight: float = 0.01
    z_loss_weight: float = 0.0
    bias: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            _positive_int(name, getattr(self, name))
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        _positive_int("n_kv_head", self.n_kv_head)
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head ({self.n_head}) must be a multiple of n_kv_head ({self.n_kv_head}): each KV "
                             f"head serves n_head / n_kv_head query heads")
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")
        if self.position == "rope" and self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head dimension, got n_embd / n_head = {self.head_dim}")
        if not (isinstance(self.rope_base, (int, float)) and self.rope_base > 0):
            raise ValueError(f"rope_base must be positive, got {self.rope_base!r}")
        if not any(self.qk_norm is v or (isinstance(v, str) and self.qk_norm == v) for v in QK_NORMS):
            raise ValueError(f"qk_norm must be one of {QK_NORMS}, got {self.qk_norm!r}")
        if isinstance(self.n_experts, bool) or not isinstance(self.n_experts, int) or self.n_experts < 0:
            raise ValueError(f"n_experts must be an integer >= 0 (0: a dense MLP), got {self.n_experts!r}")
        if self.n_experts:
            _positive_int("expert_top_k", self.expert_top_k)
            if self.expert_top_k > self.n_experts:
                raise ValueError(f"expert_top_k ({self.expert_top_k}) must be <= n_experts ({self.n_experts})")
        for name in ("moe_aux_weight", "z_loss_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


class Attention(nn.Module):
    """Causal self-attention with grouped KV heads, optional QK-norm, RoPE or ALiBi, and a KV cache."""

    def __init__(self, config: LLMConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.n_kv_head, config.head_dim
        self.position, self.rope_base = config.position, config.rope_base
        self.c_attn = nn.Linear(config.n_embd, (config.n_head + 2 * config.n_kv_head) * config.head_dim,
                                bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.dropout = config.dropout
        if config.qk_norm is False:
            self.q_norm = self.k_norm = None
        elif config.qk_norm == "rmsnorm":
            self.q_norm, self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6), nn.RMSNorm(self.head_dim, eps=1e-6)
        else:
            self.q_norm = nn.LayerNorm(self.head_dim, bias=config.bias)
            self.k_norm = nn.LayerNorm(self.head_dim, bias=config.bias)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.size()
        hd, nh, nkv = self.head_dim, self.n_head, self.n_kv_head
        q, k, v = self.c_attn(x).split([nh * hd, nkv * hd, nkv * hd], dim=2)
        q = q.view(B, T, nh, hd).transpose(1, 2)  # (B, nh, T, hd)
        k = k.view(B, T, nkv, hd).transpose(1, 2)  # (B, nkv, T, hd)
        v = v.view(B, T, nkv, hd).transpose(1, 2)
        if self.q_norm is not None:  # before RoPE: the norm sees the content, the rotation adds the position
            q, k = self.q_norm(q), self.k_norm(k)
        if self.position == "rope":
            q = apply_rope(q, positions, base=self.rope_base)
            k = apply_rope(k, positions, base=self.rope_base)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # the cache holds nkv heads: that is GQA's saving
        S = k.size(2)
        if nkv != nh:  # query head h reads KV head h // (nh / nkv), as SDPA's enable_gqa and Llama's repeat_kv
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
        mask, causal = None, False
        if self.position == "alibi":
            mask = alibi_bias(nh, T, S, device=x.device).to(q.dtype)  # the -inf above the diagonal is the causal mask
        elif T == S:
            causal = True
        elif T > 1:  # new tokens after cached ones: query t (position S - T + t) sees keys 0 .. S - T + t
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):
    """Pre-LayerNorm block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``; ``forward`` returns ``(x, moe aux or None)``."""

    def __init__(self, config: LLMConfig, layer: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = Attention(config, layer)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        if config.n_experts:
            from bigtrain_lab.llm.moe import MoEMLP  # imported where it is used

            self.mlp = MoEMLP(config)
        else:
            self.mlp = GPTMLP(config)  # TinyGPT's own MLP: it reads only n_embd, bias and dropout

    def forward(self, x: torch.Tensor, positions: torch.Tensor, cache: KVCache | None = None
                ) -> tuple[torch.Tensor, dict[str, Any] | None]:
        x = x + self.attn(self.ln_1(x), positions, cache)
        out = self.mlp(self.ln_2(x))
        aux = None
        if isinstance(out, tuple):
            out, aux = out
        return x + out, aux


class LLM(nn.Module):
    """A decoder-only language model: TinyGPT plus the switches of ``LLMConfig``.

    ``forward(idx (B, T), targets=None, *, cache=None) -> (logits (B, T, vocab), loss or None)``.
    """

    def __init__(self, config: LLMConfig):
        super().__init__()
        if not isinstance(config, LLMConfig):
            raise TypeError(f"config must be an LLMConfig, got {type(config).__name__}")
        self.config = config
        modules: dict[str, nn.Module] = {"wte": nn.Embedding(config.vocab_size, config.n_embd)}
        if config.position == "learned":
            modules["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        modules["drop"] = nn.Dropout(config.dropout)
        modules["h"] = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])
        modules["ln_f"] = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.transformer = nn.ModuleDict(modules)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying, as in GPT-2 / TinyGPT
        self.aux: dict[str, Any] = {}

        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's 1/sqrt(2 n_layer) on the residual projections
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Number of parameters (the tied matrix once); ``non_embedding`` leaves out the learned position table."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits of every position of ``idx`` and, with ``targets``, the loss (see the module docstring)."""
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
            raise ValueError(f"idx must be a (batch, time) tensor of token ids, got "
                             f"{tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__}")
        if cache is not None and not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a bigtrain_lab.llm.kv_cache.KVCache or None, got {type(cache).__name__}")
        if cache is not None and cache.n_layer != self.config.n_layer:
            raise ValueError(f"the cache has {cache.n_layer} layers, the model {self.config.n_layer}")
        B, T = idx.size()
        start = 0 if cache is None else cache.length
        cfg = self.config
        if cfg.position == "learned" and start + T > cfg.block_size:
            raise ValueError(f"cannot forward positions up to {start + T - 1}: learned positions exist only for "
                             f"0 .. {cfg.block_size - 1} (block_size {cfg.block_size}; crop the context)")
        positions = torch.arange(start, start + T, device=idx.device)
        x = self.transformer.wte(idx)
        if cfg.position == "learned":
            x = x + self.transformer.wpe(positions)
        elif cfg.position == "sinusoidal":
            # Vaswani et al. multiply the embeddings by sqrt(n_embd): the fixed table's entries are O(1), and
            # added to embeddings initialised at std 0.02 it would drown the tokens.
            x = x * math.sqrt(cfg.n_embd) + sinusoidal_encoding(positions, cfg.n_embd).to(device=x.device, dtype=x.dtype)
        x = self.transformer.drop(x)
        moe: list[dict[str, Any]] = []
        for block in self.transformer.h:
            x, aux = block(x, positions, cache)
            if aux is not None:
                moe.append(aux)
        logits = self.lm_head(self.transformer.ln_f(x))
        self.aux = {}
        if moe:
            self.aux.update({
                "moe_balance": float(sum(a["balance"].detach() for a in moe) / len(moe)),
                "moe_router_z": float(sum(a["router_z"].detach() for a in moe) / len(moe)),
                "moe_dropped_fraction": sum(float(a["dropped_fraction"]) for a in moe) / len(moe),
                "moe_expert_load": torch.stack([a["expert_load"] for a in moe]),
            })
        loss = None
        if targets is not None:
            flat = logits.view(-1, logits.size(-1))
            ce = F.cross_entropy(flat, targets.reshape(-1), ignore_index=-1)
            loss = ce
            self.aux["ce"] = float(ce.detach())
            # PaLM's z-loss: log Z = logsumexp(logits) pushed towards 0 (recorded even when its weight is 0)
            z_loss = torch.logsumexp(flat[targets.reshape(-1) != -1].float(), dim=-1).pow(2).mean()
            self.aux["z_loss"] = float(z_loss.detach())
            if cfg.z_loss_weight > 0:
                loss = loss + cfg.z_loss_weight * z_loss
            if moe and cfg.moe_aux_weight > 0:
                loss = loss + cfg.moe_aux_weight * (sum(a["balance"] for a in moe) / len(moe))
        return logits, loss

    @torch.no_grad()
    def stream(self, idx: torch.Tensor, max_new_tokens: int, *, use_cache: bool = True, temperature: float = 0.0,
               generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Yield the ``(B, 1)`` next tokens one at a time (``generate``'s loop); see ``generate``."""
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
        if not (isinstance(temperature, (int, float)) and temperature >= 0):
            raise ValueError(f"temperature must be >= 0 (0: greedy), got {temperature!r}")
        if idx.dim() != 2 or idx.size(1) < 1:
            raise ValueError(f"idx must be a (batch, time >= 1) tensor of token ids, got {tuple(idx.shape)}")
        bs = self.config.block_size
        cache = KVCache(self.config.n_layer) if use_cache else None
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                if cache is None:
                    logits = self(idx[:, -bs:])[0]
                elif cache.length > 0 and cache.length + 1 <= bs:
                    logits = self(idx[:, -1:], cache=cache)[0]  # only the newest token; the rest is cached
                else:  # the first step (the prompt), or the window slid past block_size: recompute it
                    cache.reset()
                    logits = self(idx[:, -bs:], cache=cache)[0]
                logits = logits[:, -1, :].float()
                if temperature == 0:
                    nxt = logits.argmax(dim=-1, keepdim=True)
                else:
                    probs = F.softmax(logits / temperature, dim=-1)
                    nxt = torch.multinomial(probs, num_samples=1, generator=generator)
                idx = torch.cat((idx, nxt), dim=1)
                yield nxt
        finally:
            self.train(was_training)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, *, use_cache: bool = True, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Extend ``idx (B, T)`` by ``max_new_tokens`` tokens; returns ``(B, T + max_new_tokens)``.

        ``temperature`` 0 is greedy (argmax), otherwise sampling from ``softmax(logits / temperature)`` with
        ``generator``. The context is cropped to the last ``block_size`` tokens. With ``use_cache`` only the
        newest token goes through the model at each step (the prompt once, at the start); when the sequence
        outgrows ``block_size`` the window slides and is recomputed, so the tokens equal those without the cache.
        """
        new = list(self.stream(idx, max_new_tokens, use_cache=use_cache, temperature=temperature,
                               generator=generator))
        return torch.cat([idx, *new], dim=1)
