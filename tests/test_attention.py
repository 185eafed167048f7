"""bigtrain_lab.attention against torch's SDPA and nn.MultiheadAttention."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.attention import (
    BankBiLSTMTagger,
    MultiHeadAttention,
    attention_maps,
    attention_weights,
    causal_mask,
    merge_heads,
    permutation_equivariance_error,
    scaled_dot_product_attention,
    split_heads,
)
from bigtrain_lab.models import GPTConfig, TinyGPT


def qkv(*batch, L=5, S=5, E=8, Ev=None, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, L, E, generator=g, dtype=dtype), torch.randn(*batch, S, E, generator=g, dtype=dtype),
            torch.randn(*batch, S, Ev or E, generator=g, dtype=dtype))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("batch", "L", "S", "E", "Ev"),
                         [((), 4, 4, 8, 8), ((2, 3), 6, 6, 4, 4), ((2,), 3, 7, 5, 2), ((1,), 6, 3, 16, 3)])
def test_sdpa_matches_torch(causal, batch, L, S, E, Ev):
    q, k, v = qkv(*batch, L=L, S=S, E=E, Ev=Ev)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, causal=causal), expected)


def test_sdpa_with_boolean_mask_and_scale_matches_torch():
    q, k, v = qkv(2, L=4, S=6)
    mask = torch.rand(4, 6, generator=torch.Generator().manual_seed(1)) > 0.4
    mask[:, 0] = True
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask=mask, scale=0.3), expected)


def test_large_scores_do_not_overflow():
    q, k, v = qkv(L=4, S=4)
    out = scaled_dot_product_attention(q * 100, k * 100, v, causal=True)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q * 100, k * 100, v, is_causal=True))


def test_weights_are_a_distribution_and_respect_the_mask():
    q, k, _ = qkv(3, L=5, S=5)
    w = attention_weights(q, k, causal=True)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 5, dtype=torch.float64))
    assert (w.masked_select(~causal_mask(5)) == 0).all()


def test_causal_mask_alignments():
    assert causal_mask(2, 4).tolist() == [[True, False, False, False], [True, True, False, False]]
    assert causal_mask(2, 4, align="bottom-right").tolist() == [[True, True, True, False], [True, True, True, True]]
    assert torch.equal(causal_mask(4), causal_mask(4, align="bottom-right"))
    # torch's is_causal uses the top-left one
    q, k, v = qkv(L=2, S=4)
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v, is_causal=True),
                               scaled_dot_product_attention(q, k, v, mask=causal_mask(2, 4)))
    with pytest.raises(ValueError, match="align"):
        causal_mask(2, 2, align="diagonal")
    with pytest.raises(ValueError):
        causal_mask(0)


def test_bad_inputs_raise():
    q, k, v = qkv(L=3, S=4, E=8)
    with pytest.raises(ValueError, match="last dim"):
        scaled_dot_product_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="positions"):
        scaled_dot_product_attention(q, k, v[:3])
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(q, k, v, mask=torch.zeros(3, 4))


def test_split_and_merge_heads_round_trip():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[:, 1], x[..., 4:8])
    torch.testing.assert_close(merge_heads(heads), x)
    with pytest.raises(ValueError):
        split_heads(x, 5)


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_self_attention_matches_nn_multiheadattention(causal):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, batch_first=True).double()
    ours = MultiHeadAttention.from_torch(mha)
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    # nn.MultiheadAttention's boolean attn_mask is True where attending is NOT allowed
    mask = ~causal_mask(7) if causal else None
    expected, expected_w = mha(x, x, x, attn_mask=mask, average_attn_weights=False)
    out, w = ours(x, causal=causal, return_attention=True)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(w, expected_w)


def test_cross_attention_matches_nn_multiheadattention_with_other_kdim():
    torch.manual_seed(1)
    mha = nn.MultiheadAttention(12, 3, kdim=5, vdim=7, batch_first=True).double()
    ours = MultiHeadAttention.from_torch(mha)
    x = torch.randn(2, 4, 12, dtype=torch.float64)
    ctx_k = torch.randn(2, 9, 5, dtype=torch.float64)
    ctx_v = torch.randn(2, 9, 7, dtype=torch.float64)
    expected, _ = mha(x, ctx_k, ctx_v)
    q = split_heads(ours.q_proj(x), 3)
    k = split_heads(ours.k_proj(ctx_k), 3)
    v = split_heads(ours.v_proj(ctx_v), 3)
    out = ours.out_proj(merge_heads(scaled_dot_product_attention(q, k, v)))
    torch.testing.assert_close(out, expected)


def test_cross_attention_shapes():
    mha = MultiHeadAttention(8, 2, kdim=6, vdim=6)
    out, w = mha(torch.randn(2, 3, 8), torch.randn(2, 10, 6), return_attention=True)
    assert out.shape == (2, 3, 8) and w.shape == (2, 2, 3, 10)
    assert mha(torch.randn(2, 3, 8), torch.randn(2, 10, 6))[1] is None


def test_from_torch_rejects_unsupported():
    with pytest.raises(ValueError):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2))  # batch_first=False
    with pytest.raises(ValueError):
        MultiHeadAttention(10, 3)


def test_attention_maps_of_tinygpt():
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16)).train()
    idx = torch.randint(0, 20, (3, 8))
    maps = attention_maps(model, idx)
    assert maps.shape == (2, 3, 2, 8, 8)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 3, 2, 8))
    assert (maps.masked_select(~causal_mask(8)) == 0).all()
    assert model.training  # the mode is put back


def test_self_attention_is_permutation_equivariant_and_the_bilstm_is_not():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).double()
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    assert permutation_equivariance_error(lambda t: mha(t)[0], x, perm) < 1e-12
    lstm = BankBiLSTMTagger(vocab_size=30).double()
    idx = torch.randint(0, 30, (2, 6))
    assert permutation_equivariance_error(lstm, idx, perm) > 1e-3
    assert not any("attn" in name.lower() or "attention" in name.lower() for name, _ in lstm.named_modules())
    with pytest.raises(ValueError):
        permutation_equivariance_error(lstm, idx, torch.tensor([0, 0, 1, 2, 3, 4]))
