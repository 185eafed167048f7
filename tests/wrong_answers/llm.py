"""Plausible WRONG implementations of the ``llm.*`` exercises (each must be rejected by ``check``), and several
different CORRECT ones (each must be accepted)."""

import math
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

# ---- llm.bpe_merges ------------------------------------------------------------------------------


def _bpe_check(text, num_merges):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    if not isinstance(num_merges, int) or num_merges < 0:
        raise ValueError("num_merges must be an int >= 0")


def _merge(ids, pair, new):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _bpe(text, num_merges, *, units, count, best):
    """The BPE loop with its three choices pluggable: the units, how pairs are counted, which pair wins."""
    _bpe_check(text, num_merges)
    ids = units(text)
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    for i in range(num_merges):
        if len(ids) < 2:
            break
        counts = count(ids)
        pair = best(counts, vocab)
        vocab[256 + i] = vocab[pair[0]] + vocab[pair[1]]
        merges.append((vocab[pair[0]], vocab[pair[1]]))
        ids = _merge(ids, pair, 256 + i)
    return merges


def _utf8(text):
    return list(text.encode("utf-8"))


def _overlapping(ids):
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _smallest_ids(counts, vocab):
    return min(counts, key=lambda pair: (-counts[pair], pair))


def bpe_right(text, num_merges):
    return _bpe(text, num_merges, units=_utf8, count=_overlapping, best=_smallest_ids)


def bpe_right_counter(text, num_merges):
    # another correct loop: Counter for the counts, a sort for the winner, the merge by a skip flag
    _bpe_check(text, num_merges)
    ids = list(text.encode("utf-8"))
    pieces = [bytes([i]) for i in range(256)]
    merges = []
    for i in range(num_merges):
        if len(ids) < 2:
            break
        counts = Counter(zip(ids, ids[1:]))
        (a, b), _ = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))[0]
        pieces.append(pieces[a] + pieces[b])
        merges.append((pieces[a], pieces[b]))
        out, skip = [], False
        for j, t in enumerate(ids):
            if skip:
                skip = False
            elif j + 1 < len(ids) and t == a and ids[j + 1] == b:
                out.append(256 + i)
                skip = True
            else:
                out.append(t)
        ids = out
    return merges


def _non_overlapping(ids):
    # counts like str.count: "aaa" holds (a, a) once
    counts = {}
    for pair in set(zip(ids, ids[1:])):
        n, j = 0, 0
        while j + 1 < len(ids):
            if (ids[j], ids[j + 1]) == pair:
                n, j = n + 1, j + 2
            else:
                j += 1
        counts[pair] = n
    return {pair: counts[pair] for pair in dict.fromkeys(zip(ids, ids[1:]))}


def bpe_non_overlapping_counts(text, num_merges):
    return _bpe(text, num_merges, units=_utf8, count=_non_overlapping, best=_smallest_ids)


def bpe_first_occurrence_ties(text, num_merges):
    # Counter.most_common breaks ties by first occurrence in the text
    return _bpe(text, num_merges, units=_utf8, count=lambda ids: Counter(zip(ids, ids[1:])),
                best=lambda counts, vocab: counts.most_common(1)[0][0])


def bpe_byte_string_ties(text, num_merges):
    # ties broken by the pair's byte strings (b"ab" < b"z") instead of the token ids (256 + i > any byte)
    return _bpe(text, num_merges, units=_utf8, count=_overlapping,
                best=lambda counts, vocab: min(counts, key=lambda p: (-counts[p], vocab[p[0]], vocab[p[1]])))


def bpe_characters_not_bytes(text, num_merges):
    # merges characters, not UTF-8 bytes: 'é' is one symbol instead of two bytes
    _bpe_check(text, num_merges)
    symbols = [c.encode("utf-8") for c in text]
    merges = []
    for _ in range(num_merges):
        if len(symbols) < 2:
            break
        counts = Counter(zip(symbols, symbols[1:]))
        pair = min(counts, key=lambda p: (-counts[p], p))
        merges.append(pair)
        out, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                out.append(pair[0] + pair[1])
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out
    return merges


