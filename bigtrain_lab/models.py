"""Small models for the lessons: an MLP, a CNN for 8x8 digits, and TinyGPT, a nanoGPT-class decoder.

TinyGPT follows karpathy/nanoGPT's ``model.py`` class for class, in reading order:
``CausalSelfAttention`` -> ``GPTMLP`` -> ``Block`` -> ``GPTConfig`` -> ``TinyGPT``.
References:
1) GPT-2 (Radford et al., 2019), and OpenAI's TensorFlow implementation:
   https://github.com/openai/gpt-2/blob/master/src/model.py
2) nanoGPT: https://github.com/karpathy/nanoGPT/blob/master/model.py
3) The FLOPs estimate: PaLM (Chowdhery et al., 2022), Appendix B.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
}


# ----------------------------------------------------------------------------------------------------
# Classifiers for the tabular / image lessons


class MLP(nn.Module):
    """Fully connected classifier: ``in_features -> hidden[0] -> ... -> out_features``.

    Input ``(N, in_features)`` (any trailing shape is flattened, so 8x8 images work too); output logits
    ``(N, out_features)``. ``activation`` is one of ``relu, gelu, tanh, sigmoid, silu``; ``dropout`` is
    applied after every hidden activation.
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (64, 64), out_features: int = 10,
                 *, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        widths = [in_features, *hidden]
        if any(int(w) < 1 for w in [*widths, out_features]):
            raise ValueError(f"every width must be >= 1, got in={in_features} hidden={list(hidden)} "
                             f"out={out_features}")
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    """Two 3x3 conv layers and a linear head for 8x8 single-channel images (sklearn's digits).

    Input ``(N, 1, 8, 8)`` (a flat ``(N, 64)`` is reshaped); output logits ``(N, num_classes)``.
    Shapes: 1x8x8 -conv-> 16x8x8 -conv-> 32x8x8 -maxpool-> 32x4x4 -> 512 -> 64 -> num_classes.
    """

    def __init__(self, num_classes: int = 10, *, channels: tuple[int, int] = (16, 32), hidden: int = 64,
                 dropout: float = 0.0):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 4 * 4, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # sklearn's digits come as (N, 64) rows
            x = x.view(-1, 1, 8, 8)
        if x.shape[-3:] != (1, 8, 8):
            raise ValueError(f"CNN expects input of shape (N, 1, 8, 8), got {tuple(x.shape)}")
        return self.head(self.features(x))


