"""bigtrain_lab.llm.decoding: the logit filters (top-p above all: it is the exercise reference), the sampling
loop, and speculative decoding's claim that its output is distributed exactly as the target's."""

import math

import pytest
import torch

from bigtrain_lab.llm.decoding import (
    apply_repetition_penalty,
    apply_temperature,
    chi_square_gof,
    exact_continuation_distribution,
    next_token_distribution,
    sample,
    speculative_decode,
    top_k_filter,
    top_p_filter,
    verify_draft,
)
from bigtrain_lab.models import GPTConfig, TinyGPT

NEG = float("-inf")


def kept(logits):
    return torch.isfinite(logits)


def log_probs(*probs):
    return torch.tensor(probs, dtype=torch.float64).log()


# ------------------------------------------------------------------------------------------------ top-p


def brute_force_top_p(logits, p):
    """The definition, one row at a time in Python: walk tokens from most to least likely until the running
    total reaches p; keep everything at least as likely as the token where it did."""
    probs = torch.softmax(logits.double(), -1).tolist()
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    total, threshold = 0.0, probs[order[-1]]
    for i in order:
        total += probs[i]
        if total >= p:
            threshold = probs[i]
            break
    return [pr >= threshold for pr in probs]


def hf_top_p(logits, p):
    """Hugging Face's TopPLogitsWarper, written out: sort ascending, drop the tokens whose cumulative mass
    (themselves included) is <= 1 - p, always keep the last (most likely) one."""
    sorted_logits, sorted_idx = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    remove_sorted = cumulative <= 1 - p
    remove_sorted[..., -1:] = False
    remove = remove_sorted.scatter(-1, sorted_idx, remove_sorted)
    return logits.masked_fill(remove, NEG)


def test_top_p_hand_example_and_ties_at_the_boundary():
    logits = log_probs(0.5, 0.2, 0.2, 0.1)
    # 0.5 < 0.55; 0.5 + 0.2 reaches it at a 0.2 token: both 0.2 tokens are kept (the tie), 0.1 is not
    assert kept(top_p_filter(logits, 0.55)).tolist() == [True, True, True, False]
    assert kept(top_p_filter(logits, 0.45)).tolist() == [True, False, False, False]
    assert kept(top_p_filter(logits, 0.95)).tolist() == [True, True, True, True]
    # kept logits are unchanged, the others -inf
    out = top_p_filter(logits, 0.55)
    assert torch.equal(out[:3], logits[:3]) and out[3] == NEG


def test_top_p_keeps_the_token_that_crosses_p():
    logits = log_probs(0.4, 0.3, 0.2, 0.1)
    # 0.4 is short of 0.6: the 0.3 token that crosses it belongs to the nucleus (a classic off-by-one)
    assert kept(top_p_filter(logits, 0.6)).tolist() == [True, True, False, False]


def test_top_p_one_keeps_all_and_tiny_p_keeps_the_top_token():
    torch.manual_seed(0)
    logits = torch.randn(3, 50) * 3
    assert torch.equal(top_p_filter(logits, 1.0), logits)
    tiny = top_p_filter(logits, 1e-9)
    assert kept(tiny).sum(-1).tolist() == [1, 1, 1]
    assert torch.equal(kept(tiny).float().argmax(-1), logits.argmax(-1))
    # a tie for the top: both stay
    assert kept(top_p_filter(torch.tensor([2.0, 2.0, 0.0]), 1e-9)).tolist() == [True, True, False]


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.99])
def test_top_p_matches_the_definition_and_hugging_face(p):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(64, 20, generator=gen, dtype=torch.float64) * 2
    ours = top_p_filter(logits, p)
    assert kept(ours).tolist() == [brute_force_top_p(row, p) for row in logits]
    assert torch.equal(kept(ours), kept(hf_top_p(logits, p)))  # no ties in random logits: the two rules agree
    # the nucleus is the smallest top set holding at least p of the mass
    probs = logits.softmax(-1)
    mass = (probs * kept(ours)).sum(-1)
    assert (mass >= p - 1e-12).all()
    smallest = probs.masked_fill(~kept(ours), 2).min(-1).values
    assert (mass - smallest < p).all()


