"""Exercises of the llm topic (lesson 14). References: ``bigtrain_lab.llm`` (bpe, positions, kv_cache, flash,
decoding, moe), each checked there against a library or a hand example.

- ``llm.bpe_merges(text, num_merges)``: byte-level BPE on ``text.encode("utf-8")`` as one sequence; the merged
  pairs as ``(bytes, bytes)``, compared exactly. The cases separate overlapping from non-overlapping pair
  counts (``"aaa"`` holds ``(a, a)`` twice), ties broken by the smallest ``(left_id, right_id)`` from ties
  broken by first occurrence or by the byte strings (a merged token's id ``256 + i`` is larger than any
  byte's), bytes from characters (UTF-8 text), left-to-right replacement from right-to-left, and the early
  stop. TypeError for a non-str text, ValueError for a negative or non-int ``num_merges``.
- ``llm.apply_rope(x, positions, *, base=10000.0)``: the half-split (GPT-NeoX / Llama) rotation, compared
  within rounding (float32 / float64; bfloat16 within its own precision, computed in float32). Some cases
  carry a probe: the runner also rotates a q at positions ``m`` and a k at ``n``, then both at ``m + s`` and
  ``n + s``, and requires the candidate's ``q . k`` to stay the same (relative positions only). The
  interleaved GPT-J layout, ``base ** (-i / D)``, rotate-half with interleaved frequencies (no rotation, not
  shift-invariant), an added sinusoidal code and angles computed in bfloat16 all fail.
- ``llm.attention_step_with_kv_cache(q_new, k_new, v_new, cache)``: a runner feeds a sequence in steps
  (a prompt, then single tokens or chunks), handing each step the cache the candidate returned the step
  before, and requires every step's output to equal causal SDPA over the whole sequence so far (rows of
  the new tokens) and the final cache to be ``cat(old, new)``; a cache handed in must be left as it was
  (its dict and its tensors). ``is_causal=True`` on the new queries (top-left: a new token sees only the
  first keys), no mask, a cache appended in place, new keys before old ones and 1/sqrt(Ev) all fail.
- ``llm.online_softmax_attention(q, k, v, *, block_size, causal=False)``: equal to SDPA (top-left causal or
  not) within rounding, block sizes that do and do not divide S, 1 and larger than S; ValueError for
  ``block_size < 1``. The runner calls the candidate under a ``TorchDispatchMode`` (``probe.attention_trace``,
  run where the candidate lives: the largest tensor any operator creates, as
  ``bigtrain_lab.llm.flash.LargestNewTensor`` measures it) and, on cases whose q / k / v / output and
  ``(L, block)`` pieces are far smaller than ``L * S``, rejects any operator that creates a tensor of
  ``L * S`` elements or more (the score matrix of one batch-head), and any call of torch's fused SDPA. Full
  scores, a first pass for the row max, no rescaling of the accumulator, a dropped last block and a
  bottom-right causal mask all fail.
- ``llm.top_p_filter(logits, p)``: the logits with every token outside the nucleus at ``-inf``: the kept set
  must be exactly the reference's, the kept values the input's. Cases are drawn so that no cumulative sum
  comes within 1e-4 of ``p`` and no probability near the threshold within 1e-5 (relative) of it unless tied
  exactly, so float32 and float64 answers agree; ties at the boundary, ``p = 1``, ``-inf`` inputs and
  batch dims are named cases. ValueError unless ``0 < p <= 1``.
- ``llm.topk_router(logits, k, capacity)``: ``(experts, gates, kept)``: experts and kept exact, gates within
  float32 rounding. Capacity is served by choice rank first, then token index; gates are Switch's
  probability for k = 1 and renormalised over the top k for k >= 2, zero where dropped and not
  renormalised after dropping. ValueError for k outside 1..E, a negative or non-int capacity, non-2-D logits.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bigtrain_lab.grading import probe
from bigtrain_lab.grading.exercises.optim import tensor_close
from bigtrain_lab.grading.registry import Case, Exercise, InputModified, register
from bigtrain_lab.grading.sandbox import clone_inputs, describe, plain, same_value
from bigtrain_lab.llm.bpe import bpe_merges
from bigtrain_lab.llm.decoding import top_p_filter
from bigtrain_lab.llm.flash import online_softmax_attention
from bigtrain_lab.llm.kv_cache import attention_step_with_kv_cache
from bigtrain_lab.llm.moe import topk_router
from bigtrain_lab.llm.positions import apply_rope

SECOND_NOTEBOOK = "notebooks/14_llm2_decoding_moe_stability.ipynb"

# ---- llm.bpe_merges -----------------------------------------------------------------------------


def _show_pair(pair: Any) -> str:
    return describe(tuple(pair) if isinstance(pair, list) else pair, 60)


def _merges_compare(got: Any, expected: list[tuple[bytes, bytes]]) -> str | None:
    if not isinstance(got, list | tuple):
        return f"expected a list of merged pairs [(b'a', b'b'), ...], got {type(got).__name__}: {describe(got, 80)}"
    for i, pair in enumerate(got):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            return f"merge #{i + 1} is {describe(pair, 60)}: each merge is a pair (left, right) of bytes"
        if not all(isinstance(part, bytes) for part in pair):
            return (f"merge #{i + 1} is {describe(pair, 60)}: each side is a bytes object such as b'a' or b'\\xc3' "
                    "(byte-level BPE works on text.encode('utf-8'), not on characters or ids)")
    for i, (mine, theirs) in enumerate(zip(got, expected, strict=False)):
        if tuple(mine) != theirs:
            return (f"merge #{i + 1} is {_show_pair(mine)}, expected {theirs!r} (merges before it agree)"
                    if i else f"the first merge is {_show_pair(mine)}, expected {theirs!r}")
    if len(got) != len(expected):
        more = "merges stop when fewer than two tokens are left" if len(got) > len(expected) else \
            "there were pairs left to merge"
        return f"returned {len(got)} merges, expected {len(expected)} ({more})"
    return None


def _words_text(rng: np.random.Generator, words: Sequence[str], n: int) -> str:
    return " ".join(str(w) for w in rng.choice(list(words), size=n))


def _bpe_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("an empty text: no merges", ("", 5)),
        Case("one character: no pair to merge", ("a", 3)),
        Case("num_merges 0", ("hello world", 0)),
        Case("'aaab', 2 merges: 'aaa' holds (a, a) twice; merged left to right it leaves (aa, a, b)", ("aaab", 2)),
        Case("'aaa bcbc': (a, a) counts 2 with overlapping windows, tying (b, c)", ("aaa bcbc", 3)),
        Case("'zyzyabab': a tie goes to the smallest ids (a, b), not the first pair seen (z, y)", ("zyzyabab", 3)),
        Case("'abcabczyzyab': after (a, b) becomes token 256, (256, c) and (z, y) tie: ids, not byte strings",
             ("abcabczyzyab", 3)),
        Case("UTF-8 text: 'é' and '你' are several bytes each", ("café café naïve 你好你好 über", 8)),
        Case("more merges than the text allows: stops when one token is left", ("abab", 10)),
        Case("a sentence, 15 merges", ("the cat sat on the mat; the cat ate the rat", 15)),
        Case("bytes instead of str: TypeError", (b"abc", 2), raises=TypeError),
        Case("num_merges -1: ValueError", ("abc", -1), raises=ValueError),
        Case("num_merges 2.5: ValueError", ("abc", 2.5), raises=ValueError),
    ]
    vocabularies = [["low", "lower", "newest", "widest", "new"], ["aa", "ab", "ba", "aaa", "b"],
                    ["ça", "été", "où", "à", "naïve"], ["x", "yx", "xy", "yyx", "xxy"]]
    for i in range(4):
        words = vocabularies[int(rng.integers(len(vocabularies)))]
        n_words, merges = int(rng.integers(5, 60)), int(rng.integers(3, 30))
        text = _words_text(rng, words, n_words)
        cases.append(Case(f"random #{i + 1}: {n_words} words from {words}, {merges} merges", (text, merges)))
    return cases


register(Exercise(
    id="llm.bpe_merges",
    reference=bpe_merges,
    make_cases=_bpe_cases,
    compare=_merges_compare,
    hint="TypeError unless text is a str; ValueError unless num_merges is an int >= 0. ids = list(text.encode("
         "'utf-8')); vocab = {i: bytes([i]) for i in range(256)}. For i in range(num_merges): stop if len(ids) < 2; "
         "counts = Counter(zip(ids, ids[1:])) (overlapping windows); pair = min(counts, key=lambda p: (-counts[p], "
         "p)) (ties: smallest ids, not first seen); replace pair by 256 + i scanning left to right (skip both "
         "tokens of a match); vocab[256 + i] = vocab[a] + vocab[b]; append (vocab[a], vocab[b]).",
    section="byte-level-bpe",
))


# ---- llm.apply_rope -----------------------------------------------------------------------------

#: The candidate's q . k may move by this much (relative to max |q . k|) when both positions shift.
SHIFT_TOLERANCE = 1e-6
_ROPE_CLOSE = tensor_close("the rotated x", {torch.float64: (1e-9, 1e-9), torch.float32: (1e-5, 1e-5),
                                            torch.bfloat16: (2e-2, 2e-2), torch.float16: (2e-3, 2e-3)})


@dataclass(frozen=True)
class Rotated:
    """The candidate's rotation of ``x``, and how much its ``q . k`` moved when both positions shifted."""

    out: Any
    shift_gap: float  # max |q_m . k_n - q_{m+s} . k_{n+s}| / max(1, max |q_m . k_n|); nan if not measured
    shift: int
    problem: str = ""

    def __repr__(self) -> str:
        if self.problem:
            return self.problem
        return f"{describe(self.out, 200)}; q . k moved by {self.shift_gap:.2g} (relative) when both positions " \
               f"shifted by {self.shift}"


