"""The KV cache of lesson 14 (``bigtrain_lab.llm.kv_cache``): one attention step, the cache object, its size."""

import pytest
import torch
import torch.nn.functional as F

from bigtrain_lab.llm.kv_cache import KVCache, attention_step_with_kv_cache, kv_cache_bytes


def _qkv(shape_q, S, Ev, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    *lead, T, E = shape_q
    return (torch.randn(*lead, T, E, generator=g, dtype=dtype), torch.randn(*lead, S, E, generator=g, dtype=dtype),
            torch.randn(*lead, S, Ev, generator=g, dtype=dtype))


def test_step_by_step_equals_full_causal_sdpa():
    q, k, v = _qkv((2, 3, 9, 4), 9, 5)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    cache, outs = None, []
    for a, b in [(0, 4), (4, 5), (5, 6), (6, 9)]:  # a prefill of 4, single tokens, then a chunk of 3
        out, cache = attention_step_with_kv_cache(q[..., a:b, :], k[..., a:b, :], v[..., a:b, :], cache)
        assert out.shape == (2, 3, b - a, 5)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, dim=-2), full)
    torch.testing.assert_close(cache["k"], k)
    torch.testing.assert_close(cache["v"], v)


def test_step_leaves_the_old_cache_alone():
    q, k, v = _qkv((1, 3, 4), 3, 4, seed=1)
    old = {"k": k[..., :2, :].clone(), "v": v[..., :2, :].clone()}
    snapshot = {name: t.clone() for name, t in old.items()}
    out, new = attention_step_with_kv_cache(q[..., 2:, :], k[..., 2:, :], v[..., 2:, :], old)
    assert all(torch.equal(old[n], snapshot[n]) for n in old)
    assert new["k"].shape == (1, 3, 4) and new is not old
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True)[..., 2:, :])


def test_step_errors():
    q, k, v = _qkv((2, 3, 4), 3, 4)
    with pytest.raises(ValueError):
        attention_step_with_kv_cache(q, k[..., :2, :], v[..., :2, :], None)
    with pytest.raises(ValueError):
        attention_step_with_kv_cache(q, k, v, {"k": torch.zeros(2, 2, 5), "v": torch.zeros(2, 2, 4)})
    with pytest.raises(TypeError):
        attention_step_with_kv_cache(q, k, v, {"keys": k})
    with pytest.raises(TypeError):
        attention_step_with_kv_cache(q.long(), k, v, None)


def test_kv_cache_update_crop_and_bytes():
    cache = KVCache(2)
    assert cache.length == 0 and cache.nbytes() == 0
    g = torch.Generator().manual_seed(0)
    ks = [torch.randn(3, 2, 5, 8, generator=g) for _ in range(2)]
    for layer in range(2):
        k_all, _ = cache.update(layer, ks[layer][..., :4, :], ks[layer][..., :4, :] * 2)
        assert k_all.shape == (3, 2, 4, 8)
    for layer in range(2):
        k_all, v_all = cache.update(layer, ks[layer][..., 4:, :], ks[layer][..., 4:, :] * 2)
        torch.testing.assert_close(k_all, ks[layer])
        torch.testing.assert_close(v_all, ks[layer] * 2)
    assert cache.length == len(cache) == 5
    assert cache.nbytes() == kv_cache_bytes(n_layer=2, n_kv_head=2, head_dim=8, tokens=5, batch=3,
                                            bytes_per_element=4)
    cache.crop(3)
    assert cache.length == 3
    torch.testing.assert_close(cache.keys[1], ks[1][..., :3, :])
    with pytest.raises(ValueError):
        cache.crop(4)
    cache.crop(0)
    assert cache.length == 0 and cache.nbytes() == 0
    with pytest.raises(IndexError):
        cache.update(2, ks[0], ks[0])
    with pytest.raises(ValueError):
        KVCache(0)


def test_kv_cache_bytes_formula():
    # Llama-2-70B: 80 layers, 8 KV heads of 128 dims, fp16: 320 KiB per token (2.5 MiB with 64 heads)
    assert kv_cache_bytes(n_layer=80, n_kv_head=8, head_dim=128, tokens=1) == 327_680
    assert kv_cache_bytes(n_layer=80, n_kv_head=64, head_dim=128, tokens=1) == 8 * 327_680
    assert kv_cache_bytes(n_layer=2, n_kv_head=3, head_dim=4, tokens=5, batch=6, bytes_per_element=4) == 5760
    assert kv_cache_bytes(n_layer=1, n_kv_head=1, head_dim=1, tokens=0) == 0
    with pytest.raises(ValueError):
        kv_cache_bytes(n_layer=0, n_kv_head=1, head_dim=1, tokens=1)
    with pytest.raises(ValueError):
        kv_cache_bytes(n_layer=1, n_kv_head=1, head_dim=1, tokens=1.5)


def test_generation_tokens_per_s_runs_both_ways():
    from bigtrain_lab.llm.kv_cache import generation_tokens_per_s
    from bigtrain_lab.llm.model import LLM, LLMConfig

    torch.manual_seed(0)
    model = LLM(LLMConfig(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=8, position="rope"))
    prompt = torch.zeros(1, 3, dtype=torch.long)
    for use_cache in (True, False):
        speeds = generation_tokens_per_s(model, prompt, [1, 4], use_cache=use_cache)
        assert len(speeds) == 2 and all(s > 0 for s in speeds)
    with pytest.raises(ValueError):
        generation_tokens_per_s(model, prompt, [0])