def bpe_merges_right_to_left(text, num_merges):
    # replaces the occurrences from the right: "aaa" becomes (a, aa) instead of (aa, a)
    def merge_from_right(ids, pair, new):
        return _merge(ids[::-1], pair[::-1], new)[::-1]

    _bpe_check(text, num_merges)
    ids = list(text.encode("utf-8"))
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    for i in range(num_merges):
        if len(ids) < 2:
            break
        counts = _overlapping(ids)
        pair = _smallest_ids(counts, vocab)
        vocab[256 + i] = vocab[pair[0]] + vocab[pair[1]]
        merges.append((vocab[pair[0]], vocab[pair[1]]))
        ids = merge_from_right(ids, pair, 256 + i)
    return merges


# ---- llm.apply_rope -----------------------------------------------------------------------------


def _rope_check(x, positions):
    if x.shape[-1] % 2:
        raise ValueError("the last dim must be even")
    if positions.shape != (x.shape[-2],):
        raise ValueError("positions must have shape (T,)")


def _work(x):
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _angles(positions, D, base, dtype, exponent=2):
    inv_freq = base ** (-exponent * torch.arange(D // 2, dtype=dtype) / D)
    return positions.to(dtype)[:, None] * inv_freq[None, :]  # (T, D/2)


def rope_right_rotate_half(x, positions, *, base=10000.0):
    _rope_check(x, positions)
    dt = _work(x)
    ang = _angles(positions, x.shape[-1], base, dt)
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    xf = x.to(dt)
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos + torch.cat([-x2, x1], -1) * sin).to(x.dtype)


def rope_right_complex(x, positions, *, base=10000.0):
    # the halves as the real and imaginary parts of D/2 complex numbers, each multiplied by e^(i angle)
    _rope_check(x, positions)
    dt = _work(x)
    D = x.shape[-1]
    inv_freq = 1.0 / torch.pow(torch.tensor(base, dtype=dt), torch.arange(0, D, 2, dtype=dt) / D)
    ang = torch.outer(positions.to(dt), inv_freq)
    xf = x.to(dt)
    z = torch.complex(xf[..., : D // 2], xf[..., D // 2:]) * torch.polar(torch.ones_like(ang), ang)
    return torch.cat([z.real, z.imag], -1).to(x.dtype)


def rope_interleaved(x, positions, *, base=10000.0):
    # GPT-J / the original RoFormer layout: pairs (x[2i], x[2i+1]) instead of (x[i], x[i + D/2])
    _rope_check(x, positions)
    dt = _work(x)
    ang = _angles(positions, x.shape[-1], base, dt)
    xf = x.to(dt)
    even, odd = xf[..., 0::2], xf[..., 1::2]
    out = torch.stack([even * ang.cos() - odd * ang.sin(), odd * ang.cos() + even * ang.sin()], -1)
    return out.flatten(-2).to(x.dtype)


def rope_wrong_exponent(x, positions, *, base=10000.0):
    # theta_i = base ** (-i / D) instead of base ** (-2i / D): frequencies fall half as fast
    _rope_check(x, positions)
    dt = _work(x)
    ang = _angles(positions, x.shape[-1], base, dt, exponent=1)
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    xf = x.to(dt)
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos + torch.cat([-x2, x1], -1) * sin).to(x.dtype)


def rope_mixed_conventions(x, positions, *, base=10000.0):
    # rotate_half (half-split pairs) with the interleaved layout's repeat_interleave'd frequencies: x[i] and
    # x[i + D/2] turn by different angles, so it is no rotation and q.k no longer depends on m - n only
    _rope_check(x, positions)
    dt = _work(x)
    ang = _angles(positions, x.shape[-1], base, dt).repeat_interleave(2, dim=-1)
    xf = x.to(dt)
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * ang.cos() + torch.cat([-x2, x1], -1) * ang.sin()).to(x.dtype)


def rope_in_input_dtype(x, positions, *, base=10000.0):
    # angles and products in x's own dtype: in bfloat16 the angle of position 300 is off by whole radians
    _rope_check(x, positions)
    D = x.shape[-1]
    inv_freq = base ** (-2 * torch.arange(D // 2, dtype=x.dtype) / D)
    ang = positions.to(x.dtype)[:, None] * inv_freq[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


def rope_additive(x, positions, *, base=10000.0):
    # adds a sinusoidal position code (the 2017 Transformer) instead of rotating: q.k depends on m and n
    _rope_check(x, positions)
    dt = _work(x)
    ang = _angles(positions, x.shape[-1], base, dt)
    return (x.to(dt) + torch.cat([ang.sin(), ang.cos()], -1)).to(x.dtype)


# ---- llm.attention_step_with_kv_cache -------------------------------------------------------------


def _grow(cache, k_new, v_new):
    if cache is None:
        return k_new, v_new
    return torch.cat([cache["k"], k_new], -2), torch.cat([cache["v"], v_new], -2)


def kv_right(q_new, k_new, v_new, cache):
    k, v = _grow(cache, k_new, v_new)
    T, total = q_new.shape[-2], k.shape[-2]
    mask = torch.ones(T, total, dtype=torch.bool).tril(diagonal=total - T)  # query t sees keys 0 .. S + t
    return F.scaled_dot_product_attention(q_new, k, v, attn_mask=mask), {"k": k, "v": v}


def kv_right_positions(q_new, k_new, v_new, cache):
    # scores by hand, the mask from absolute positions
    past = 0 if cache is None else cache["k"].shape[-2]
    k, v = _grow(cache, k_new, v_new)
    scores = q_new @ k.transpose(-2, -1) / math.sqrt(q_new.shape[-1])
    query_pos = past + torch.arange(q_new.shape[-2])
    key_pos = torch.arange(k.shape[-2])
    scores = scores.masked_fill(key_pos[None, :] > query_pos[:, None], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v, {"k": k, "v": v}


def kv_top_left_causal(q_new, k_new, v_new, cache):
    # is_causal=True on (T_new, S + T_new) scores: torch aligns it top-left, so new token t sees keys 0..t
    k, v = _grow(cache, k_new, v_new)
    return F.scaled_dot_product_attention(q_new, k, v, is_causal=True), {"k": k, "v": v}


def kv_no_mask(q_new, k_new, v_new, cache):
    # no mask at all: right for one new token, but a prompt's tokens see the ones after them
    k, v = _grow(cache, k_new, v_new)
    return F.scaled_dot_product_attention(q_new, k, v), {"k": k, "v": v}


def kv_mutates_cache(q_new, k_new, v_new, cache):
    # appends into the cache it was handed and returns that same dict
    if cache is None:
        cache = {"k": k_new, "v": v_new}
    else:
        cache["k"] = torch.cat([cache["k"], k_new], -2)
        cache["v"] = torch.cat([cache["v"], v_new], -2)
    k, v = cache["k"], cache["v"]
    T, total = q_new.shape[-2], k.shape[-2]
    mask = torch.ones(T, total, dtype=torch.bool).tril(diagonal=total - T)
    return F.scaled_dot_product_attention(q_new, k, v, attn_mask=mask), cache


def kv_new_keys_first(q_new, k_new, v_new, cache):
    # cat(new, old): the cache's order no longer matches the positions
    if cache is not None:
        k, v = torch.cat([k_new, cache["k"]], -2), torch.cat([v_new, cache["v"]], -2)
    else:
        k, v = k_new, v_new
    T, total = q_new.shape[-2], k.shape[-2]
    mask = torch.ones(T, total, dtype=torch.bool).tril(diagonal=total - T)
    return F.scaled_dot_product_attention(q_new, k, v, attn_mask=mask), {"k": k, "v": v}


def kv_scale_by_value_dim(q_new, k_new, v_new, cache):
    # 1 / sqrt(Ev) instead of 1 / sqrt(E)
    k, v = _grow(cache, k_new, v_new)
    T, total = q_new.shape[-2], k.shape[-2]
    mask = torch.ones(T, total, dtype=torch.bool).tril(diagonal=total - T)
    out = F.scaled_dot_product_attention(q_new, k, v, attn_mask=mask, scale=1 / math.sqrt(v.shape[-1]))
    return out, {"k": k, "v": v}


# ---- llm.online_softmax_attention ---------------------------------------------------------------


def flash_right(q, k, v, *, block_size, causal=False):
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1])
    m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype)
    den = torch.zeros((*q.shape[:-1], 1), dtype=q.dtype)
    acc = torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
    rows = torch.arange(L)[:, None]
    for j0 in range(0, S, block_size):
        j1 = min(j0 + block_size, S)
        s = q @ k[..., j0:j1, :].transpose(-2, -1) * scale
        if causal:
            s = s.masked_fill(torch.arange(j0, j1)[None, :] > rows, float("-inf"))
        m_new = torch.maximum(m, s.amax(-1, keepdim=True))
        p = torch.exp(s - m_new)
        alpha = torch.exp(m - m_new)
        den = den * alpha + p.sum(-1, keepdim=True)
        acc = acc * alpha + p @ v[..., j0:j1, :]
        m = m_new
    return acc / den


def flash_right_logsumexp(q, k, v, *, block_size, causal=False):
    # each block normalised on its own, merged by log-sum-exp (the split-K / flash-decoding way)
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    L, S = q.shape[-2], k.shape[-2]
    out = torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
    lse = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype)
    for j0 in range(0, S, block_size):
        if causal and j0 > L - 1:
            break  # every later key is in every query's future
        kb, vb = k[..., j0:j0 + block_size, :], v[..., j0:j0 + block_size, :]
        s = (q / math.sqrt(q.shape[-1])) @ kb.transpose(-2, -1)
        if causal:
            future = torch.arange(j0, j0 + kb.shape[-2]).unsqueeze(0) > torch.arange(L).unsqueeze(1)
            s = s.masked_fill(future, float("-inf"))
        lse_b = torch.logsumexp(s, -1, keepdim=True)
        o_b = torch.nan_to_num(torch.softmax(s, -1)) @ vb
        new = torch.logaddexp(lse, lse_b)
        out = out * torch.exp(lse - new) + o_b * torch.nan_to_num(torch.exp(lse_b - new))
        lse = new
    return out


def flash_no_rescale(q, k, v, *, block_size, causal=False):
    # keeps the running max but never rescales the accumulator and the normaliser when the max grows
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    L, S = q.shape[-2], k.shape[-2]
    m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype)
    den = torch.zeros((*q.shape[:-1], 1), dtype=q.dtype)
    acc = torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
    for j0 in range(0, S, block_size):
        j1 = min(j0 + block_size, S)
        s = q @ k[..., j0:j1, :].transpose(-2, -1) / math.sqrt(q.shape[-1])
        if causal:
            s = s.masked_fill(torch.arange(j0, j1)[None, :] > torch.arange(L)[:, None], float("-inf"))
        m = torch.maximum(m, s.amax(-1, keepdim=True))
        p = torch.exp(s - m)
        den = den + p.sum(-1, keepdim=True)
        acc = acc + p @ v[..., j0:j1, :]
    return acc / den


