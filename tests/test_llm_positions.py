"""Position schemes of lesson 14 (``bigtrain_lab.llm.positions``): RoPE, sinusoidal, ALiBi."""

import math

import pytest
import torch

from bigtrain_lab.llm.positions import (
    alibi_bias,
    alibi_slopes,
    apply_rope,
    rope_angles,
    rope_relative_scores,
    sinusoidal_encoding,
    sinusoidal_table,
)


def _rope_by_complex_numbers(x, positions, base=10000.0):
    """Half-split RoPE as complex multiplication: z_i = x_i + j x_{i+D/2}, times exp(j theta_i)."""
    D = x.shape[-1]
    z = torch.complex(x[..., : D // 2].double(), x[..., D // 2:].double())
    theta = torch.as_tensor(positions, dtype=torch.float64)[:, None] * base ** (
        -torch.arange(0, D, 2, dtype=torch.float64) / D)
    r = z * torch.polar(torch.ones_like(theta), theta)
    return torch.cat((r.real, r.imag), dim=-1)


def _rope_hf_llama(x, positions, base=10000.0):
    """Hugging Face Llama's rotate_half form: x * cos + rotate_half(x) * sin, angles repeated twice."""
    D = x.shape[-1]
    inv = 1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    freqs = torch.as_tensor(positions, dtype=torch.float64)[:, None] * inv[None]
    emb = torch.cat((freqs, freqs), dim=-1)
    x = x.double()
    rot = torch.cat((-x[..., D // 2:], x[..., : D // 2]), dim=-1)
    return x * emb.cos() + rot * emb.sin()


def test_apply_rope_matches_complex_rotation_and_hf_llama():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 8, generator=g, dtype=torch.float64)
    pos = torch.tensor([0, 1, 7, 100, 3])
    got = apply_rope(x, pos)
    assert got.dtype == torch.float64 and got.shape == x.shape
    torch.testing.assert_close(got, _rope_by_complex_numbers(x, pos))
    torch.testing.assert_close(got, _rope_hf_llama(x, pos))
    torch.testing.assert_close(apply_rope(x, pos.double() + 0.5, base=500.0),
                               _rope_by_complex_numbers(x, pos.double() + 0.5, base=500.0))


def test_apply_rope_position_zero_is_identity_and_norms_are_kept():
    x = torch.randn(4, 6)
    torch.testing.assert_close(apply_rope(x, torch.zeros(4, dtype=torch.long)), x)
    out = apply_rope(x, torch.arange(4))
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))


def test_apply_rope_low_precision_in_float32_and_input_untouched():
    x = torch.randn(3, 16).to(torch.bfloat16)
    before = x.clone()
    out = apply_rope(x, [0, 5, 2000])
    assert out.dtype == torch.bfloat16
    assert torch.equal(x, before)
    expected = _rope_by_complex_numbers(x.float(), [0, 5, 2000]).to(torch.bfloat16)
    assert torch.equal(out, expected)


def test_apply_rope_errors():
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.randn(3, 5), torch.arange(3))
    with pytest.raises(ValueError, match="positions"):
        apply_rope(torch.randn(3, 4), torch.arange(4))
    with pytest.raises(ValueError, match="1-D"):
        apply_rope(torch.randn(3, 4), torch.zeros(3, 1))
    with pytest.raises(TypeError):
        apply_rope(torch.ones(3, 4, dtype=torch.long), torch.arange(3))


def test_rope_scores_depend_only_on_relative_position():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(16, generator=g), torch.randn(16, generator=g)
    same_offset = rope_relative_scores(q, k, [(5, 2), (13, 10), (1003, 1000)])
    torch.testing.assert_close(same_offset, same_offset[:1].expand(3), atol=1e-9, rtol=1e-9)
    other = rope_relative_scores(q, k, [(5, 2), (5, 4)])
    assert not torch.isclose(other[0], other[1])
    assert rope_angles([2], 4).shape == (1, 2)


def test_sinusoidal_table_values():
    pe = sinusoidal_table(50, 6)
    assert pe.shape == (50, 6) and pe.dtype == torch.float32
    t = torch.arange(50, dtype=torch.float64)
    for i in range(3):
        w = 10000.0 ** (-2 * i / 6)
        torch.testing.assert_close(pe[:, 2 * i].double(), torch.sin(t * w), atol=1e-6, rtol=0)
        torch.testing.assert_close(pe[:, 2 * i + 1].double(), torch.cos(t * w), atol=1e-6, rtol=0)
    assert sinusoidal_table(4, 5).shape == (4, 5)
    torch.testing.assert_close(sinusoidal_encoding(torch.arange(10, 14), 6), pe[10:14])


def test_alibi_slopes_as_in_press_et_al():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(h + 1) for h in range(8)]))
    torch.testing.assert_close(alibi_slopes(4), torch.tensor([2.0 ** -(2 * (h + 1)) for h in range(4)]))
    # 6 heads: the 4 slopes of 4 heads, then slopes 1 and 3 of 8 heads (1/2, 1/8)
    torch.testing.assert_close(alibi_slopes(6), torch.tensor([2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8,
                                                              2.0 ** -1, 2.0 ** -3]))
    with pytest.raises(ValueError):
        alibi_slopes(0)


def test_alibi_bias_causal_and_bottom_right():
    bias = alibi_bias(2, 3)
    slopes = alibi_slopes(2)
    assert bias.shape == (2, 3, 3)
    assert torch.isinf(bias[:, 0, 1:]).all() and (bias[:, 0, 1:] < 0).all()
    torch.testing.assert_close(bias[:, 2, :], -slopes[:, None] * torch.tensor([2.0, 1.0, 0.0]))
    last = alibi_bias(2, 1, 5)  # one new query at position 4 after 4 cached keys
    torch.testing.assert_close(last[:, 0], -slopes[:, None] * torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0]))
    torch.testing.assert_close(alibi_bias(2, 5)[:, -1:], last)
    sym = alibi_bias(2, 3, causal=False)
    assert torch.isfinite(sym).all() and torch.equal(sym, sym.transpose(1, 2))
    with pytest.raises(ValueError):
        alibi_bias(2, 4, 3)
    assert math.isclose(float(alibi_bias(1, 2)[0, 1, 0]), -2.0 ** -8)