def test_top_p_batch_dims_dtype_and_input_untouched():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 11, generator=gen)
    before = logits.clone()
    out = top_p_filter(logits, 0.7)
    assert torch.equal(logits, before)
    assert out.shape == logits.shape and out.dtype == logits.dtype
    for i in range(2):
        for j in range(3):
            assert torch.equal(out[i, j], top_p_filter(logits[i, j], 0.7))
    half = top_p_filter(logits.to(torch.bfloat16), 0.7)
    assert half.dtype == torch.bfloat16


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.0001, 2, float("nan"), True, "0.5", None])
def test_top_p_rejects_bad_p(bad):
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(torch.zeros(4), bad)


def test_top_p_rejects_non_tensors():
    with pytest.raises(TypeError):
        top_p_filter([0.1, 0.2], 0.5)
    with pytest.raises(TypeError):
        top_p_filter(torch.tensor([1, 2]), 0.5)


# ------------------------------------------------------------------------------- top-k, temperature


def test_top_k():
    logits = torch.tensor([[1.0, 3.0, 2.0, 3.0, 0.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    assert kept(top_k_filter(logits, 1)).tolist() == [[False, True, False, True, False],  # tie for the top
                                                      [True, False, False, False, False]]
    assert kept(top_k_filter(logits, 3)).tolist() == [[False, True, True, True, False],
                                                      [True, True, True, False, False]]
    assert torch.equal(top_k_filter(logits, 5), logits) and torch.equal(top_k_filter(logits, 99), logits)
    for bad in (0, -1, 1.5, True, None):
        with pytest.raises(ValueError, match="top_k"):
            top_k_filter(logits, bad)


def test_temperature_zero_is_greedy_not_a_division_by_zero():
    logits = torch.tensor([[0.5, 2.0, 2.0, -1.0]])
    with torch.autograd.set_detect_anomaly(False):
        greedy = apply_temperature(logits, 0)
    assert kept(greedy).tolist() == [[False, True, False, False]]  # first index among ties
    assert torch.equal(next_token_distribution(logits, temperature=0.0), torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    assert torch.allclose(apply_temperature(logits, 2.0), logits / 2)
    # low temperature sharpens, high flattens
    entropy = [float(-(d * d.clamp_min(1e-30).log()).sum()) for d in
               (next_token_distribution(logits, temperature=t) for t in (0.25, 1.0, 4.0))]
    assert entropy[0] < entropy[1] < entropy[2]
    for bad in (-0.1, float("inf"), float("nan"), "1"):
        with pytest.raises(ValueError, match="temperature"):
            apply_temperature(logits, bad)


# --------------------------------------------------------------------------------- repetition penalty


def test_repetition_penalty_hand_example():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 0.0])
    out = apply_repetition_penalty(logits, [0, 1, 1, 4], 2.0)
    # seen: 0 (positive: divided), 1 (negative: multiplied, counted once), 4 (zero stays zero)
    assert out.tolist() == [1.0, -2.0, 0.5, -3.0, 0.0]
    assert logits.tolist() == [2.0, -1.0, 0.5, -3.0, 0.0]  # input untouched
    # every seen token loses probability, every unseen one gains
    before, after = logits.softmax(-1), out.softmax(-1)
    assert (after[[0, 1]] < before[[0, 1]]).all() and (after[[2, 3]] > before[[2, 3]]).all()


def test_repetition_penalty_batched_and_edge_cases():
    logits = torch.tensor([[1.0, -1.0, 2.0], [1.0, -1.0, 2.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 0], [1, 2]]), 4.0)
    assert out.tolist() == [[0.25, -1.0, 2.0], [1.0, -4.0, 0.5]]
    assert torch.equal(apply_repetition_penalty(logits, [0, 1], 1.0), logits)
    assert torch.equal(apply_repetition_penalty(logits, torch.zeros(2, 0, dtype=torch.long), 3.0), logits)
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="repetition_penalty"):
            apply_repetition_penalty(logits, [0], bad)
    with pytest.raises(ValueError, match="outside"):
        apply_repetition_penalty(logits, [3], 1.2)
    with pytest.raises(ValueError, match="shape"):
        apply_repetition_penalty(logits, torch.zeros(3, 2, dtype=torch.long), 1.2)
    with pytest.raises(ValueError, match="previous"):
        next_token_distribution(logits, repetition_penalty=1.3)


