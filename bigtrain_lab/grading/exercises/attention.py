"""Exercises of the attention lesson; the reference is ``torch.nn.functional.scaled_dot_product_attention``.

With ``is_causal=True`` and a non-square score matrix (``L != S``) torch masks with the TOP-LEFT aligned
lower triangle ``torch.ones(L, S).tril()``: query ``i`` sees keys ``0..i``. (The bottom-right alignment that
decoding with a KV cache wants is a different mask; the exercise follows torch.)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bigtrain_lab.grading.exercises.optim import tensor_close
from bigtrain_lab.grading.registry import Case, Exercise, register

#: Roundings behind each output entry (``compare.rounding_bound``, norm-wise against the largest output):
#: a dot product over E <= 64 for the scores, a softmax (max, exp, a sum over S <= 12), a weighted sum over
#: S; torch may take a fused kernel that sums in another order. 4 * (E + S) covers them with the softmax's
#: amplification of the scores' rounding (~ eps |score|, |score| up to a few hundred in the large case
#: relative to the spread of the weights).
ROUNDING_STEPS = 4 * (64 + 12)


def _sdpa(q, k, v, *, causal=False):
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _qkv(rng: np.random.Generator, batch: tuple, L: int, S: int, E: int, Ev: int | None = None,
         dtype: torch.dtype = torch.float64, scale: float = 1.0) -> tuple[torch.Tensor, ...]:
    def draw(*shape):
        return torch.tensor(rng.normal(0.0, scale, shape), dtype=dtype)

    return draw(*batch, L, E), draw(*batch, S, E), draw(*batch, S, E if Ev is None else Ev)


def _cases(rng: np.random.Generator) -> list[Case]:
    causal = {"causal": True}
    cases = [
        Case("one sequence, no batch dims (L=S=4, E=8)", _qkv(rng, (), 4, 4, 8)),
        Case("causal, square (L=S=5)", _qkv(rng, (), 5, 5, 8), causal),
        Case("batch and heads (2, 3, L=6, E=4)", _qkv(rng, (2, 3), 6, 6, 4)),
        Case("batch and heads, causal", _qkv(rng, (2, 3), 6, 6, 4), causal),
        Case("cross-attention, L=3 queries over S=7 keys", _qkv(rng, (2,), 3, 7, 5)),
        Case("causal with L < S (torch aligns the mask top-left)", _qkv(rng, (2,), 3, 7, 5), causal),
        Case("causal with L > S (torch aligns the mask top-left)", _qkv(rng, (), 6, 3, 4), causal),
        Case("value dim differs from the key dim (Ev=3, E=16)", _qkv(rng, (2,), 4, 5, 16, Ev=3)),
        Case("a single query (L=1)", _qkv(rng, (3,), 1, 6, 4)),
        Case("a single key (S=1)", _qkv(rng, (), 4, 1, 4)),
        Case("causal, a single query (L=1): sees only key 0", _qkv(rng, (), 1, 5, 4), causal),
        Case("scores in the thousands (exp overflows: softmax must subtract the max)",
             _qkv(rng, (), 4, 4, 8, scale=40.0), causal),
        Case("float32, batch and heads", _qkv(rng, (2, 2), 5, 5, 8, dtype=torch.float32), causal),
        Case("E=64 (the 1/sqrt(E) scale matters)", _qkv(rng, (1,), 4, 4, 64)),
    ]
    for i in range(10):
        batch = [(), (2,), (2, 3), (1, 2, 2)][int(rng.integers(4))]
        L, S = (int(x) for x in rng.integers(1, 12, 2))
        E, Ev = int(rng.choice([2, 4, 8, 16, 32])), int(rng.choice([2, 4, 8, 16]))
        dtype = torch.float32 if i % 3 == 0 else torch.float64
        kwargs = {"causal": True} if i % 2 else {}
        label = f"random #{i + 1} (batch {batch}, L={L}, S={S}, E={E}, Ev={Ev}, {dtype}{', causal' if kwargs else ''})"
        cases.append(Case(label, _qkv(rng, batch, L, S, E, Ev, dtype), kwargs))
    return cases


register(Exercise(
    id="attention.scaled_dot_product_attention",
    reference=_sdpa,
    make_cases=_cases,
    compare=tensor_close("the attention output", steps=ROUNDING_STEPS),
    hint="scores = q @ k.transpose(-2, -1) / sqrt(E) with E = q.shape[-1]; with causal=True set the scores "
         "where key index j > query index i to -inf (mask = torch.ones(L, S).tril(), top-left aligned as "
         "torch does, also when L != S); softmax over the LAST dim (the keys); return weights @ v, shape "
         "(..., L, Ev), in the dtype of q.",
    section="scaled-dot-product-attention",
))