def _rotated_problem(out: Any, like: torch.Tensor) -> str:
    if not isinstance(out, torch.Tensor):
        return f"returned {type(out).__name__} ({describe(out, 60)}): return a tensor of x's shape"
    if tuple(out.shape) != tuple(like.shape):
        return f"returned shape {tuple(out.shape)}, expected {tuple(like.shape)} (x's shape)"
    return ""


def run_rope(fn: Callable[..., Any], x: torch.Tensor, positions: torch.Tensor, *, base: float = 10000.0,
             probe_pairs: dict | None = None) -> Any:
    """``fn(x, positions, base=base)``; with ``probe_pairs`` ({"q", "k": (P, D), "m", "n": (P,), "s": int}) a
    ``Rotated`` that also holds how far the candidate's row-wise ``q . k`` moved when m and n both shift by s."""
    out = fn(x, positions, base=base)
    if probe_pairs is None:
        return out
    out = plain(out)  # read as data, as the comparator would (a tensor subclass's methods are not consulted)
    q, k, m, n, s = (probe_pairs[key] for key in ("q", "k", "m", "n", "s"))
    rotated = [plain(fn(t, pos, base=base)) for t, pos in ((q, m), (k, n), (q, m + s), (k, n + s))]
    for value in (out, *rotated):
        if problem := _rotated_problem(value, x if value is out else q):
            return Rotated(out, math.nan, s, problem)
    before = (rotated[0].double() * rotated[1].double()).sum(-1)
    after = (rotated[2].double() * rotated[3].double()).sum(-1)
    gap = float((before - after).abs().max()) / max(1.0, float(before.abs().max()))
    return Rotated(out, gap, s)