def flash_full_scores(q, k, v, *, block_size, causal=False):
    # the whole (L, S) score matrix at once, then the softmax: right numbers, none of the memory saving
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).tril().logical_not(), float("-inf"))
    return torch.softmax(s, -1) @ v


def flash_max_first(q, k, v, *, block_size, causal=False):
    # a first pass for the exact row max over all scores, then the blocks: holds the (L, S) matrix anyway
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1])
    s_all = q @ k.transpose(-2, -1) * scale
    if causal:
        s_all = s_all.masked_fill(torch.arange(S)[None, :] > torch.arange(L)[:, None], float("-inf"))
    m = s_all.amax(-1, keepdim=True)
    den = torch.zeros_like(m)
    acc = torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
    for j0 in range(0, S, block_size):
        p = torch.exp(s_all[..., j0:j0 + block_size] - m)
        den = den + p.sum(-1, keepdim=True)
        acc = acc + p @ v[..., j0:j0 + block_size, :]
    return acc / den


def flash_drops_last_block(q, k, v, *, block_size, causal=False):
    # range(S // block_size) blocks: the keys of a last, shorter block are never seen
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    L, S = q.shape[-2], k.shape[-2]
    n_blocks = max(S // block_size, 1)
    m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype)
    den = torch.zeros((*q.shape[:-1], 1), dtype=q.dtype)
    acc = torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
    for b in range(n_blocks):
        j0, j1 = b * block_size, min((b + 1) * block_size, S)
        s = q @ k[..., j0:j1, :].transpose(-2, -1) / math.sqrt(q.shape[-1])
        if causal:
            s = s.masked_fill(torch.arange(j0, j1)[None, :] > torch.arange(L)[:, None], float("-inf"))
        m_new = torch.maximum(m, s.amax(-1, keepdim=True))
        p = torch.exp(s - m_new)
        alpha = torch.exp(m - m_new)
        den, acc, m = den * alpha + p.sum(-1, keepdim=True), acc * alpha + p @ v[..., j0:j1, :], m_new
    return acc / den


