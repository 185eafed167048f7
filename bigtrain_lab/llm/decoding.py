"""Turning a language model's logits into text: greedy, temperature, top-k, top-p, repetition penalty, and
speculative decoding with a small draft model.

Logit filters (all take ``logits (..., V)``, work on the last dimension, return a NEW tensor of the same
shape and dtype with the removed tokens at ``-inf``, and never modify their input):

* ``apply_temperature(logits, t)``: ``logits / t``; ``t = 0`` means greedy (only the arg-max, the first one
  on ties, stays finite), never a division by zero.
* ``top_k_filter(logits, k)``: keep the k largest logits (tokens tied with the k-th are kept too, as in
  Hugging Face's ``TopKLogitsWarper``).
* ``top_p_filter(logits, p)``: nucleus sampling (Holtzman et al., 2020) -- THE EXERCISE REFERENCE. Sort the
  probabilities (softmax of the logits) in descending order, find the first token at which the cumulative
  probability reaches ``p``, and keep every token whose probability is >= that token's (ties at the
  boundary all kept; the top token always kept). ``p = 1`` keeps everything.
* ``apply_repetition_penalty(logits, previous, penalty)``: CTRL (Keskar et al., 2019) as Hugging Face
  implements it: every token id that occurs in ``previous`` has its logit divided by ``penalty`` when
  positive and multiplied by it when negative, so ``penalty > 1`` always lowers its probability.

``next_token_distribution`` chains them in Hugging Face ``generate``'s order (repetition penalty ->
temperature -> top-k -> top-p -> softmax) and ``sample(model, idx, n, ...)`` runs the loop for any model
with ``model(idx) -> (logits, ...)``, cropping the context to the model's block size; on a model whose
forward takes ``cache=`` (``bigtrain_lab.llm.model.LLM``) it feeds only the new token through a KV cache.

Speculative decoding (Leviathan, Kalman & Matias, 2023; Chen et al., 2023): a cheap draft model proposes
``gamma`` tokens one at a time (distributions ``q``); ONE target forward over all of them gives the target's
distributions ``p`` at the ``gamma + 1`` positions; ``verify_draft`` accepts draft token ``x`` with
probability ``min(1, p(x) / q(x))``, on the first rejection samples a replacement from
``norm(max(0, p - q))`` and stops, and when all are accepted adds a bonus token from the last ``p``. The
output has exactly the target's distribution, whatever the draft; a good draft only makes it faster.
``speculative_decode`` returns the tokens and a ``SpeculativeStats`` (acceptance rate, alpha, tokens per
target call, target and draft calls); with KV caches, both are cropped back to the accepted tokens each round.

To check that claim statistically: ``exact_continuation_distribution`` enumerates the target's exact joint
distribution of the next few tokens, and ``chi_square_gof`` tests observed counts against it.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["ChiSquareResult", "SpeculativeStats", "apply_repetition_penalty", "apply_temperature",
           "chi_square_gof", "exact_continuation_distribution", "next_token_distribution", "sample",
           "speculative_decode", "top_k_filter", "top_p_filter", "verify_draft"]

Verify = Callable[..., tuple[torch.Tensor, int]]


# ----------------------------------------------------------------------------------------------------
# Logit filters


def _check_logits(logits: Any, name: str = "logits") -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.dim() < 1 or logits.size(-1) < 1:
        raise ValueError(f"{name} must have a last (vocabulary) dimension of size >= 1, got shape "
                         f"{tuple(logits.shape)}")
    return logits


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _greedy_mask(logits: torch.Tensor) -> torch.Tensor:
    """Everything but the arg-max (the first index among ties) at -inf."""
    top = logits.argmax(dim=-1, keepdim=True)
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, top, True)
    return logits.masked_fill(~keep, float("-inf"))


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature``; ``temperature == 0`` is greedy decoding: every logit but the arg-max (the
    first index on ties) becomes -inf, so the softmax puts all the mass on it (no division by zero).
    ValueError unless temperature is a finite number >= 0."""
    logits = _check_logits(logits)
    if not _is_number(temperature) or not math.isfinite(float(temperature)) or float(temperature) < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if float(temperature) == 0.0:
        return _greedy_mask(logits)
    return logits / float(temperature)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of the last dimension, the rest at -inf. Tokens tied with the k-th
    largest are kept too (Hugging Face's ``TopKLogitsWarper``); ``k >= V`` keeps everything. ValueError
    unless k is an int >= 1."""
    logits = _check_logits(logits)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"top_k must be an int >= 1, got {k!r}")
    k = int(k)
    if k >= logits.size(-1):
        return logits.clone()
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus (top-p) filtering of ``logits (..., V)``: the logits with every token outside the nucleus at -inf.

    The nucleus: sort the probabilities ``softmax(logits)`` in descending order, find the first token at
    which the cumulative probability reaches ``p``, and keep every token whose probability is >= that
    token's -- the smallest set of most likely tokens whose total probability is at least ``p``, plus any
    token tied with the last one admitted. The top token is always kept; ``p = 1`` keeps every token.
    Probabilities are computed in float64; the result has the input's dtype; the input is not modified.
    ValueError unless ``0 < p <= 1``.
    """
    logits = _check_logits(logits)
    if not _is_number(p) or not 0.0 < float(p) <= 1.0:
        raise ValueError(f"top_p must be a number with 0 < p <= 1, got {p!r}")
    if float(p) == 1.0:
        return logits.clone()
    probs = torch.softmax(logits.double(), dim=-1)
    sorted_probs = probs.sort(dim=-1, descending=True).values
    cumulative = sorted_probs.cumsum(dim=-1)
    # the cumulative sum is non-decreasing: the number of positions still below p is the index of the first
    # position that reaches it (clamped: rounding can leave the total a hair below p)
    first = (cumulative < float(p)).sum(dim=-1, keepdim=True).clamp(max=logits.size(-1) - 1)
    threshold = sorted_probs.gather(-1, first)
    return logits.masked_fill(probs < threshold, float("-inf"))


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor | Sequence[int],
                             penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty with Hugging Face's sign rule, on ``logits (..., V)``.

    Every token id that occurs in ``previous`` (once or many times: the penalty applies once) gets its logit
    divided by ``penalty`` if it is positive and multiplied by ``penalty`` if it is negative; so with
    ``penalty > 1`` an already-seen token always becomes less likely (dividing a negative logit would
    *raise* it). ``previous`` holds the ids generated so far (usually the prompt too): shape
    ``(*logits.shape[:-1], T)``, or ``(T,)`` for all rows alike. ``penalty = 1`` changes nothing; CTRL used
    1.2. ValueError unless penalty is a finite number > 0 or on ids outside ``0 .. V - 1``.
    """
    logits = _check_logits(logits)
    if not _is_number(penalty) or not math.isfinite(float(penalty)) or float(penalty) <= 0:
        raise ValueError(f"repetition_penalty must be a finite number > 0, got {penalty!r}")
    prev = torch.as_tensor(previous, dtype=torch.long, device=logits.device)
    if prev.dim() == 0:
        raise ValueError("previous must be a sequence of token ids (shape (..., T)), got a scalar")
    if prev.numel() and (int(prev.min()) < 0 or int(prev.max()) >= logits.size(-1)):
        raise ValueError(f"previous holds token ids outside 0 .. {logits.size(-1) - 1}")
    if prev.dim() == 1:
        prev = prev.expand(*logits.shape[:-1], prev.size(0))
    elif prev.shape[:-1] != logits.shape[:-1]:
        raise ValueError(f"previous must have shape (*logits.shape[:-1], T) = ({', '.join(map(str, logits.shape[:-1]))}"
                         f", T) or (T,), got {tuple(prev.shape)}")
    if prev.size(-1) == 0 or float(penalty) == 1.0:
        return logits.clone()
    seen = logits.gather(-1, prev)
    seen = torch.where(seen < 0, seen * float(penalty), seen / float(penalty))
    return logits.scatter(-1, prev, seen)


def next_token_distribution(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None, repetition_penalty: float | None = None,
                            previous: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
    """The sampling distribution ``(..., V)`` (float32, rows sum to 1) of the next token from ``logits (..., V)``.

    In Hugging Face ``generate``'s order: repetition penalty (needs ``previous``) -> temperature (0: greedy,
    a one-hot on the arg-max) -> top-k -> top-p -> softmax. ``None`` switches a filter off.
    """
    logits = _check_logits(logits).float()
    if repetition_penalty is not None and float(repetition_penalty) != 1.0:
        if previous is None:
            raise ValueError("repetition_penalty needs previous (the token ids generated so far)")
        logits = apply_repetition_penalty(logits, previous, repetition_penalty)
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


# ----------------------------------------------------------------------------------------------------
# The sampling loop


def _block_size(model: Any) -> int | None:
    config = getattr(model, "config", None)
    size = getattr(config, "block_size", None)
    return int(size) if size is not None else None


def _check_idx(idx: Any) -> torch.Tensor:
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long:
        raise ValueError("idx must be a (batch, time) int64 tensor of token ids, got "
                         + (f"{tuple(idx.shape)} {idx.dtype}" if isinstance(idx, torch.Tensor) else type(idx).__name__))
    if idx.size(1) < 1:
        raise ValueError("idx must hold at least one token (the prompt)")
    return idx


def _check_count(name: str, n: Any, minimum: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {n!r}")
    return n


def _last_logits(model: Any, idx: torch.Tensor, block_size: int | None, last: int = 1) -> torch.Tensor:
    """The logits of the last ``last`` positions of ``idx`` (cropped to the block size), float32."""
    cond = idx if block_size is None else idx[:, -block_size:]
    out = model(cond)
    logits = out[0] if isinstance(out, tuple) else out
    return logits[:, -last:, :].float()


def _takes_cache(model: Any) -> bool:
    """True for a model whose forward takes ``cache=`` and has ``config.n_layer`` (``bigtrain_lab.llm.model.LLM``)."""
    forward = getattr(model, "forward", None)
    if forward is None or getattr(getattr(model, "config", None), "n_layer", None) is None:
        return False
    try:
        return "cache" in inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return False


class _Forward:
    """Logits of the last positions of a growing (and, in speculative decoding, rolled-back) sequence.

    Without a cache: one forward over the sequence cropped to the block size. With one (``use_cache`` and a
    model whose forward takes ``cache=``), the cache holds the keys / values of a prefix of the last sequence
    seen; each call crops it to the prefix the new sequence shares (dropping rejected draft tokens) and feeds
    only the tokens after it. A sequence longer than the block size falls back to the cropped full forward.
    """

    def __init__(self, model: Any, use_cache: bool):
        self.model = model
        self.block_size = _block_size(model)
        self.cache = None
        if use_cache and _takes_cache(model):
            from bigtrain_lab.llm.kv_cache import KVCache

            self.cache = KVCache(int(model.config.n_layer))
        self.seen = torch.zeros(1, 0, dtype=torch.long)  # the tokens whose keys / values the cache holds
        self.calls = 0

    def __call__(self, seq: torch.Tensor, last: int = 1) -> torch.Tensor:
        """Float32 logits ``(B, last, V)`` of the last ``last`` positions of ``seq (B, L)``."""
        self.calls += 1
        length = seq.size(1)
        if self.cache is None or (self.block_size is not None and length > self.block_size):
            return _last_logits(self.model, seq, self.block_size, last)
        n = min(self.cache.length, length - last)
        if self.seen.shape[0] != seq.shape[0] or self.seen.device != seq.device:
            n = 0
        else:
            n = min(n, self.seen.size(1))
            same = (self.seen[:, :n] == seq[:, :n]).all(dim=0)
            if not bool(same.all()):
                n = int(same.long().argmin())  # the first position where they differ
        if n < self.cache.length:
            self.cache.crop(n)
        out = self.model(seq[:, n:], cache=self.cache)
        logits = out[0] if isinstance(out, tuple) else out
        self.seen = seq
        return logits[:, -last:, :].float()


def _eval_mode(model: Any) -> Callable[[], None]:
    """Switch a module in training mode to eval mode (no dropout while sampling); returns the undo."""
    if isinstance(model, torch.nn.Module) and model.training:
        model.eval()
        return lambda: model.train(True)
    return lambda: None


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token id per row of ``probs (B, V)``: ``(B, 1)`` int64."""
    return torch.multinomial(probs, 1, generator=generator)