def _rope_compare(got: Any, expected: Any) -> str | None:
    if isinstance(expected, Rotated):
        if not isinstance(got, Rotated):
            return f"unexpected result {describe(got, 80)}"
        if got.problem:
            return got.problem
        if not got.shift_gap <= SHIFT_TOLERANCE:
            return (f"q . k is not a function of the position difference alone: rotating q at m and k at n, then "
                    f"both {got.shift} positions later, changed q . k by {got.shift_gap:.2g} (relative). RoPE turns "
                    "each pair (x_i, x_{i+D/2}) by ONE angle pos * theta_i (a rotation), so only m - n remains")
        return _ROPE_CLOSE(got.out, expected.out)
    return _ROPE_CLOSE(got, expected)


def _rope_probe(rng: np.random.Generator, D: int, pairs: int = 6) -> dict:
    return {"q": torch.tensor(rng.normal(0, 1, (pairs, D))), "k": torch.tensor(rng.normal(0, 1, (pairs, D))),
            "m": torch.tensor(rng.integers(0, 500, pairs)), "n": torch.tensor(rng.integers(0, 500, pairs)),
            "s": int(rng.integers(1, 3000))}


def _rope_cases(rng: np.random.Generator) -> list[Case]:
    def x_of(shape: Sequence[int], dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.tensor(rng.normal(0, 1, tuple(shape))).to(dtype)

    def case(label: str, shape: Sequence[int], positions: Any, *, dtype: torch.dtype = torch.float64,
             base: float | None = None, probe_pairs: bool = False, raises: type[BaseException] | None = None) -> Case:
        kwargs: dict[str, Any] = {} if base is None else {"base": base}
        if probe_pairs:
            kwargs["probe_pairs"] = _rope_probe(rng, shape[-1])
        return Case(label, (x_of(shape, dtype), positions), kwargs, raises)

    cases = [
        case("one head, T=4, D=8, positions 0..3", (4, 8), torch.arange(4), probe_pairs=True),
        case("position 0 everywhere: the identity", (3, 6), torch.zeros(3, dtype=torch.int64)),
        case("batch and heads (2, 3), T=5, D=16", (2, 3, 5, 16), torch.arange(5)),
        case("positions 100..105 (a decoding step further on)", (2, 6, 8), torch.arange(100, 106), probe_pairs=True),
        case("D=2: a single pair", (5, 2), torch.arange(5)),
        case("base 500000 (Llama 3)", (4, 32), torch.arange(4), base=500000.0, probe_pairs=True),
        case("float positions 0, 0.25, 0.5, ... (position interpolation)", (6, 8), torch.arange(6) * 0.25),
        case("float32 x, float32 result", (2, 7, 12), torch.arange(7), dtype=torch.float32),
        case("bfloat16 x at positions 300..307: angles in float32, the result in bfloat16", (8, 16),
             torch.arange(300, 308), dtype=torch.bfloat16),
        case("positions up to 50,000 (float64)", (5, 64), torch.tensor([0, 1, 4096, 32767, 50000])),
        case("odd D=7: ValueError", (3, 7), torch.arange(3), raises=ValueError),
        case("4 positions for T=3: ValueError", (3, 8), torch.arange(4), raises=ValueError),
    ]
    for i in range(4):
        T, D = int(rng.integers(1, 10)), 2 * int(rng.integers(1, 33))
        batch = [(), (2,), (2, 2)][int(rng.integers(3))]
        start = int(rng.integers(0, 2000))
        dtype = torch.float32 if i == 3 else torch.float64
        positions = torch.arange(start, start + T) if dtype == torch.float64 else torch.arange(T)
        cases.append(case(f"random #{i + 1}: x {(*batch, T, D)} {str(dtype).removeprefix('torch.')}, positions "
                          f"{int(positions[0])}..{int(positions[-1])}, with a shift probe", (*batch, T, D), positions,
                          dtype=dtype, probe_pairs=True))
    return cases


register(Exercise(
    id="llm.apply_rope",
    reference=apply_rope,
    make_cases=_rope_cases,
    compare=_rope_compare,
    run=run_rope,
    hint="ValueError for an odd D or len(positions) != T. Work in float32 (float64 if x is): inv_freq = base ** "
         "(-torch.arange(0, D, 2) / D) (D/2 frequencies); ang = positions[:, None] * inv_freq (T, D/2); x1, x2 = "
         "x[..., :D//2], x[..., D//2:] (half-split pairs, not x[0::2], x[1::2]); out = cat(x1 cos - x2 sin, "
         "x2 cos + x1 sin) in x's dtype.",
    section="rope",
))


# ---- llm.attention_step_with_kv_cache -------------------------------------------------------------

#: Roundings behind each output entry: a dot product over E <= 32, a softmax and a weighted sum over <= 40 keys.
KV_ROUNDING_STEPS = 4 * (32 + 40)
_KV_OUT = tensor_close("the output of the new tokens", steps=KV_ROUNDING_STEPS)
_KV_K = tensor_close("the returned cache['k']", steps=1)
_KV_V = tensor_close("the returned cache['v']", steps=1)


@dataclass(frozen=True)
class Decoded:
    """What the runner saw over all steps: every step's output concatenated and the last cache."""

    problem: str
    out: Any = None
    k: Any = None
    v: Any = None
    steps: tuple[int, ...] = ()

    def __repr__(self) -> str:
        if self.problem:
            return self.problem
        return (f"steps of {list(self.steps)} tokens: outputs {describe(self.out, 160)}; cache['k'] of shape "
                f"{tuple(self.k.shape)}, cache['v'] of shape {tuple(self.v.shape)}")


def _step_problem(result: Any, step: int, n_new: int, past: int, q: torch.Tensor, v: torch.Tensor) -> str:
    where = f"step {step} ({n_new} new token{'s' if n_new > 1 else ''} after {past} cached)"
    if not isinstance(result, tuple | list) or len(result) != 2:
        return f"{where}: expected a pair (out, new_cache), got {describe(result, 80)}"
    out, cache = result
    shape = (*q.shape[:-2], n_new, v.shape[-1])
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return f"{where}: out should be a tensor of shape {shape} (..., T_new, Ev), got {got}"
    if not isinstance(cache, dict) or not {"k", "v"} <= set(cache):
        return f"{where}: new_cache should be a dict {{'k': ..., 'v': ...}}, got {describe(cache, 80)}"
    for key in ("k", "v"):
        t = cache[key]
        if not isinstance(t, torch.Tensor) or t.dim() < 2:
            return f"{where}: new_cache[{key!r}] should be a tensor (..., S, E), got {describe(t, 60)}"
        if t.shape[-2] != past + n_new:
            return (f"{where}: new_cache[{key!r}] holds {t.shape[-2]} positions, expected {past + n_new} (the old "
                    "cache followed by the new keys / values, along dim -2)")
    return ""


def run_kv_steps(fn: Callable[..., Any], q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: dict | None, *,
                 steps: Sequence[int]) -> Decoded:
    """Feed the new tokens ``q, k, v (..., T, E)`` in chunks of ``steps`` tokens, each call getting the cache the
    previous one returned (``cache`` for the first); InputModified if a call changed the cache it was handed."""
    outs, start = [], 0
    for i, n_new in enumerate(steps):
        past = 0 if cache is None else cache["k"].shape[-2]
        kept = None if cache is None else clone_inputs(dict(cache))
        result = plain(fn(q[..., start:start + n_new, :], k[..., start:start + n_new, :],
                          v[..., start:start + n_new, :], cache))
        if cache is not None and not same_value(dict(cache), kept):
            raise InputModified(f"step {i + 1} changed the cache it was handed (its dict or its tensors): build a "
                                "new dict {'k': torch.cat((cache['k'], k_new), -2), 'v': ...} and return it")
        if problem := _step_problem(result, i + 1, n_new, past, q, v):
            return Decoded(problem)
        outs.append(result[0])
        cache = result[1]
        start += n_new
    return Decoded("", torch.cat(outs, -2), cache["k"], cache["v"], tuple(steps))


def _kv_compare(got: Any, expected: Decoded) -> str | None:
    if not isinstance(got, Decoded):
        return f"unexpected result {describe(got, 80)}"
    if got.problem:
        return got.problem
    if reason := _KV_OUT(got.out, expected.out):
        return reason + " (new token t sits at position S + t and sees keys 0 .. S + t, scale 1 / sqrt(E))"
    return _KV_K(got.k, expected.k) or _KV_V(got.v, expected.v)


def _kv_cases(rng: np.random.Generator) -> list[Case]:
    def draw(*shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.tensor(rng.normal(0, 1, shape)).to(dtype)

    def case(label: str, batch: tuple, steps: Sequence[int], past: int = 0, E: int = 8, Ev: int | None = None,
             dtype: torch.dtype = torch.float64) -> Case:
        Ev = E if Ev is None else Ev
        T = sum(steps)
        cache = {"k": draw(*batch, past, E, dtype=dtype), "v": draw(*batch, past, Ev, dtype=dtype)} if past else None
        return Case(label, (draw(*batch, T, E, dtype=dtype), draw(*batch, T, E, dtype=dtype),
                            draw(*batch, T, Ev, dtype=dtype), cache), {"steps": list(steps)})

    cases = [
        case("a prompt of 5 tokens, no cache: causal attention over the prompt", (2,), [5]),
        case("one new token after 6 cached ones: it sees all 7 keys", (2,), [1], past=6),
        case("token by token from an empty cache, 6 steps", (), [1] * 6),
        case("a prompt of 4, then 3 single tokens", (1, 2), [4, 1, 1, 1]),
        case("chunks of 3 after 5 cached tokens: a chunk's queries see the cache and the earlier new keys", (2,),
             [3, 3], past=5),
        case("batch 2 and 4 heads", (2, 4), [3, 1, 2], past=2),
        case("value dim differs from the key dim (E=8, Ev=3)", (2,), [2, 1, 1], past=3, E=8, Ev=3),
        case("float32", (2, 2), [4, 1, 1], dtype=torch.float32),
        case("no batch dims (T, E), E=32", (), [3, 2], past=4, E=32),
        case("a long cache (30) and a chunk of 8", (1,), [8], past=30, E=4),
    ]
    for i in range(4):
        batch = [(), (2,), (2, 3)][int(rng.integers(3))]
        steps = [int(s) for s in rng.integers(1, 5, int(rng.integers(1, 5)))]
        past, E, Ev = int(rng.integers(0, 10)), int(rng.choice([4, 8, 16])), int(rng.choice([4, 8, 16]))
        cases.append(case(f"random #{i + 1}: batch {batch}, {past} cached, steps of {steps}, E={E}, Ev={Ev}", batch,
                          steps, past=past, E=E, Ev=Ev))
    return cases


register(Exercise(
    id="llm.attention_step_with_kv_cache",
    reference=attention_step_with_kv_cache,
    make_cases=_kv_cases,
    compare=_kv_compare,
    run=run_kv_steps,
    hint="k = torch.cat((cache['k'], k_new), -2) (k_new alone when cache is None), v likewise; S = k.shape[-2] - "
         "T_new cached tokens. New query t is at position S + t: allowed = torch.arange(S + T_new)[None, :] <= "
         "(S + torch.arange(T_new))[:, None] (bottom-right aligned; is_causal=True would align it top-left); "
         "scores = q_new @ k.transpose(-2, -1) / sqrt(E), masked to -inf, softmax, @ v. Return (out, {'k': k, "
         "'v': v}): a NEW dict; never write into the cache you were handed.",
    section="kv-cache",
))


# ---- llm.online_softmax_attention ---------------------------------------------------------------

#: A dot product over E <= 16 for the scores, a softmax over S <= 100 keys, a weighted sum, and one rescaling
#: per block: 4 * (E + S) roundings cover them (as for lesson 5's attention exercise).
FLASH_ROUNDING_STEPS = 4 * (16 + 100)
_FLASH_CLOSE = tensor_close("the attention output", steps=FLASH_ROUNDING_STEPS)
_FUSED = ("_scaled_dot_product", "scaled_dot_product_attention")


@dataclass(frozen=True)
class Attended:
    """The candidate's output and the largest tensor any operator created while it ran."""

    out: Any
    numel: int
    shape: tuple
    op: str
    fused: str  # the fused attention operator it called, '' if none
    limit: int | None  # L * S: a tensor this large is a whole score matrix (None: not checked on this case)

    def __repr__(self) -> str:
        return f"{describe(self.out, 200)}; the largest tensor created: {self.numel} elements, shape {self.shape} " \
               f"({self.op})"


def run_online_softmax(fn: Callable[..., Any], q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                       block_size: Any, causal: bool = False, score_limit: int | None = None) -> Attended:
    """``fn(q, k, v, block_size=, causal=)`` traced: the output with the largest tensor it created."""
    out, numel, shape, op, ops = probe.attention_trace(fn, (q, k, v), {"block_size": block_size, "causal": causal})
    fused = next((name for name in ops if name.startswith(_FUSED)), "")
    return Attended(plain(out), int(numel), tuple(shape), str(op), fused, score_limit)


def _attended_compare(got: Any, expected: Attended) -> str | None:
    if not isinstance(got, Attended):
        return f"unexpected result {describe(got, 80)}"
    if got.fused:
        return (f"called torch's fused attention ({got.fused}): write the online softmax yourself (a loop over "
                "key blocks keeping the running max, normaliser and unnormalised output)")
    if got.limit is not None and got.numel >= got.limit:
        return (f"an operator ({got.op}) created a tensor of shape {got.shape}, {got.numel} elements: as large as "
                f"the whole (L, S) score matrix ({got.limit} elements). Only an (L, block_size) block of scores may "
                "exist at a time: loop over key blocks, keep the running max m, normaliser l and output acc")
    return _FLASH_CLOSE(got.out, expected.out)


def _score_limit(batch: tuple, L: int, S: int, E: int, Ev: int, block: int) -> int | None:
    """L * S when everything a right answer creates (q / k / v / output copies and an (L, block) block of
    scores per batch-head) stays below it: then only a score matrix reaches it; else None (not checked)."""
    n = math.prod(batch)
    largest = n * max(L * min(block, S), S * E, L * max(E, Ev), S * Ev)
    return L * S if 2 * largest <= L * S else None


@functools.cache
def _warm_up_tracing() -> None:
    """A first operator under a ``TorchDispatchMode`` imports ``torch._dynamo`` and sympy (seconds): done
    once, when the cases are drawn, so that it does not count against the first candidate call's time limit."""
    x = torch.zeros(1, 2, 2)
    probe.attention_trace(online_softmax_attention, (x, x, x), {"block_size": 1, "causal": True})


def _flash_cases(rng: np.random.Generator) -> list[Case]:
    _warm_up_tracing()
    def draw(*shape: int, dtype: torch.dtype, scale: float = 1.0) -> torch.Tensor:
        return torch.tensor(rng.normal(0, scale, shape)).to(dtype)

    def case(label: str, batch: tuple, L: int, S: int, block: Any, *, E: int = 8, Ev: int | None = None,
             causal: bool = False, dtype: torch.dtype = torch.float64, scale: float = 1.0,
             raises: type[BaseException] | None = None) -> Case:
        Ev = E if Ev is None else Ev
        limit = _score_limit(batch, L, S, E, Ev, block) if isinstance(block, int) and block >= 1 else None
        kwargs = {"block_size": block, "causal": causal, "score_limit": limit}
        if limit is not None:
            label += f" (no tensor of L * S = {limit} elements)"
        return Case(label, (draw(*batch, L, E, dtype=dtype, scale=scale), draw(*batch, S, E, dtype=dtype, scale=scale),
                            draw(*batch, S, Ev, dtype=dtype)), kwargs, raises)

    cases = [
        case("L = S = 64, block 16 (divides S)", (), 64, 64, 16),
        case("causal, L = S = 64, block 16", (), 64, 64, 16, causal=True),
        case("block 10 does not divide S = 64: the last block has 4 keys", (), 64, 64, 10, causal=True),
        case("block 1: one key at a time", (), 32, 24, 1),
        case("block larger than S: one block", (2,), 6, 5, 16, causal=True),
        case("cross-attention, L = 40 queries over S = 96 keys, block 24", (2,), 40, 96, 24),
        case("causal with L < S (top-left, like SDPA): query i sees keys 0..i", (), 32, 80, 16, causal=True),
        case("causal with L > S: the last queries see every key", (), 80, 32, 7, causal=True),
        case("batch 2 and 2 heads, E = 4, block 8", (2, 2), 64, 64, 8, E=4, causal=True),
        case("value dim differs from the key dim (Ev = 3)", (), 40, 60, 12, E=8, Ev=3),
        case("float32, causal", (), 64, 64, 16, dtype=torch.float32, causal=True),
        case("large scores: every new block raises the running max", (), 48, 64, 8, scale=3.0),
        case("a single query (L = 1)", (2,), 1, 20, 6),
        case("block_size 0: ValueError", (), 8, 8, 0, raises=ValueError),
    ]
    for i in range(4):
        batch = [(), (2,)][int(rng.integers(2))]
        L, S = (int(x) for x in rng.integers(24, 97, 2))
        block = int(rng.integers(1, S + 6))
        causal = bool(rng.random() < 0.5)
        cases.append(case(f"random #{i + 1}: batch {batch}, L = {L}, S = {S}, block {block}"
                          + (", causal" if causal else ""), batch, L, S, block, E=int(rng.choice([4, 8])),
                          causal=causal))
    return cases


register(Exercise(
    id="llm.online_softmax_attention",
    reference=online_softmax_attention,
    make_cases=_flash_cases,
    compare=_attended_compare,
    run=run_online_softmax,
    hint="ValueError for block_size < 1. m = full((..., L, 1), -inf); l = zeros((..., L, 1)); acc = zeros((..., L, "
         "Ev)). For j in range(0, S, block_size): s = q @ k[..., j:j+block_size, :].mT / sqrt(E) (..., L, block); "
         "if causal: s = s.masked_fill(arange(j, j + s.shape[-1]) > arange(L)[:, None], -inf) (top-left, like SDPA); "
         "m_new = max(m, s.amax(-1, keepdim=True)); c = exp(m - m_new); p = exp(s - m_new); l = l * c + p.sum(-1, "
         "keepdim=True); acc = acc * c + p @ v_block; m = m_new. Return acc / l. Never build the (L, S) scores.",
    section="memory-efficient-attention",
    time_limit=10.0,
))


# ---- llm.top_p_filter ---------------------------------------------------------------------------

#: A drawn case is redrawn while a cumulative sum comes within this of p (float32 / float64 answers agree).
CUMSUM_GAP = 1e-4
#: ... or a probability near the threshold is within this (relative) of it without being tied exactly.
PROB_GAP = 1e-5


def _nucleus_compare(got: Any, expected: torch.Tensor) -> str | None:
    shape = tuple(expected.shape)
    if not isinstance(got, torch.Tensor):
        return f"expected the filtered logits as a torch.Tensor of shape {shape}, got {type(got).__name__}: " \
               f"{describe(got, 80)}"
    if tuple(got.shape) != shape:
        return f"the filtered logits have shape {tuple(got.shape)}, expected {shape} (the input's shape)"
    if got.dtype != expected.dtype:
        return f"the filtered logits have dtype {got.dtype}, expected {expected.dtype} (the input's dtype)"
    dropped = expected == float("-inf")
    got_dropped = got == float("-inf")
    if bool(torch.isnan(got).any()):
        return "the filtered logits contain NaN"
    very_negative = ~got_dropped & dropped & (got < -1e4)
    if bool(very_negative.any()):
        return (f"a dropped token holds {float(got[very_negative][0]):.3g}: set the tokens outside the nucleus to "
                "float('-inf'), not to a large negative number")
    if not torch.equal(dropped, got_dropped):
        flat_e, flat_g = dropped.reshape(-1, shape[-1]), got_dropped.reshape(-1, shape[-1])
        row = int((flat_e != flat_g).any(-1).nonzero()[0])
        kept_e, kept_g = (~flat_e[row]).nonzero().flatten().tolist(), (~flat_g[row]).nonzero().flatten().tolist()
        where = f" in row {row}" if len(flat_e) > 1 else ""
        return (f"keeps tokens {describe(kept_g, 120)}{where}, expected {describe(kept_e, 120)}: the nucleus is every "
                "token whose probability is >= that of the token at which the sorted cumulative sum reaches p")
    kept = ~dropped
    if not torch.allclose(got[kept].double(), expected[kept].double(), rtol=1e-6, atol=0.0):
        return "the kept tokens' values changed: keep the logits of the tokens in the nucleus as they are"
    return None


def _awkward(probs: np.ndarray, p: float) -> bool:
    """Would float32 / float64 answers disagree on this row? A cumulative sum near p, or a probability
    near the threshold's without being equal to it."""
    s = np.sort(probs)[::-1]
    cum = np.cumsum(s)
    if len(s) > 1 and np.min(np.abs(cum[:-1] - p)) < CUMSUM_GAP:  # the last token is the threshold either way
        return True
    threshold = s[min(int(np.sum(cum < p)), len(s) - 1)]
    near = np.abs(probs - threshold)
    return bool(np.any((near > 0) & (near < PROB_GAP * threshold)))


def _softmax64(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _draw_logits(rng: np.random.Generator, shape: Sequence[int], p: float, *, scale: float = 1.0, ties: int = 0,
                 masked: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Logits of ``shape`` (ties: that many extra tokens per row copy another's logit; masked: every
    ``masked``-th token is -inf) that no answer rounds to a different nucleus."""
    while True:
        x = rng.normal(0, scale, tuple(shape))
        flat = x.reshape(-1, shape[-1])
        for row in flat:
            for _ in range(ties):
                i, j = rng.choice(shape[-1], 2, replace=False)
                row[j] = row[i]
        if masked:
            x[..., ::masked] = -np.inf
        t = torch.tensor(x).to(dtype)
        rows = t.double().reshape(-1, shape[-1]).numpy()
        if not any(_awkward(_softmax64(row), p) for row in rows):
            return t


def _top_p_cases(rng: np.random.Generator) -> list[Case]:
    def logits_of(values: Sequence[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype)

    masked = _draw_logits(rng, (3, 12), 0.8, masked=3)
    cases = [
        Case("one distribution over 10 tokens, p 0.9", (_draw_logits(rng, (10,), 0.9), 0.9)),
        Case("probabilities 0.5, 0.3, 0.15, 0.05 and p 0.7: the token that crosses p (0.3) is kept",
             (logits_of(np.log([0.5, 0.3, 0.15, 0.05])), 0.7)),
        Case("a tie at the boundary: logits [2, 1, 1, 1, 0, -1], p 0.6 keeps all three tied tokens",
             (logits_of([1.0, 2.0, 1.0, -1.0, 1.0, 0.0]), 0.6)),
        Case("p 0.001: only the top token (never an empty nucleus)", (_draw_logits(rng, (2, 20), 0.001), 0.001)),
        Case("two tokens tie for the top, p 0.1: both kept", (logits_of([0.0, 3.0, -1.0, 3.0, 1.0]), 0.1)),
        Case("p 1.0: every token kept", (_draw_logits(rng, (3, 15), 1.0), 1.0)),
        Case("a batch of 4 rows over 50 tokens, each row its own nucleus", (_draw_logits(rng, (4, 50), 0.75), 0.75)),
        Case("any leading dims: (2, 3, 20)", (_draw_logits(rng, (2, 3, 20), 0.5, scale=2.0), 0.5)),
        Case("float32 logits: float32 back", (_draw_logits(rng, (3, 30), 0.9, dtype=torch.float32), 0.9)),
        Case("-inf logits (after a top-k filter) stay -inf", (masked, 0.8)),
        Case("logits in the thousands: the softmax must not overflow", (_draw_logits(rng, (2, 8), 0.95, scale=1000.0),
                                                                          0.95)),
        Case("p 0: ValueError", (_draw_logits(rng, (5,), 0.5), 0.0), raises=ValueError),
        Case("p 1.5: ValueError", (_draw_logits(rng, (5,), 0.5), 1.5), raises=ValueError),
        Case("p -0.2: ValueError", (_draw_logits(rng, (5,), 0.5), -0.2), raises=ValueError),
    ]
    for i in range(4):
        rows, V = int(rng.integers(1, 6)), int(rng.integers(5, 101))
        p = round(float(rng.uniform(0.05, 0.99)), 3)
        scale, ties = float(rng.choice([0.5, 1.0, 2.0, 4.0])), int(rng.integers(0, 4))
        cases.append(Case(f"random #{i + 1}: {rows} rows over {V} tokens, p {p}, logits of scale {scale:g}"
                          + (f", {ties} tied tokens per row" if ties else ""),
                          (_draw_logits(rng, (rows, V), p, scale=scale, ties=ties), p)))
    return cases


register(Exercise(
    id="llm.top_p_filter",
    reference=top_p_filter,
    make_cases=_top_p_cases,
    compare=_nucleus_compare,
    hint="ValueError unless 0 < p <= 1. probs = softmax(logits, -1); sorted_probs = probs.sort(-1, descending="
         "True).values; cum = sorted_probs.cumsum(-1); first = (cum < p).sum(-1, keepdim=True).clamp(max=V - 1) "
         "(the first token at which cum reaches p: KEPT); threshold = sorted_probs.gather(-1, first); return "
         "logits.masked_fill(probs < threshold, float('-inf')) (every token tied with the threshold is kept). "
         "Do not modify logits in place.",
    section="decoding-strategies",
    notebook=SECOND_NOTEBOOK,
))


# ---- llm.topk_router ----------------------------------------------------------------------------

_GATES = tensor_close("gates", {torch.float32: (1e-5, 1e-6)})


def _router_compare(got: Any, expected: tuple) -> str | None:
    names = ("experts", "gates", "kept")
    if not isinstance(got, tuple | list) or len(got) != 3:
        return f"expected a tuple (experts, gates, kept), got {describe(got, 80)}"
    experts, gates, kept = got
    shape = tuple(expected[0].shape)
    for name, value in zip(names, got, strict=True):
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            what = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            return f"{name} should be a tensor of shape {shape} (T, k), got {what}"
    if experts.dtype.is_floating_point or experts.dtype == torch.bool:
        return f"experts should be integer expert indices (int64), got dtype {experts.dtype}"
    if not torch.equal(experts.long(), expected[0]):
        t = int((experts.long() != expected[0]).any(-1).nonzero()[0])
        return (f"token {t} is routed to experts {experts[t].tolist()}, expected {expected[0][t].tolist()} (the k "
                "most probable, most probable first; ties to the lower expert index)")
    if kept.dtype != torch.bool:
        return f"kept should be a bool tensor, got dtype {kept.dtype}"
    if not torch.equal(kept, expected[2]):
        t, r = (int(i) for i in (kept != expected[2]).nonzero()[0])
        return (f"token {t}'s choice #{r + 1} (expert {int(expected[0][t, r])}) is kept={bool(kept[t, r])}, expected "
                f"{bool(expected[2][t, r])}: each expert takes the first `capacity` assignments in the order "
                "every token's 1st choice (tokens in order), then every 2nd choice, ...")
    if not gates.dtype.is_floating_point:
        return f"gates should be floating point, got dtype {gates.dtype}"
    if reason := _GATES(gates.to(expected[1].dtype), expected[1]):
        return reason + (" (k = 1: the chosen expert's probability; k >= 2: the top-k probabilities divided by "
                         "their sum, computed before dropping; a dropped assignment's gate is 0, the others are "
                         "not renormalised)")
    return None


def _router_cases(rng: np.random.Generator) -> list[Case]:
    def logits(T: int, E: int, scale: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.tensor(rng.normal(0, scale, (T, E))).to(dtype)

    crowded = logits(8, 4)
    crowded[:, 0] += 5.0  # every token's first choice is expert 0
    cases = [
        Case("k=1, capacity >= T: nothing dropped; the gate is the chosen probability (Switch), not 1",
             (logits(6, 4), 1, 6)),
        Case("k=2, nothing dropped: the two gates are renormalised to sum to 1", (logits(6, 4), 2, 12)),
        Case("k=2, capacity 2, 8 tokens over 4 experts: first choices are served before second choices",
             (logits(8, 4, 2.0), 2, 2)),
        Case("capacity 0: every assignment dropped, every gate 0", (logits(5, 3), 2, 0)),
        Case("k = E = 3: every expert, most probable first", (logits(4, 3), 3, 4)),
        Case("all logits equal: ties go to the lower expert index", (torch.zeros(4, 5), 2, 3)),
        Case("one token", (logits(1, 6), 2, 1)),
        Case("a crowded expert: every first choice is expert 0, capacity 3", (crowded, 2, 3)),
        Case("bfloat16 logits: the softmax in float32", (logits(10, 8, 2.0, torch.bfloat16), 2, 3)),
        Case("k=1 with capacity 1 over 2 experts: most tokens dropped", (logits(7, 2), 1, 1)),
        Case("k 0: ValueError", (logits(4, 3), 0, 2), raises=ValueError),
        Case("k > E: ValueError", (logits(4, 3), 4, 2), raises=ValueError),
        Case("capacity -1: ValueError", (logits(4, 3), 1, -1), raises=ValueError),
        Case("capacity 2.5: ValueError", (logits(4, 3), 1, 2.5), raises=ValueError),
        Case("1-D logits: ValueError", (torch.zeros(5), 1, 2), raises=ValueError),
    ]
    for i in range(4):
        T, E = int(rng.integers(4, 41)), int(rng.integers(2, 9))
        k = int(rng.integers(1, min(3, E) + 1))
        capacity = int(rng.integers(0, math.ceil(1.25 * T * k / E) + 1))
        cases.append(Case(f"random #{i + 1}: {T} tokens, {E} experts, k={k}, capacity {capacity}",
                          (logits(T, E, float(rng.choice([0.5, 1.0, 3.0]))), k, capacity)))
    return cases


register(Exercise(
    id="llm.topk_router",
    reference=topk_router,
    make_cases=_router_cases,
    compare=_router_compare,
    hint="ValueError unless logits is 2-D, 1 <= k <= E and capacity is an int >= 0. probs = softmax(logits.float(), "
         "-1); top, experts = torch.sort(probs, dim=-1, descending=True, stable=True), then [:, :k]; gates = top if k == 1 "
         "else top / top.sum(-1, keepdim=True). Serve assignments rank by rank: for r in range(k): for t in "
         "range(T): kept[t, r] = load[experts[t, r]] < capacity (then load += 1). gates = gates * kept (no "
         "renormalising). Return (experts, gates, kept).",
    section="mixture-of-experts",
    notebook=SECOND_NOTEBOOK,
))
