"""TinyGPT, MLP and CNN: shapes, causality, weight tying, parameter and FLOP counts, attention weights,
activation checkpointing and configuration errors. Tiny configurations only (CPU, well under a second
each)."""

import pytest
import torch

from bigtrain_lab.models import CNN, MLP, GPTConfig, TinyGPT

TINY = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


def tiny_gpt(**overrides) -> TinyGPT:
    torch.manual_seed(0)
    return TinyGPT(GPTConfig(**{**TINY, **overrides}))


def random_tokens(b=3, t=8, vocab=11, seed=1):
    return torch.randint(vocab, (b, t), generator=torch.Generator().manual_seed(seed))


def test_forward_shapes_and_loss():
    model = tiny_gpt()
    idx = random_tokens()
    logits, loss = model(idx)
    assert logits.shape == (3, 8, 11) and loss is None
    logits, loss = model(idx, idx)
    assert loss.shape == () and torch.isfinite(loss)
    # at initialisation the prediction is close to uniform: loss ~ ln(vocab_size)
    assert abs(loss.item() - torch.log(torch.tensor(11.0)).item()) < 0.3
    # shorter sequences than block_size are fine
    assert model(idx[:, :3])[0].shape == (3, 3, 11)


def test_changing_a_future_token_leaves_earlier_logits_unchanged():
    model = tiny_gpt().eval()
    idx = random_tokens()
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 11
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(changed)
    assert torch.equal(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_token_embedding_and_lm_head_are_one_tensor():
    model = tiny_gpt()
    assert model.lm_head.weight is model.transformer.wte.weight
    idx = random_tokens()
    model(idx, idx)[1].backward()
    # both uses contribute to the one gradient
    assert model.transformer.wte.weight.grad is model.lm_head.weight.grad


@pytest.mark.parametrize("bias", [True, False])
def test_parameter_count_matches_the_formula(bias):
    V, T, L, C = 11, 8, 2, 16
    model = tiny_gpt(bias=bias)
    ln = 2 * C if bias else C
    per_layer = (
        ln + (3 * C * C + (3 * C if bias else 0)) + (C * C + (C if bias else 0))  # ln_1, c_attn, c_proj
        + ln + (4 * C * C + (4 * C if bias else 0)) + (4 * C * C + (C if bias else 0))  # ln_2, mlp
    )
    total = V * C + T * C + L * per_layer + ln  # wte (tied with lm_head), wpe, blocks, ln_f
    assert model.num_parameters(non_embedding=False) == total
    assert model.num_parameters() == total - T * C  # non-embedding: without the position embeddings


def test_flops_per_token_is_6n_plus_attention_and_gives_mfu():
    model = tiny_gpt()
    L, H, Q, T = 2, 2, 8, 8
    expected = 6 * model.num_parameters() + 12 * L * H * Q * T
    assert model.flops_per_token() == expected
    assert model.estimate_mfu(tokens_per_second=1000, peak_flops=expected * 4000) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="peak_flops"):
        model.estimate_mfu(1000, 0)


def test_attention_weights_are_causal_rows_summing_to_one_and_match_sdpa():
    model = tiny_gpt().eval()
    idx = random_tokens()
    with torch.no_grad():
        logits_sdpa, _ = model(idx)
        logits, loss, attention = model(idx, idx, return_attention=True)
    assert len(attention) == 2
    for att in attention:
        assert att.shape == (3, 2, 8, 8)
        torch.testing.assert_close(att.sum(-1), torch.ones(3, 2, 8))
        assert torch.all(att.triu(diagonal=1) == 0)  # no weight on future positions
    torch.testing.assert_close(logits, logits_sdpa, atol=1e-5, rtol=1e-5)
    assert loss is not None


def test_activation_checkpointing_gives_the_same_gradients():
    idx = random_tokens()
    grads = []
    for flag in (False, True):
        model = tiny_gpt(dropout=0.1, gradient_checkpointing=flag).train()
        torch.manual_seed(123)  # same dropout masks: checkpoint replays the RNG state on recompute
        model(idx, idx)[1].backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("overrides, message", [
    (dict(n_embd=10, n_head=3), "divisible by n_head"),
    (dict(n_layer=0), "n_layer"),
    (dict(vocab_size=2.5), "vocab_size"),
    (dict(dropout=1.0), "dropout"),
])
def test_bad_configs_raise_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**TINY, **overrides})


def test_sequence_longer_than_block_size_is_an_error():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="block_size is only 8"):
        model(random_tokens(t=9))


def test_generate_extends_crops_and_is_reproducible():
    model = tiny_gpt().train()
    start = torch.zeros(2, 1, dtype=torch.long)
    a = model.generate(start, 12, top_k=3, generator=torch.Generator().manual_seed(0))
    b = model.generate(start, 12, top_k=3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 13) and torch.equal(a, b)  # 13 > block_size: the context was cropped
    assert model.training  # restored after sampling in eval mode
    greedy = model.generate(start, 4, temperature=0)
    with torch.no_grad():
        first = model.eval()(start)[0][:, -1].argmax(-1)
    assert torch.equal(greedy[:, 1], first)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(start, 1, temperature=-1)


def test_mlp_and_cnn_shapes():
    x = torch.randn(5, 1, 8, 8)
    mlp = MLP(64, hidden=(32, 16), out_features=10, activation="gelu", dropout=0.1)
    assert mlp(x).shape == (5, 10)
    assert sum(isinstance(m, torch.nn.Linear) for m in mlp.modules()) == 3
    cnn = CNN(num_classes=10)
    assert cnn(x).shape == (5, 10)
    assert cnn(x.view(5, 64)).shape == (5, 10)  # sklearn's flat rows are accepted
    with pytest.raises(ValueError, match="activation"):
        MLP(4, activation="swish-ish")
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        cnn(torch.randn(5, 3, 8, 8))