def flash_bottom_right_causal(q, k, v, *, block_size, causal=False):
    # the KV-cache alignment (query i sees keys 0 .. i + S - L), not SDPA's top-left is_causal
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    L, S = q.shape[-2], k.shape[-2]
    m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype)
    den = torch.zeros((*q.shape[:-1], 1), dtype=q.dtype)
    acc = torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
    for j0 in range(0, S, block_size):
        j1 = min(j0 + block_size, S)
        s = q @ k[..., j0:j1, :].transpose(-2, -1) / math.sqrt(q.shape[-1])
        if causal:
            s = s.masked_fill(torch.arange(j0, j1)[None, :] > torch.arange(L)[:, None] + (S - L), float("-inf"))
        m_new = torch.maximum(m, s.amax(-1, keepdim=True))
        safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        p = torch.exp(s - safe)
        alpha = torch.exp(m - safe)
        den, acc, m = den * alpha + p.sum(-1, keepdim=True), acc * alpha + p @ v[..., j0:j1, :], m_new
    return acc / den.clamp_min(1e-300)


def flash_calls_sdpa(q, k, v, *, block_size, causal=False):
    # hands the whole job to torch's fused kernel: no online softmax written
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


# ---- llm.top_p_filter ---------------------------------------------------------------------------


