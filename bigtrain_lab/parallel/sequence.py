"""Sequence parallelism (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models") and the activation memory of one transformer layer per rank.

Tensor parallelism splits the matmuls, but the LayerNorms, dropouts and the residual stream between them
run on the whole ``(s, b, h)`` activation on every rank: ``10 sbh`` of the ``sbh (34 + 5as/h)`` bytes a
layer keeps for backward stay replicated. Sequence parallelism shards those regions along the sequence:
the all-reduce of ``g`` becomes a reduce-scatter (to this rank's ``s/t`` positions) and the identity
``f`` becomes an all-gather (back to the whole sequence for the next column-parallel layer). A ring
all-reduce is a reduce-scatter plus an all-gather, so the bytes moved are the same, and every activation
is divided by ``t``: ``sbh/t (34 + 5as/h)``.

The pieces live in ``bigtrain_lab.parallel.tensor`` (``ColumnParallelLinear`` / ``RowParallelLinear`` with
``sequence_parallel=True``, ``tensor_parallel_gpt(..., sequence_parallel=True)``) and
``bigtrain_lab.parallel.comm``; this module measures what they save.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from bigtrain_lab.memory import SavedTensorBytes
from bigtrain_lab.models import Block, GPTConfig
from bigtrain_lab.parallel.comm import simulated_group
from bigtrain_lab.parallel.tensor import TensorParallelAttention, TensorParallelMLP

__all__ = ["ActivationMeasurement", "MaskDropout", "compare_activation_bytes", "measure_activation_bytes_per_layer",
           "tensor_parallel_block"]


class MaskDropout(nn.Dropout):
    """Dropout through ``torch.native_dropout``, which keeps a 1-byte bool mask for backward, as CUDA's
    fused kernel does (``F.dropout`` on the CPU keeps a noise tensor of the activation's dtype instead)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.native_dropout(x, self.p, self.training)[0] if self.training and self.p > 0 else x


def tensor_parallel_block(config: GPTConfig, tp: int, *, sequence_parallel: bool = False, rank: int = 0,
                          group=None, explicit_attention: bool = True, seed: int = 0) -> nn.Module:
    """A TinyGPT ``Block`` with rank ``rank``'s share of attention and MLP over ``tp`` ranks (``group``
    None: ``simulated_group(tp, rank)``, this rank's exact shapes in one process, no communication)."""
    group = simulated_group(tp, rank) if group is None else group
    torch.manual_seed(seed)
    block = Block(config)
    if tp > 1 or sequence_parallel or explicit_attention:
        block.attn = TensorParallelAttention.from_attention(block.attn, rank, tp, group,
                                                            sequence_parallel=sequence_parallel,
                                                            explicit=explicit_attention)
        block.mlp = TensorParallelMLP(block.mlp, rank, tp, group, sequence_parallel=sequence_parallel)
    return block


@dataclass(frozen=True)
class ActivationMeasurement:
    """Bytes one layer keeps for backward on one rank, measured and from Korthikanti's formula."""

    tp: int
    sequence_parallel: bool
    measured: int
    formula: float
    by_dtype: dict

    @property
    def ratio(self) -> float:
        return self.measured / self.formula

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def measure_activation_bytes_per_layer(seq_len: int, micro_batch: int, hidden: int, n_heads: int, *, tp: int = 1,
                                       sequence_parallel: bool = False, dropout: float = 0.1,
                                       dtype: torch.dtype = torch.bfloat16,
                                       bool_masks: bool = True) -> ActivationMeasurement:
    """Run one transformer layer forward in the formula's setting and count what autograd saves.

    The setting of Korthikanti et al.: 16-bit activations (the layer cast to ``dtype``), dropout ``> 0``
    (1-byte bool masks), softmax attention written out (the ``5as/h`` term: scores, mask, dropped scores;
    a flash kernel would keep none of them), one rank's shapes of TP ``tp`` (+ SP: the layer input is
    the rank's ``s/t`` positions). Weights are not counted; neither are the forward's temporaries.
    ``bool_masks``: dropout keeps 1-byte masks (``MaskDropout``, as on GPUs); False: torch's CPU dropout,
    whose saved noise tensor has the activation's 2 bytes.
    """
    from bigtrain_lab.estimate.formulas import activation_bytes_per_layer

    for name, v in (("seq_len", seq_len), ("micro_batch", micro_batch), ("hidden", hidden), ("n_heads", n_heads),
                    ("tp", tp)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if not 0.0 < dropout < 1.0:
        raise ValueError(f"dropout must be in (0, 1) (the formula counts dropout masks), got {dropout!r}")
    if sequence_parallel and seq_len % tp:
        raise ValueError(f"seq_len={seq_len} must divide by tp={tp} for sequence parallelism")
    config = GPTConfig(vocab_size=1, block_size=seq_len, n_layer=1, n_head=n_heads, n_embd=hidden,
                       dropout=dropout)
    block = tensor_parallel_block(config, tp, sequence_parallel=sequence_parallel).to(dtype).train()
    if bool_masks:
        for module in list(block.modules()):
            for name, child in module.named_children():
                if type(child) is nn.Dropout:
                    setattr(module, name, MaskDropout(child.p))
    local_seq = seq_len // tp if sequence_parallel else seq_len
    x = torch.randn(micro_batch, local_seq, hidden, dtype=dtype, requires_grad=True)
    with SavedTensorBytes(exclude=block.parameters()) as saved:
        out, _ = block(x)
    del out
    formula = activation_bytes_per_layer(seq_len, micro_batch, hidden, n_heads, tp=tp,
                                         sequence_parallel=sequence_parallel)
    return ActivationMeasurement(tp, sequence_parallel, saved.nbytes, formula, saved.by_dtype)


def compare_activation_bytes(seq_len: int = 256, micro_batch: int = 2, hidden: int = 256, n_heads: int = 8, *,
                             tps: tuple[int, ...] = (1, 2, 4), dropout: float = 0.1,
                             bool_masks: bool = True) -> list[dict]:
    """``measure_activation_bytes_per_layer`` for no TP, then TP t and TP t + SP for each t > 1 of ``tps``:
    one dict per configuration (``tp, sequence_parallel, measured, formula, ratio, by_dtype``)."""
    rows = []
    for tp in tps:
        for sp in ((False,) if tp == 1 else (False, True)):
            rows.append(measure_activation_bytes_per_layer(seq_len, micro_batch, hidden, n_heads, tp=tp,
                                                           sequence_parallel=sp, dropout=dropout,
                                                           bool_masks=bool_masks).as_dict())
    return rows
