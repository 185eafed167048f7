"""bigtrain_lab.llm.flash: the online softmax and attention over key blocks, against torch's SDPA."""

import math

import pytest
import torch
import torch.nn.functional as F

from bigtrain_lab.llm.flash import (
    LargestNewTensor,
    attention_memory,
    naive_attention,
    online_softmax,
    online_softmax_attention,
    online_softmax_states,
    peak_memory,
)


def qkv(*batch, L=6, S=6, E=8, Ev=None, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, L, E, generator=g, dtype=dtype), torch.randn(*batch, S, E, generator=g, dtype=dtype),
            torch.randn(*batch, S, Ev or E, generator=g, dtype=dtype))


def test_online_softmax_states_follow_the_recurrence_and_give_logsumexp():
    x = torch.tensor([1.0, 3.0, -2.0, 5.0, 0.5], dtype=torch.float64)
    states = online_softmax_states(list(x.split(2)))
    assert [m for m, _ in states] == [3.0, 5.0, 5.0]
    m, norm = states[-1]
    assert m + math.log(norm) == pytest.approx(float(torch.logsumexp(x, 0)), rel=1e-12)
    m1, n1 = states[0]
    assert n1 == pytest.approx(math.exp(1 - 3) + 1)
    # a later block raising the max rescales what was summed: n2 = n1 * exp(3 - 5) + exp(-7) + exp(0)
    assert states[1][1] == pytest.approx(n1 * math.exp(m1 - 5) + math.exp(-7) + 1)
    torch.testing.assert_close(online_softmax(list(x.split(2))), torch.softmax(x, 0))


def test_online_softmax_does_not_overflow_and_rejects_bad_blocks():
    x = torch.tensor([1000.0, 999.0, 1001.0])
    torch.testing.assert_close(online_softmax([x[:1], x[1:]]), torch.softmax(x.double(), 0))
    with pytest.raises(TypeError, match="list of 1-D blocks"):
        online_softmax(x)
    with pytest.raises(ValueError, match="non-empty"):
        online_softmax([])
    with pytest.raises(ValueError, match="1-D"):
        online_softmax_states([torch.ones(2, 2)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("batch", "L", "S", "Ev"), [((), 9, 9, 8), ((2, 3), 5, 11, 3), ((2,), 10, 4, 8)])
@pytest.mark.parametrize("block_size", [1, 7, 64])
def test_online_attention_equals_sdpa(dtype, causal, batch, L, S, Ev, block_size):
    q, k, v = qkv(*batch, L=L, S=S, Ev=Ev, dtype=dtype)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    got = online_softmax_attention(q, k, v, block_size=block_size, causal=causal)
    assert got.dtype == dtype and got.shape == expected.shape
    tol = {"atol": 1e-6, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-12}
    torch.testing.assert_close(got, expected, **tol)
    torch.testing.assert_close(naive_attention(q, k, v, causal), expected, **tol)


def test_online_attention_broadcasts_batch_dims_keeps_half_dtypes_and_large_scores():
    q, k, v = qkv(2, 1, L=5, S=7)
    k2, v2 = k.expand(2, 3, 7, 8), v.expand(2, 3, 7, 8)
    torch.testing.assert_close(online_softmax_attention(q, k2, v2, block_size=3),
                               F.scaled_dot_product_attention(q.expand(2, 3, 5, 8), k2, v2))
    qh, kh, vh = (t.to(torch.bfloat16) for t in qkv(L=4, S=6))
    out = online_softmax_attention(qh, kh, vh, block_size=4, causal=True)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), F.scaled_dot_product_attention(qh.float(), kh.float(), vh.float(),
                                                                           is_causal=True), atol=1e-2, rtol=1e-2)
    q, k, v = qkv(L=6, S=6)
    out = online_softmax_attention(q * 200, k * 200, v, block_size=2, causal=True)  # scores in the tens of thousands
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q * 200, k * 200, v, is_causal=True))


def test_inputs_are_not_modified():
    q, k, v = qkv(L=5, S=8)
    before = [t.clone() for t in (q, k, v)]
    online_softmax_attention(q, k, v, block_size=3, causal=True)
    for t, b in zip((q, k, v), before, strict=True):
        assert torch.equal(t, b)


def test_the_score_matrix_is_never_materialised():
    L = S = 128
    q, k, v = qkv(2, L=L, S=S, E=4, dtype=torch.float32)
    with LargestNewTensor() as naive:
        naive_attention(q, k, v, True)
    assert naive.numel == 2 * L * S and naive.peak >= 2 * L * S * 4  # the naive version does hold (batch, L, S)
    for causal in (False, True):
        with LargestNewTensor() as watch:
            online_softmax_attention(q, k, v, block_size=16, causal=causal)
        assert watch.numel <= 2 * L * 16, (watch.shape, watch.op)  # never more than one (batch, L, block) block
        assert watch.peak < naive.peak / 3


def test_bad_input():
    q, k, v = qkv(L=4, S=5)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="block_size must be >= 1"):
            online_softmax_attention(q, k, v, block_size=bad)
    for bad in (2.0, True, None):
        with pytest.raises(TypeError, match="block_size must be an int"):
            online_softmax_attention(q, k, v, block_size=bad)
    with pytest.raises(ValueError, match="feature dim E"):
        online_softmax_attention(q, k[..., :3], v, block_size=2)
    with pytest.raises(ValueError, match="same number of positions"):
        online_softmax_attention(q, k, v[:4], block_size=2)
    with pytest.raises(ValueError, match="at least 2 dims"):
        online_softmax_attention(q[0], k, v, block_size=2)
    with pytest.raises(ValueError, match="at least one position"):
        online_softmax_attention(q, k[:0], v[:0], block_size=2)
    with pytest.raises(ValueError, match="do not broadcast"):
        online_softmax_attention(q.expand(2, 4, 8), k.expand(3, 5, 8), v, block_size=2)
    with pytest.raises(TypeError, match="floating-point"):
        online_softmax_attention(q.long(), k, v, block_size=2)
    with pytest.raises(TypeError, match="torch.Tensor"):
        naive_attention(q.tolist(), k, v)


def test_peak_memory_and_attention_memory_rows():
    q, k, v = qkv(1, 1, L=256, S=256, E=16, dtype=torch.float32)
    naive = peak_memory(lambda: naive_attention(q, k, v))
    online = peak_memory(lambda: online_softmax_attention(q, k, v, block_size=16))
    assert naive >= 256 * 256 * 4 > online
    assert peak_memory(lambda: naive_attention(q, k, v), method="allocator") >= 256 * 256 * 4
    with pytest.raises(ValueError, match="method"):
        peak_memory(lambda: None, method="rss")
    rows = attention_memory([32, 64], head_dim=8, block_size=16, methods=("naive", "online"))
    assert [(r["length"], r["method"]) for r in rows] == [(32, "naive"), (32, "online"), (64, "naive"), (64, "online")]
    naive64 = next(r for r in rows if r["length"] == 64 and r["method"] == "naive")
    assert naive64["largest_shape"][-2:] == (64, 64) and naive64["seconds"] > 0
    assert attention_memory([64], head_dim=8, methods=("naive",), max_naive_length=32) == []
    with pytest.raises(ValueError, match="methods"):
        attention_memory([8], methods=("flash",))