def _p_check(p):
    if not 0 < p <= 1:
        raise ValueError("p must be in (0, 1]")


def top_p_right(logits, p):
    _p_check(p)
    probs = torch.softmax(logits, -1)
    sorted_probs, _ = probs.sort(-1, descending=True)
    cum = sorted_probs.cumsum(-1)
    crossing = (cum < p).sum(-1, keepdim=True).clamp(max=logits.shape[-1] - 1)  # first index with cum >= p
    threshold = sorted_probs.gather(-1, crossing)
    return logits.masked_fill(probs < threshold, float("-inf"))


def top_p_right_rows(logits, p):
    # row by row in float64 with NumPy
    _p_check(p)
    flat = logits.reshape(-1, logits.shape[-1])
    out = flat.clone()
    for r, row in enumerate(flat.double().numpy()):
        e = np.exp(row - row.max())
        probs = e / e.sum()
        order = np.argsort(-probs, kind="stable")
        total = 0.0
        threshold = probs[order[-1]]
        for i in order:
            total += probs[i]
            if total >= p:
                threshold = probs[i]
                break
        out[r, torch.from_numpy(probs < threshold)] = float("-inf")
    return out.reshape(logits.shape)


def top_p_drops_crossing_token(logits, p):
    # keeps the tokens whose cumulative probability stays below p (plus the top one): the token that
    # crosses p is dropped, so the nucleus holds less than p
    _p_check(p)
    probs = torch.softmax(logits, -1)
    sorted_probs, idx = probs.sort(-1, descending=True)
    keep_sorted = sorted_probs.cumsum(-1) < p
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, idx, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_ignores_ties(logits, p):
    # the sorted prefix up to the crossing token: a token tied with it but sorted after it is dropped
    _p_check(p)
    probs = torch.softmax(logits, -1)
    sorted_probs, idx = probs.sort(-1, descending=True)
    cum = sorted_probs.cumsum(-1)
    keep_sorted = (cum - sorted_probs) < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, idx, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_no_check(logits, p):
    # right filter, but p outside (0, 1] is not refused
    probs = torch.softmax(logits, -1)
    sorted_probs, _ = probs.sort(-1, descending=True)
    cum = sorted_probs.cumsum(-1)
    crossing = (cum < p).sum(-1, keepdim=True).clamp(max=logits.shape[-1] - 1)
    return logits.masked_fill(probs < sorted_probs.gather(-1, crossing), float("-inf"))


def top_p_unsorted_cumsum(logits, p):
    # the cumulative sum in vocabulary order, without sorting by probability first
    _p_check(p)
    probs = torch.softmax(logits, -1)
    keep = (probs.cumsum(-1) - probs) < p
    return logits.masked_fill(~keep, float("-inf"))


# ---- llm.topk_router ----------------------------------------------------------------------------


def _router_check(logits, k, capacity):
    if logits.ndim != 2:
        raise ValueError("logits must be (T, E)")
    if not isinstance(k, int) or not 1 <= k <= logits.shape[-1]:
        raise ValueError("k must be in 1..E")
    if not isinstance(capacity, int) or capacity < 0:
        raise ValueError("capacity must be an int >= 0")


def _top(logits, k):
    probs = torch.softmax(logits.float(), -1)
    top, experts = torch.sort(probs, dim=-1, descending=True, stable=True)
    top, experts = top[:, :k], experts[:, :k]
    return experts, (top if k == 1 else top / top.sum(-1, keepdim=True))