def test_next_token_distribution_chains_the_filters_in_order():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0])
    d = next_token_distribution(logits, temperature=0.5, top_k=4, top_p=0.9, repetition_penalty=1.5,
                                previous=[0])
    manual = top_p_filter(top_k_filter(apply_temperature(apply_repetition_penalty(logits, [0], 1.5), 0.5), 4), 0.9)
    assert torch.allclose(d, manual.softmax(-1))
    assert math.isclose(float(d.sum()), 1.0, rel_tol=1e-6) and d.dtype == torch.float32


# ------------------------------------------------------------------------------------------- sampling


class Bigram(torch.nn.Module):
    """A 'language model' whose next-token logits depend on the last token only: row idx[t] of a table."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(table, dtype=torch.float32), requires_grad=False)

    def forward(self, idx, targets=None):
        return self.table[idx], None


def tables(V=5, seed=0, scale=1.5):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(V, V, generator=gen) * scale, torch.randn(V, V, generator=gen) * scale


def test_sample_matches_tinygpt_generate_and_crops_the_context():
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16))
    idx = torch.tensor([[1, 2, 3]])
    ours = sample(model, idx, 20, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(3))
    theirs = model.generate(idx, 20, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(3))
    assert ours.shape == (1, 23) and torch.equal(ours, theirs)  # 23 > block_size 8: cropping worked
    greedy = sample(model, idx, 10, temperature=0)
    assert torch.equal(greedy, model.generate(idx, 10, temperature=0))
    assert model.training  # restored


def test_sample_on_a_bigram_table():
    target, _ = tables()
    model = Bigram(target)
    out = sample(model, torch.tensor([[0], [1]]), 6, temperature=0)
    for row in out:
        for a, b in zip(row[:-1], row[1:], strict=True):
            assert int(b) == int(target[a].argmax())
    # positive logits and a huge repetition penalty: greedy never repeats a token while unseen ones remain
    out = sample(Bigram(target.abs() + 0.1), torch.tensor([[0]]), 4, temperature=0, repetition_penalty=1e6)
    assert sorted(out[0].tolist()) == list(range(5))
    with pytest.raises(ValueError, match="idx"):
        sample(model, torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="n must"):
        sample(model, torch.tensor([[0]]), -1)


class PrefixSum(torch.nn.Module):
    """A model that sees its whole context (logits = table[last token] + (sum of the context's embeddings) W)
    and takes a KV cache like LLM: the cache stores the embeddings, so a wrong crop changes the logits.
    Integer embeddings and quarter-integer weights keep every sum exact: with or without the cache the
    logits are bitwise equal."""

    def __init__(self, V=6, E=3, seed=0, block_size=None):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.config = type("Config", (), {"n_layer": 1, "block_size": block_size})()
        self.emb = torch.randint(-2, 3, (V, E), generator=gen).float()
        self.w = torch.randint(-2, 3, (E, V), generator=gen).float() / 4
        self.table = torch.randint(-4, 5, (V, V), generator=gen).float() / 2
        self.fed = 0  # tokens fed through forward, all calls together

    def forward(self, idx, targets=None, *, cache=None):
        self.fed += idx.numel()
        x = self.emb[idx]
        if cache is not None:
            keys, _ = cache.update(0, x.unsqueeze(1), x.unsqueeze(1))
            x = keys.squeeze(1)
        sums = x.cumsum(1)[:, -idx.size(1):]
        return self.table[idx] + sums @ self.w, None


def test_the_kv_cache_path_gives_the_same_tokens_with_fewer_tokens_fed():
    prompt = torch.tensor([[1, 2, 3]])
    cached, plain = PrefixSum(), PrefixSum()
    a = sample(cached, prompt, 12, generator=torch.Generator().manual_seed(0))
    b = sample(plain, prompt, 12, generator=torch.Generator().manual_seed(0), use_cache=False)
    assert torch.equal(a, b)
    assert cached.fed == 3 + 11 and plain.fed == sum(range(3, 15))
    # speculative decoding rolls the caches back to the accepted tokens after every round
    target, draft = PrefixSum(seed=0), PrefixSum(seed=1)
    a, stats_a = speculative_decode(target, draft, prompt, 20, gamma=3, generator=torch.Generator().manual_seed(1))
    fed_cached = target.fed
    b, stats_b = speculative_decode(PrefixSum(seed=0), PrefixSum(seed=1), prompt, 20, gamma=3,
                                    generator=torch.Generator().manual_seed(1), use_cache=False)
    assert torch.equal(a, b) and stats_a.accepted_per_round == stats_b.accepted_per_round
    assert 0 < stats_a.accepted < stats_a.drafted  # some rejections: the rollback was exercised
    # each round feeds the target its g draft tokens and the token verified last round: nothing twice
    assert fed_cached == 3 + stats_a.drafted + stats_a.target_calls - 1
    # past the block size the window slides: the cache is bypassed, the tokens are the same
    small = PrefixSum(block_size=8)
    a = sample(small, prompt, 12, generator=torch.Generator().manual_seed(2))
    b = sample(PrefixSum(block_size=8), prompt, 12, generator=torch.Generator().manual_seed(2), use_cache=False)
    assert torch.equal(a, b)


# ------------------------------------------------------------------------------ speculative decoding


def accept_everything(p, q, drafted, *, generator=None):
    """WRONG: keeps every draft token (the output follows the draft model)."""
    bonus = torch.multinomial(p[-1], 1, generator=generator)
    return torch.cat([drafted, bonus]), drafted.numel()


def resample_from_p(p, q, drafted, *, generator=None):
    """WRONG: right acceptance rule, but a rejected token is replaced by a draw from p, not norm(max(0, p - q))."""
    for i in range(drafted.numel()):
        x = int(drafted[i])
        if float(torch.rand((), generator=generator)) * float(q[i, x]) < float(p[i, x]):
            continue
        return torch.cat([drafted[:i], torch.multinomial(p[i], 1, generator=generator)]), i
    return torch.cat([drafted, torch.multinomial(p[-1], 1, generator=generator)]), drafted.numel()


def first_two_counts(target, draft, runs, *, verify=verify_draft, gamma=2, n=3, temperature=1.0, top_k=None):
    V = target.table.size(0)
    counts = torch.zeros(V, V)
    gen = torch.Generator().manual_seed(0)
    prompt = torch.tensor([[0]])
    for _ in range(runs):
        out, _ = speculative_decode(target, draft, prompt, n, gamma=gamma, temperature=temperature, top_k=top_k,
                                    generator=gen, verify=verify)
        counts[out[0, 1], out[0, 2]] += 1
    return counts


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.7, 3)])
def test_speculative_output_is_distributed_as_the_target(temperature, top_k):
    t, d = tables()
    target, draft = Bigram(t), Bigram(d)
    exact = exact_continuation_distribution(target, torch.tensor([[0]]), 2, temperature=temperature, top_k=top_k)
    manual = next_token_distribution(t[0], temperature=temperature, top_k=top_k).double()
    step2 = next_token_distribution(t, temperature=temperature, top_k=top_k).double()
    assert torch.allclose(exact, manual[:, None] * step2)
    counts = first_two_counts(target, draft, 1500, temperature=temperature, top_k=top_k)
    result = chi_square_gof(counts, exact)
    assert result.p_value > 1e-3, result
    assert result.impossible == 0


def test_wrong_speculative_samplers_fail_the_same_test():
    t, d = tables()
    target, draft = Bigram(t), Bigram(d)
    exact = exact_continuation_distribution(target, torch.tensor([[0]]), 2)
    for wrong in (accept_everything, resample_from_p):
        result = chi_square_gof(first_two_counts(target, draft, 1500, verify=wrong), exact)
        assert result.p_value < 1e-6, (wrong.__name__, result)


def test_greedy_speculative_equals_greedy_target():
    t, d = tables(V=7, seed=3)
    target, draft = Bigram(t), Bigram(d)
    prompt = torch.tensor([[2]])
    out, stats = speculative_decode(target, draft, prompt, 25, gamma=3, temperature=0)
    assert torch.equal(out, sample(target, prompt, 25, temperature=0))
    assert stats.generated == 25 and stats.drafted == stats.draft_calls
    torch.manual_seed(0)
    cfg = dict(vocab_size=13, block_size=16, n_head=2)
    big = TinyGPT(GPTConfig(n_layer=2, n_embd=32, **cfg))
    small = TinyGPT(GPTConfig(n_layer=1, n_embd=16, **cfg))
    prompt = torch.tensor([[1, 5, 7]])
    out, stats = speculative_decode(big, small, prompt, 10, gamma=4, temperature=0)
    assert torch.equal(out, sample(big, prompt, 10, temperature=0))


def test_speculative_stats_and_a_perfect_draft():
    t, d = tables()
    out, stats = speculative_decode(Bigram(t), Bigram(t), torch.tensor([[0]]), 21, gamma=4,
                                    generator=torch.Generator().manual_seed(0))
    # the draft IS the target: every draft token is accepted, each round yields gamma + 1 tokens
    assert stats.acceptance_rate == 1.0 and stats.accepted_per_round == [4] * 4 + [0]
    assert stats.target_calls == 5 and stats.tokens_per_target_call == 21 / 5 and out.shape == (1, 22)
    out, stats = speculative_decode(Bigram(t), Bigram(d), torch.tensor([[0]]), 30, gamma=3,
                                    generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 31) and stats.generated == 30
    assert 0 <= stats.accepted <= stats.drafted == stats.draft_calls
    assert stats.generated == stats.accepted + stats.target_calls  # each round: accepted + one of its own
    assert sum(stats.accepted_per_round) == stats.accepted
    remaining, rejected = 30, 0
    for a in stats.accepted_per_round:  # a round drafts min(gamma, tokens still wanted - 1) tokens
        rejected += a < min(3, remaining - 1)
        remaining -= a + 1
    assert remaining == 0 and stats.rejected == rejected > 0
    assert stats.acceptance_rate <= stats.alpha == stats.accepted / (stats.accepted + stats.rejected)
    with pytest.raises(ValueError, match="batch"):
        speculative_decode(Bigram(t), Bigram(d), torch.tensor([[0], [1]]), 3)
    with pytest.raises(ValueError, match="gamma"):
        speculative_decode(Bigram(t), Bigram(d), torch.tensor([[0]]), 3, gamma=0)


def test_verify_draft_acceptance_probability():
    # one draft position: p = (0.2, 0.8), q = (0.6, 0.4); token 0 is accepted with prob 0.2 / 0.6,
    # a rejection is replaced from norm(max(0, p - q)) = (0, 1): token 0 never comes out of a rejection
    p = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    q = torch.tensor([[0.6, 0.4]])
    gen = torch.Generator().manual_seed(0)
    accepted = 0
    for _ in range(3000):
        tokens, k = verify_draft(p, q, torch.tensor([0]), generator=gen)
        assert (k == 1 and tokens[0] == 0) or (k == 0 and tokens.tolist() == [1])
        accepted += k
    assert abs(accepted / 3000 - 1 / 3) < 0.03
    with pytest.raises(ValueError, match="gamma"):
        verify_draft(p, q, torch.tensor([0, 1]))


def test_chi_square_gof():
    probs = torch.tensor([0.5, 0.3, 0.2, 0.0])
    exact = chi_square_gof(torch.tensor([50, 30, 20, 0]), probs)
    assert exact.statistic < 1e-9 and exact.p_value > 0.999 and exact.dof == 2
    assert chi_square_gof(torch.tensor([50, 30, 19, 1]), probs).p_value == 0.0  # an impossible outcome
    assert chi_square_gof(torch.tensor([80, 10, 10, 0]), probs).p_value < 1e-6
    with pytest.raises(ValueError):
        chi_square_gof(torch.tensor([1, 2]), probs)


def test_on_the_llm_with_its_kv_cache():
    from bigtrain_lab.llm.model import LLM, LLMConfig

    torch.manual_seed(0)
    cfg = dict(vocab_size=17, block_size=12, n_head=2)
    big, small = LLM(LLMConfig(n_layer=2, n_embd=32, **cfg)), LLM(LLMConfig(n_layer=1, n_embd=16, **cfg))
    prompt = torch.tensor([[3, 1, 4]])
    for use_cache in (True, False):  # 3 + 15 > block_size 12: the window slides past the cache too
        ours = sample(big, prompt, 15, temperature=0.9, generator=torch.Generator().manual_seed(5), use_cache=use_cache)
        theirs = big.generate(prompt, 15, temperature=0.9, generator=torch.Generator().manual_seed(5),
                              use_cache=use_cache)
        assert torch.equal(ours, theirs)
    greedy = big.generate(prompt, 8, temperature=0.0)
    for use_cache in (True, False):
        out, stats = speculative_decode(big, small, prompt, 8, gamma=3, temperature=0.0, use_cache=use_cache)
        assert torch.equal(out, greedy) and stats.generated == 8
    assert big.training and small.training  # modes restored