@torch.no_grad()
def sample(model: Any, idx: torch.Tensor, n: int, *, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, repetition_penalty: float | None = None,
           generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """Extend ``idx (B, T)`` by ``n`` tokens drawn from ``next_token_distribution``; returns ``(B, T + n)``.

    Works for any model with ``model(idx) -> (logits, ...)``; the context is cropped to the last
    ``model.config.block_size`` tokens when the model has one. The repetition penalty looks at every token
    so far, prompt included (as Hugging Face does). On a ``bigtrain_lab.llm.model.LLM`` with ``use_cache``,
    after the prompt only the newest token is fed, through the KV cache, while the sequence fits in the
    block size (beyond it, the window slides and is recomputed: the same tokens as without the cache).
    Temperature 0 is greedy. The model is put in eval mode while sampling and restored after.
    """
    idx = _check_idx(idx)
    _check_count("n", n, 0)
    forward = _Forward(model, use_cache)
    restore = _eval_mode(model)
    try:
        for _ in range(n):
            logits = forward(idx)[:, -1, :]
            probs = next_token_distribution(logits, temperature=temperature, top_k=top_k, top_p=top_p,
                                            repetition_penalty=repetition_penalty, previous=idx)
            idx = torch.cat([idx, _draw(probs, generator)], dim=1)
    finally:
        restore()
    return idx


# ----------------------------------------------------------------------------------------------------
# Speculative decoding


@dataclass
class SpeculativeStats:
    """What one ``speculative_decode`` call did."""

    generated: int = 0  # new tokens produced
    target_calls: int = 0  # target forward passes (one per round)
    draft_calls: int = 0  # draft forward passes (one per draft token)
    drafted: int = 0  # draft tokens proposed
    accepted: int = 0  # draft tokens accepted
    rejected: int = 0  # rounds that ended with a rejected draft token (the others ended with a bonus token)
    accepted_per_round: list[int] = field(default_factory=list)

    @property
    def acceptance_rate(self) -> float:
        """Accepted draft tokens / proposed draft tokens (what vLLM reports as the draft acceptance rate).
        Draft tokens after a rejection count as not accepted although they were never tested."""
        return self.accepted / self.drafted if self.drafted else float("nan")

    @property
    def alpha(self) -> float:
        """Accepted / tested draft tokens: an estimate of Leviathan et al.'s alpha, the probability that a
        draft token is accepted, which their ``(1 - alpha^(gamma + 1)) / (1 - alpha)`` tokens per target call uses."""
        tested = self.accepted + self.rejected
        return self.accepted / tested if tested else float("nan")

    @property
    def tokens_per_target_call(self) -> float:
        """New tokens per target forward (plain sampling: 1)."""
        return self.generated / self.target_calls if self.target_calls else float("nan")


def _uniform(generator: torch.Generator | None, device: torch.device) -> float:
    dev = generator.device if generator is not None else device
    return float(torch.rand((), generator=generator, device=dev))


def verify_draft(p: torch.Tensor, q: torch.Tensor, drafted: torch.Tensor, *,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """The rejection step of speculative sampling: which draft tokens to keep, and the token after them.

    ``p (gamma + 1, V)``: the target's distributions at the draft positions and one more; ``q (gamma, V)``:
    the draft's distributions the tokens ``drafted (gamma,)`` were drawn from. Left to right, token
    ``x = drafted[i]`` is accepted with probability ``min(1, p_i(x) / q_i(x))``; at the first rejection a
    replacement is drawn from ``norm(max(0, p_i - q_i))`` and the step ends; if all are accepted a bonus token
    is drawn from ``p_gamma``. Returns ``(tokens, accepted)``: the accepted draft tokens followed by the
    replacement or bonus token (``accepted + 1`` int64 ids), and the number accepted.
    """
    gamma = drafted.numel()
    if p.dim() != 2 or q.dim() != 2 or p.size(0) != gamma + 1 or q.size(0) != gamma or p.size(1) != q.size(1):
        raise ValueError(f"need p (gamma + 1, V) and q (gamma, V) for gamma = {gamma} drafted tokens, got p "
                         f"{tuple(p.shape)} and q {tuple(q.shape)}")
    drafted = drafted.reshape(-1).to(torch.long)
    for i in range(gamma):
        x = int(drafted[i])
        # accept with probability min(1, p/q): r < p/q  <=>  r q < p  (q(x) > 0: x was drawn from q)
        if _uniform(generator, p.device) * float(q[i, x]) < float(p[i, x]):
            continue
        residual = (p[i] - q[i]).clamp_min(0)
        total = float(residual.sum())
        # residual is 0 only when p_i == q_i, where nothing is ever rejected; guard against rounding
        residual = residual / total if total > 0 else p[i]
        token = _draw(residual.unsqueeze(0), generator).reshape(1).to(drafted.device)
        return torch.cat([drafted[:i], token]), i
    bonus = _draw(p[gamma].unsqueeze(0), generator).reshape(1).to(drafted.device)
    return torch.cat([drafted, bonus]), gamma


@torch.no_grad()
def speculative_decode(target: Any, draft: Any, idx: torch.Tensor, n: int, *, gamma: int = 4,
                       temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                       generator: torch.Generator | None = None, verify: Verify = verify_draft,
                       use_cache: bool = True) -> tuple[torch.Tensor, SpeculativeStats]:
    """Generate ``n`` tokens after ``idx (1, T)`` with speculative sampling; returns ``((1, T + n), stats)``.

    Each round: the draft proposes ``g = min(gamma, tokens still wanted - 1)`` tokens, one draft forward each;
    one target forward over the context plus the draft gives ``p`` at the ``g + 1`` positions; ``verify``
    (``verify_draft``) keeps a prefix of the draft and adds one token of its own, so a round yields 1 to
    ``g + 1`` tokens for one target call. Both models' logits go through the same
    ``next_token_distribution`` (``temperature``, ``top_k``, ``top_p``), and the output is distributed
    exactly as ``sample(target, idx, n, ...)`` with those settings (temperature 0: the same tokens as greedy
    decoding of the target) as long as the sequence fits in the target's block size; beyond it, contexts
    are cropped to the last ``block_size`` tokens of each forward. Both models need the same vocabulary;
    batch size 1. With ``use_cache``, a model whose forward takes ``cache=`` (``LLM``) keeps a KV cache that
    is cropped back to the accepted tokens after each round. ``verify`` is replaceable, to study wrong
    acceptance rules.
    """
    idx = _check_idx(idx)
    if idx.size(0) != 1:
        raise ValueError(f"speculative_decode works on one sequence (batch 1), got batch {idx.size(0)}")
    _check_count("n", n, 0)
    _check_count("gamma", gamma, 1)
    t_block = _block_size(target)
    if t_block is not None and gamma + 1 > t_block:
        raise ValueError(f"gamma + 1 = {gamma + 1} positions must fit in the target's block size {t_block}")

    def dist(logits: torch.Tensor) -> torch.Tensor:
        return next_token_distribution(logits, temperature=temperature, top_k=top_k, top_p=top_p)

    target_forward, draft_forward = _Forward(target, use_cache), _Forward(draft, use_cache)
    stats = SpeculativeStats()
    restore_target, restore_draft = _eval_mode(target), _eval_mode(draft)
    try:
        while stats.generated < n:
            g = min(gamma, n - stats.generated - 1)
            seq, qs = idx, []
            for _ in range(g):
                q = dist(draft_forward(seq)[0, -1])
                qs.append(q)
                seq = torch.cat([seq, _draw(q.unsqueeze(0), generator).to(seq.device)], dim=1)
            stats.draft_calls += g
            p = dist(target_forward(seq, last=g + 1)[0])  # (g + 1, V)
            stats.target_calls += 1
            q = torch.stack(qs) if qs else p.new_zeros(0, p.size(-1))
            tokens, accepted = verify(p, q, seq[0, idx.size(1):], generator=generator)
            idx = torch.cat([idx, tokens.reshape(1, -1).to(idx.device)], dim=1)
            stats.drafted += g
            stats.accepted += accepted
            stats.rejected += accepted < g
            stats.accepted_per_round.append(accepted)
            stats.generated += tokens.numel()
    finally:
        restore_target()
        restore_draft()
    return idx, stats


# ----------------------------------------------------------------------------------------------------
# Checking a sampler's output distribution


@torch.no_grad()
def exact_continuation_distribution(model: Any, idx: torch.Tensor, k: int = 2, *, temperature: float = 1.0,
                                    top_k: int | None = None, top_p: float | None = None,
                                    batch: int = 4096) -> torch.Tensor:
    """The exact joint distribution of the next ``k`` tokens after ``idx (1, T)``, shape ``(V,) * k`` (float64).

    By enumeration: ``P(x_1 .. x_k) = prod_j p(x_j | idx, x_1 .. x_{j-1})`` with ``p`` from
    ``next_token_distribution`` (same settings as the sampler under test), evaluating every prefix of length
    ``< k`` (``V^(k-1)`` forwards, batched). Meant for k = 1 or 2 with a char-level vocabulary.
    """
    idx = _check_idx(idx)
    if idx.size(0) != 1:
        raise ValueError(f"idx must be one prompt (batch 1), got batch {idx.size(0)}")
    _check_count("k", k, 1)
    block_size = _block_size(model)
    restore = _eval_mode(model)
    try:
        joint = torch.ones(1, dtype=torch.float64)
        prefixes = torch.zeros(1, 0, dtype=torch.long, device=idx.device)  # (V^j, j)
        for _ in range(k):
            rows = []
            for start in range(0, prefixes.size(0), batch):
                part = prefixes[start:start + batch]
                seqs = torch.cat([idx.expand(part.size(0), -1), part], dim=1)
                logits = _last_logits(model, seqs, block_size)[:, -1, :]
                rows.append(next_token_distribution(logits, temperature=temperature, top_k=top_k,
                                                    top_p=top_p).double().cpu())
            probs = torch.cat(rows)  # (V^j, V)
            V = probs.size(1)
            joint = (joint.unsqueeze(1) * probs).reshape(-1)
            prefixes = torch.cat([prefixes.repeat_interleave(V, dim=0),
                                  torch.arange(V, device=idx.device).repeat(prefixes.size(0)).unsqueeze(1)], dim=1)
        return joint.reshape((V,) * k)
    finally:
        restore()


@dataclass
class ChiSquareResult:
    """Pearson's goodness-of-fit test of observed counts against exact probabilities."""

    statistic: float
    dof: int
    p_value: float
    bins: int  # bins after pooling the rare outcomes
    impossible: int  # observations of outcomes whose exact probability is 0


def chi_square_gof(counts: Any, probs: Any, *, min_expected: float = 5.0) -> ChiSquareResult:
    """Pearson's chi-square test that ``counts`` (any shape, non-negative) were drawn from ``probs`` (same shape).

    Outcomes whose expected count ``N * prob`` is below ``min_expected`` are pooled into one bin (the usual
    validity rule of the chi-square approximation); an outcome of probability 0 that was observed makes the
    test fail outright (p-value 0). ``dof = bins - 1``. The p-value is ``chi2.sf(statistic, dof)``.
    """
    c = torch.as_tensor(counts, dtype=torch.float64).reshape(-1)
    pr = torch.as_tensor(probs, dtype=torch.float64).reshape(-1)
    if c.shape != pr.shape:
        raise ValueError(f"counts and probs must have the same number of outcomes, got {c.numel()} and {pr.numel()}")
    if (c < 0).any() or (pr < 0).any():
        raise ValueError("counts and probs must be non-negative")
    total = float(c.sum())
    if total <= 0:
        raise ValueError("no observations")
    pr = pr / pr.sum()
    impossible = int(c[pr == 0].sum())
    expected = total * pr
    big = expected >= min_expected
    obs_bins = c[big].tolist()
    exp_bins = expected[big].tolist()
    rare_obs, rare_exp = float(c[~big & (pr > 0)].sum()), float(expected[~big].sum())
    if rare_exp > 0:
        obs_bins.append(rare_obs)
        exp_bins.append(rare_exp)
    stat = sum((o - e) ** 2 / e for o, e in zip(obs_bins, exp_bins, strict=True))
    dof = max(1, len(exp_bins) - 1)
    from scipy.stats import chi2  # imported here: scipy.stats takes a while and only this test needs it

    p_value = 0.0 if impossible else float(chi2.sf(stat, dof))
    return ChiSquareResult(statistic=float(stat), dof=dof, p_value=p_value, bins=len(exp_bins),
                           impossible=impossible)
