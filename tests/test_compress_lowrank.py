"""Truncated SVD factorization and LoRA adapters."""

import pytest
import torch
import torch.nn as nn

from bigtrain_lab.compress import (
    LoRALinear,
    add_lora,
    energy_kept,
    factorize_linears,
    low_rank_factorize,
    merge_lora,
)
from bigtrain_lab.models import MLP, GPTConfig, TinyGPT


def test_factorization_is_the_best_rank_r_approximation():
    torch.manual_seed(0)
    layer = nn.Linear(12, 9)
    for rank in (1, 3, 9):
        seq = low_rank_factorize(layer, rank)
        product = (seq[1].weight @ seq[0].weight).detach()
        s = torch.linalg.svdvals(layer.weight.detach())
        err = torch.linalg.matrix_norm(product - layer.weight.detach(), ord=2)
        expected = s[rank] if rank < len(s) else 0.0  # Eckart-Young: the (r+1)-th singular value
        assert float(err) == pytest.approx(float(expected), abs=1e-5)
        assert torch.equal(seq[1].bias, layer.bias) and seq[0].bias is None
    x = torch.randn(4, 12)
    assert torch.allclose(low_rank_factorize(layer, 9)(x), layer(x), atol=1e-5)
    assert energy_kept(layer.weight, 9) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        low_rank_factorize(layer, 10)
    with pytest.raises(TypeError):
        low_rank_factorize(nn.Conv2d(1, 1, 1), 1)


def test_factorize_linears_only_where_it_saves():
    torch.manual_seed(0)
    model = MLP(64, (256, 256), 10)
    before = sum(p.numel() for p in model.parameters())
    factorize_linears(model, 16)
    kinds = [type(m).__name__ for m in model.net]
    assert kinds.count("Sequential") == 2  # 64->256 and 256->256; 256->10 would grow
    assert sum(p.numel() for p in model.parameters()) < before / 2


def test_lora_starts_at_base_trains_only_adapters_and_merges():
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    lora = LoRALinear(base, rank=2, alpha=4.0)
    x = torch.randn(3, 6)
    assert torch.equal(lora(x), base(x))
    assert sorted(n for n, p in lora.named_parameters() if p.requires_grad) == ["A", "B"]
    with torch.no_grad():
        lora.B.normal_()
    expected = base(x) + 2.0 * (x @ lora.A.T @ lora.B.T)
    assert torch.allclose(lora(x), expected, atol=1e-6)
    assert torch.allclose(lora.merge()(x), expected, atol=1e-5)
    lora(x).sum().backward()
    assert base.weight.grad is None and lora.A.grad is not None


def test_add_lora_to_tinygpt():
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16))
    idx = torch.randint(0, 20, (2, 8))
    before = model(idx)[0]
    add_lora(model, rank=4, alpha=8.0)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 2 * (4 * (16 + 48) + 4 * (16 + 64))
    assert torch.allclose(model(idx)[0], before)
    for m in model.modules():
        if isinstance(m, LoRALinear):
            with torch.no_grad():
                m.B.normal_()
    adapted = model(idx)[0]
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert torch.allclose(model(idx)[0], adapted, atol=1e-4)
    with pytest.raises(ValueError):
        add_lora(MLP(4, (4,), 2), 2, 2.0)