def router_right(logits, k, capacity):
    _router_check(logits, k, capacity)
    experts, gates = _top(logits, k)
    T, E = logits.shape
    flat = experts.t().reshape(-1)  # choice rank first, then token index
    onehot = F.one_hot(flat, E)
    position = (onehot.cumsum(0) * onehot).sum(-1) - 1  # this assignment's place in its expert's queue
    kept = (position < capacity).reshape(k, T).t()
    return experts, gates * kept, kept


def router_right_loops(logits, k, capacity):
    _router_check(logits, k, capacity)
    T, E = logits.shape
    probs = torch.softmax(logits.to(torch.float32), dim=1)
    experts = torch.zeros(T, k, dtype=torch.int64)
    gates = torch.zeros(T, k, dtype=torch.float32)
    for t in range(T):
        order = sorted(range(E), key=lambda e: (-float(probs[t, e]), e))[:k]
        experts[t] = torch.tensor(order)
        chosen = probs[t, order]
        gates[t] = chosen if k == 1 else chosen / chosen.sum()
    kept = torch.zeros(T, k, dtype=torch.bool)
    load = [0] * E
    for r in range(k):
        for t in range(T):
            e = int(experts[t, r])
            if load[e] < capacity:
                load[e] += 1
                kept[t, r] = True
    return experts, torch.where(kept, gates, torch.zeros_like(gates)), kept


def router_renormalises_after_drop(logits, k, capacity):
    # the kept gates of a token divided again by their sum after dropping: a half-dropped token gets 1
    experts, gates, kept = router_right(logits, k, capacity)
    total = gates.sum(-1, keepdim=True)
    return experts, torch.where(total > 0, gates / total.clamp_min(1e-30), gates), kept


def router_token_order(logits, k, capacity):
    # capacity filled token by token (token 0's choices, then token 1's ...): a late token's first choice
    # loses its place to an early token's second choice
    _router_check(logits, k, capacity)
    experts, gates = _top(logits, k)
    T, E = logits.shape
    flat = experts.reshape(-1)
    onehot = F.one_hot(flat, E)
    kept = ((onehot.cumsum(0) * onehot).sum(-1) - 1 < capacity).reshape(T, k)
    return experts, gates * kept, kept


def router_softmax_over_topk(logits, k, capacity):
    # softmax over the chosen logits, also for k = 1: Switch's gate becomes 1 and carries no signal
    _router_check(logits, k, capacity)
    experts, _ = _top(logits, k)
    gates = torch.softmax(logits.float().gather(-1, experts), -1)
    flat = experts.t().reshape(-1)
    onehot = F.one_hot(flat, logits.shape[1])
    kept = ((onehot.cumsum(0) * onehot).sum(-1) - 1 < capacity).reshape(k, -1).t()
    return experts, gates * kept, kept


def router_dropped_gate_kept(logits, k, capacity):
    # marks the dropped assignments but leaves their gates as they were
    experts, _, kept = router_right(logits, k, capacity)
    return experts, _top(logits, k)[1], kept


WRONG = {
    "llm.bpe_merges": [bpe_non_overlapping_counts, bpe_first_occurrence_ties, bpe_byte_string_ties,
                       bpe_characters_not_bytes, bpe_merges_right_to_left],
    "llm.apply_rope": [rope_interleaved, rope_wrong_exponent, rope_mixed_conventions, rope_in_input_dtype,
                       rope_additive],
    "llm.attention_step_with_kv_cache": [kv_top_left_causal, kv_no_mask, kv_mutates_cache, kv_new_keys_first,
                                         kv_scale_by_value_dim],
    "llm.online_softmax_attention": [flash_no_rescale, flash_full_scores, flash_max_first, flash_drops_last_block,
                                     flash_bottom_right_causal, flash_calls_sdpa],
    "llm.top_p_filter": [top_p_drops_crossing_token, top_p_ignores_ties, top_p_no_check, top_p_unsorted_cumsum],
    "llm.topk_router": [router_renormalises_after_drop, router_token_order, router_softmax_over_topk,
                        router_dropped_gate_kept],
}
RIGHT = {
    "llm.bpe_merges": [bpe_right, bpe_right_counter],
    "llm.apply_rope": [rope_right_rotate_half, rope_right_complex],
    "llm.attention_step_with_kv_cache": [kv_right, kv_right_positions],
    "llm.online_softmax_attention": [flash_right, flash_right_logsumexp],
    "llm.top_p_filter": [top_p_right, top_p_right_rows],
    "llm.topk_router": [router_right, router_right_loops],
}