# ----------------------------------------------------------------------------------------------------
# TinyGPT


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t attends only to positions <= t."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        # key, query, value projections for all heads, in one matmul
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x (B, T, C) -> (y (B, T, C), attention (B, nh, T, T) or None)``."""
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        # (B, T, C) -> (B, nh, T, hs): heads become a batch dimension
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if return_attention:
            # The explicit form, to look at the weights: softmax(q k^T / sqrt(hs) + causal mask) v.
            # SDPA below computes the same thing without materialising the (T, T) matrix (flash kernels).
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~mask, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = self.attn_dropout(att) @ v
        else:
            att = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None,
                                               dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble all head outputs side by side
        return self.resid_dropout(self.c_proj(y)), att


class GPTMLP(nn.Module):
    """The position-wise feed-forward layer: ``C -> 4C -> GELU -> C``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """A pre-LayerNorm transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = GPTMLP(config)

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, att = self.attn(self.ln_1(x), return_attention)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, att


@dataclass
class GPTConfig:
    """TinyGPT's shape. The defaults are nanoGPT's CPU configuration for shakespeare-char.

    ``bias``: biases in Linear and LayerNorm layers (GPT-2 has them; without is a bit faster).
    ``gradient_checkpointing``: recompute each block's activations in the backward pass instead of
    storing them (less memory, about one extra forward of compute).
    """

    vocab_size: int = 256
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                             f"each head gets n_embd // n_head dimensions")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


class TinyGPT(nn.Module):
    """A decoder-only transformer language model (GPT-2 architecture, nanoGPT-sized).

    ``forward(idx (B, T) int64, targets (B, T) or None) -> (logits (B, T, vocab_size), loss or None)``.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embeddings
            wpe=nn.Embedding(config.block_size, config.n_embd),  # learned position embeddings
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying (Press & Wolf, 2017): the output layer reuses the token embedding matrix, so
        # "which token is this vector" and "which vector is this token" are one set of parameters.
        self.transformer.wte.weight = self.lm_head.weight

        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(2 * n_layer), so
        # that the stream's variance does not grow with depth (each block adds two of them).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Number of parameters. With ``non_embedding`` the position embeddings are left out (as in
        nanoGPT and the scaling-law papers); the token embeddings stay, since the tied lm_head uses them.
        """
        n_params = sum(p.numel() for p in self.parameters())  # parameters() yields the tied matrix once
        if non_embedding:
            n_params -= self.transformer.wpe.weight.numel()
        return n_params

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                return_attention: bool = False):
        """Logits for every position, and the mean cross-entropy against ``targets`` when given.

        Returns ``(logits, loss)``; with ``return_attention=True`` returns ``(logits, loss, attention)``
        where ``attention`` is a list with one ``(B, n_head, T, T)`` tensor of weights per layer (rows sum
        to 1), computed explicitly instead of by the fused ``scaled_dot_product_attention`` kernel.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (batch, time), got {tuple(idx.shape)}")
        b, t = idx.size()
        if t > self.config.block_size:
            raise ValueError(f"cannot forward a sequence of length {t}: block_size is only "
                             f"{self.config.block_size} (crop the context to the last block_size tokens)")
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)  # shape (t,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        attentions = []
        # Activation checkpointing only matters when a backward pass will follow.
        recompute = self.config.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for block in self.transformer.h:
            if recompute and not return_attention:
                # Keep only the block's input; its inner activations are recomputed during backward.
                # use_reentrant=False is the recommended implementation (works with kwargs, autocast
                # and inputs that do not require grad); the RNG state is replayed so dropout matches.
                x, _ = checkpoint(block, x, use_reentrant=False)
            else:
                x, att = block(x, return_attention)
                if return_attention:
                    attentions.append(att)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        if return_attention:
            return logits, loss, attentions
        return logits, loss

    def flops_per_token(self) -> int:
        """Training FLOPs per token (forward + backward), as in nanoGPT's ``estimate_mfu``:

            6 N + 12 L H Q T

        ``N`` = ``num_parameters()`` (non-embedding): every weight is used in one multiply-add (2 FLOPs)
        per token in the forward pass and two in the backward pass (gradients w.r.t. inputs and weights),
        so 2 + 4 = 6 FLOPs per weight. ``12 L H Q T`` is attention's own matmuls, which have no weights:
        per token, layer and head, ``q k^T`` and ``att v`` cost 2 Q T FLOPs each forward (T keys of
        dimension Q; the causal mask's saving is ignored), times 3 for forward + backward: 12 Q T.
        L = layers, H = heads, Q = head dim, T = block size. Recomputation (activation checkpointing)
        is not counted: MFU counts the model's FLOPs, not the hardware's.
        """
        cfg = self.config
        N = self.num_parameters()
        L, H, Q, T = cfg.n_layer, cfg.n_head, cfg.head_dim, cfg.block_size
        return 6 * N + 12 * L * H * Q * T

    def estimate_mfu(self, tokens_per_second: float, peak_flops: float) -> float:
        """Model FLOPs utilisation: achieved ``flops_per_token() * tokens/s`` as a fraction of
        ``peak_flops`` (FLOP/s, e.g. 312e12 for an A100's bf16 tensor cores)."""
        if peak_flops <= 0:
            raise ValueError(f"peak_flops must be positive, got {peak_flops!r}")
        return self.flops_per_token() * tokens_per_second / peak_flops

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Extend ``idx (B, T)`` by ``max_new_tokens`` sampled tokens; returns ``(B, T + max_new_tokens)``.

        ``temperature`` divides the logits (0 means greedy: always the most likely token); ``top_k``
        keeps only the k most likely tokens. Dropout is switched off while sampling.
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {top_k!r}")
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                # the model has position embeddings for block_size positions only: crop the context
                idx_cond = idx[:, -self.config.block_size:]
                logits, _ = self(idx_cond)
                logits = logits[:, -1, :].float()
                if temperature == 0:
                    idx_next = logits.argmax(dim=-1, keepdim=True)
                else:
                    logits = logits / temperature
                    if top_k is not None:
                        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                        logits[logits < v[:, [-1]]] = -float("inf")
                    probs = F.softmax(logits, dim=-1)
                    idx_next = torch.multinomial(probs, num_samples=1, generator=generator)
                idx = torch.cat((idx, idx_next), dim=1)
        finally:
            self.train(was_training)
        return idx
