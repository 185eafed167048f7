"""Plausible WRONG attention implementations (each must be rejected by ``check``) and several different
CORRECT ones (each must be accepted)."""

import math

import torch

from bigtrain_lab.attention import scaled_dot_product_attention as lesson_attention


def _scores(q, k, scale):
    return q @ k.transpose(-2, -1) * scale


def _causal_mask(L, S, device=None):
    return torch.ones(L, S, dtype=torch.bool, device=device).tril()


def _attend(scores, v, mask=None):
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def attn_no_scale(q, k, v, *, causal=False):
    L, S = q.shape[-2], k.shape[-2]
    return _attend(_scores(q, k, 1.0), v, _causal_mask(L, S) if causal else None)


def attn_scale_by_e(q, k, v, *, causal=False):
    L, S = q.shape[-2], k.shape[-2]
    return _attend(_scores(q, k, 1.0 / q.shape[-1]), v, _causal_mask(L, S) if causal else None)


def attn_scale_by_value_dim(q, k, v, *, causal=False):
    L, S = q.shape[-2], k.shape[-2]
    return _attend(_scores(q, k, 1.0 / math.sqrt(v.shape[-1])), v, _causal_mask(L, S) if causal else None)


def attn_softmax_over_queries(q, k, v, *, causal=False):
    L, S = q.shape[-2], k.shape[-2]
    scores = _scores(q, k, 1.0 / math.sqrt(q.shape[-1]))
    if causal:
        scores = scores.masked_fill(~_causal_mask(L, S), float("-inf"))
    return torch.softmax(scores, dim=-2).nan_to_num(0.0) @ v


def attn_bottom_right_causal(q, k, v, *, causal=False):
    # the KV-cache alignment (query i sees keys up to i + S - L): not what torch's is_causal does
    L, S = q.shape[-2], k.shape[-2]
    mask = torch.ones(L, S, dtype=torch.bool).tril(diagonal=S - L) if causal else None
    if mask is not None:
        mask[mask.sum(-1) == 0, 0] = True  # avoid fully masked rows when L > S
    return _attend(_scores(q, k, 1.0 / math.sqrt(q.shape[-1])), v, mask)


def attn_strict_causal(q, k, v, *, causal=False):
    # excludes the diagonal: a token cannot see itself (row 0 sees nothing: NaN)
    L, S = q.shape[-2], k.shape[-2]
    mask = torch.ones(L, S, dtype=torch.bool).tril(diagonal=-1) if causal else None
    return _attend(_scores(q, k, 1.0 / math.sqrt(q.shape[-1])), v, mask)


def attn_ignores_causal(q, k, v, *, causal=False):
    return _attend(_scores(q, k, 1.0 / math.sqrt(q.shape[-1])), v)


def attn_zero_masking(q, k, v, *, causal=False):
    # multiplies masked scores by 0 instead of setting them to -inf: exp(0) = 1 still gets weight
    L, S = q.shape[-2], k.shape[-2]
    scores = _scores(q, k, 1.0 / math.sqrt(q.shape[-1]))
    if causal:
        scores = scores * _causal_mask(L, S)
    return torch.softmax(scores, dim=-1) @ v


def attn_naive_exp(q, k, v, *, causal=False):
    # softmax without subtracting the max: overflows to inf / inf = NaN on large scores
    L, S = q.shape[-2], k.shape[-2]
    scores = _scores(q, k, 1.0 / math.sqrt(q.shape[-1]))
    weights = torch.exp(scores)
    if causal:
        weights = weights * _causal_mask(L, S)
    return weights / weights.sum(-1, keepdim=True) @ v


def attn_mask_after_softmax(q, k, v, *, causal=False):
    # zeroes the future weights AFTER the softmax and does not renormalise: rows no longer sum to 1
    L, S = q.shape[-2], k.shape[-2]
    weights = torch.softmax(_scores(q, k, 1.0 / math.sqrt(q.shape[-1])), dim=-1)
    if causal:
        weights = weights * _causal_mask(L, S)
    return weights @ v


def attn_float32_always(q, k, v, *, causal=False):
    out = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal)
    return out


ATTENTION_WRONG = [attn_no_scale, attn_scale_by_e, attn_scale_by_value_dim, attn_softmax_over_queries,
                   attn_bottom_right_causal, attn_strict_causal, attn_ignores_causal, attn_zero_masking,
                   attn_naive_exp, attn_mask_after_softmax, attn_float32_always]


def attn_masked_fill(q, k, v, *, causal=False):
    L, S = q.shape[-2], k.shape[-2]
    return _attend(_scores(q, k, 1.0 / math.sqrt(q.shape[-1])), v, _causal_mask(L, S) if causal else None)


def attn_einsum_stable(q, k, v, *, causal=False):
    # additive -inf bias and a hand-written max-subtracted softmax
    scores = torch.einsum("...le,...se->...ls", q, k) / q.shape[-1] ** 0.5
    if causal:
        L, S = scores.shape[-2:]
        i = torch.arange(L)[:, None]
        j = torch.arange(S)[None, :]
        scores = scores + torch.where(j <= i, 0.0, float("-inf")).to(scores.dtype)
    scores = scores - scores.amax(-1, keepdim=True)
    weights = scores.exp()
    weights = weights / weights.sum(-1, keepdim=True)
    return torch.einsum("...ls,...sv->...lv", weights, v)


ATTENTION_RIGHT = [attn_masked_fill, attn_einsum_stable, lesson_attention]  # the last: the lesson's own

WRONG = {"attention.scaled_dot_product_attention": ATTENTION_WRONG}
RIGHT = {"attention.scaled_dot_product_attention": ATTENTION_RIGHT}
