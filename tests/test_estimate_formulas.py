"""estimate.formulas: the references of the estimate exercises and the pieces the planner adds."""

import math

import pytest

from bigtrain_lab.estimate import formulas as f
from bigtrain_lab.llm.kv_cache import kv_cache_bytes


def test_training_flops_is_6nd_and_days_follow():
    assert f.training_flops(7e9, 1e12) == 6 * 7e9 * 1e12
    days = f.training_days(70e9, 2e12, 2048, 312e12, 0.43)
    assert days == pytest.approx(6 * 70e9 * 2e12 / (2048 * 312e12 * 0.43) / 86400)
    assert f.training_days(1e9, 1e9, 1, 1e12, 0.5) == pytest.approx(2 * f.training_days(1e9, 1e9, 1, 1e12, 1.0))
    for bad in (0.0, 1.01, -0.1):
        with pytest.raises(ValueError, match="mfu"):
            f.training_days(1e9, 1e9, 8, 1e12, bad)


def test_memory_per_gpu_zero_stages_match_the_zero_paper():
    # Rajbhandari et al. 2020, figure 1: 7.5B parameters, 64 GPUs -> 120, 31.4, 16.6, 1.9 GB
    gb = [f.training_memory_per_gpu(7.5e9, dp=64, zero_stage=z) / 1e9 for z in range(4)]
    assert gb == pytest.approx([120, 31.40625, 16.640625, 1.875])
    assert f.training_memory_per_gpu(7e9, dp=1, zero_stage=3) == f.training_memory_per_gpu(7e9)
    assert f.training_memory_per_gpu(70e9, tp=8, pp=4) == pytest.approx(16 * 70e9 / 32)
    with pytest.raises(ValueError):
        f.training_memory_per_gpu(1e9, zero_stage=4)


def test_ring_allreduce():
    assert f.allreduce_seconds(1e9, 1, 1e9, 1e-3) == 0
    assert f.allreduce_seconds(1e9, 2, 1e9) == pytest.approx(1.0)  # 2 (n-1)/n M / B = M / B at n = 2
    assert f.allreduce_seconds(0, 8, 1e9, 1e-5) == pytest.approx(14e-5)
    assert f.allreduce_seconds(1e9, 1024, 1e9) == pytest.approx(2 * 1023 / 1024)


def test_activations_korthikanti():
    s, b, h, a = 2048, 1, 12288, 96
    assert f.activation_bytes_per_layer(s, b, h, a) == s * b * h * (34 + 5 * a * s / h)
    tp8 = f.activation_bytes_per_layer(s, b, h, a, tp=8)
    assert tp8 == pytest.approx(s * b * h * (10 + 24 / 8 + 5 * a * s / (h * 8)))
    sp = f.activation_bytes_per_layer(s, b, h, a, tp=8, sequence_parallel=True, recompute="selective")
    assert sp == pytest.approx(34 * s * b * h / 8)
    assert f.activation_bytes_per_layer(s, b, h, a, recompute="full") == 2 * s * b * h


def test_bubble():
    assert f.bubble_fraction(1, 8) == 0
    assert f.bubble_fraction(4, 4) == pytest.approx(3 / 7)


def test_transformer_params_of_published_shapes():
    assert f.transformer_params(96, 12288, 51200) == 12 * 96 * 12288**2 + 51200 * 12288  # GPT-3: 174.6B
    llama70 = f.transformer_params(80, 8192, 32000, n_heads=64, n_kv_heads=8, ffn_hidden=28672, gated_mlp=True,
                                   tied_embeddings=False)
    assert llama70 / 1e9 == pytest.approx(68.98, abs=0.01)  # Llama-2 70B: 68.98B without the norms
    llama7 = f.transformer_params(32, 4096, 32000, n_heads=32, ffn_hidden=11008, gated_mlp=True,
                                  tied_embeddings=False)
    assert llama7 / 1e9 == pytest.approx(6.738, abs=0.001)  # Llama-2 7B: 6.74B
    with pytest.raises(ValueError):
        f.transformer_params(2, 64, 100, n_heads=3)
    with pytest.raises(ValueError):
        f.transformer_params(2, 64, 100, n_heads=4, n_kv_heads=3)


def test_flops_per_token_is_megatrons_model_flops():
    # Korthikanti et al. 2022: 72 B s L h^2 (1 + s / 6h + V / 12 h L) per step of B sequences
    L, h, s, V, B = 96, 12288, 2048, 51200, 64
    n = f.transformer_params(L, h, V)
    megatron = 72 * B * s * L * h**2 * (1 + s / (6 * h) + V / (12 * h * L))
    assert B * s * f.flops_per_token(n, L, h, s) == pytest.approx(megatron)
    assert f.flops_per_token(1e9, 1, 1, 1) == pytest.approx(6e9 + 12)
    with pytest.raises(ValueError):
        f.flops_per_token(1e9, 0, 1, 1)


def test_kv_cache_is_the_llm_function():
    assert f.kv_cache_bytes is kv_cache_bytes
    assert math.isclose(f.kv_cache_bytes(n_layer=32, n_kv_head=32, head_dim=128, tokens=4096), 2 * 32 * 32 * 128
                        * 4096 * 2)
