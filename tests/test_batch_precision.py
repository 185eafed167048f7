"""bigtrain_lab.batch and bigtrain_lab.precision: accumulation against the big batch, float formats against torch, the helpers' errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bigtrain_lab.batch import accumulated_gradients, max_abs_difference, train_mlp_with_batch_size
from bigtrain_lab.models import GPTConfig, TinyGPT
from bigtrain_lab.precision import float_formats, fp16_flush_fraction, time_train_steps


def tiny():
    torch.manual_seed(0)
    return TinyGPT(GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32))


def batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 40, (n, 16), generator=g), torch.randint(0, 40, (n, 16), generator=g)


def test_accumulation_equals_the_big_batch_and_the_mistake_is_k_times():
    model = tiny()
    x, y = batch(12)
    big = accumulated_gradients(model, [(x, y)])
    micro = [(x[i:i + 3], y[i:i + 3]) for i in range(0, 12, 3)]
    assert max_abs_difference(big, accumulated_gradients(model, micro)) < 1e-6
    unscaled = accumulated_gradients(model, micro, scale_loss=False)
    for name in big:
        torch.testing.assert_close(unscaled[name], 4 * big[name], rtol=1e-4, atol=1e-7)
    assert all(p.grad is None for p in model.parameters())


def test_accumulated_gradients_match_autograd_directly():
    model = tiny()
    x, y = batch(4)
    expected = torch.autograd.grad(model(x, y)[1], list(model.parameters()))
    got = accumulated_gradients(model, [(x, y)])
    for (name, _), g in zip(model.named_parameters(), expected, strict=True):
        torch.testing.assert_close(got[name], g)
    with pytest.raises(ValueError):
        accumulated_gradients(model, [])


def test_max_abs_difference():
    a = {"w": torch.tensor([1.0, 2.0])}
    assert max_abs_difference(a, {"w": torch.tensor([1.0, 2.5])}) == 0.5
    with pytest.raises(ValueError):
        max_abs_difference(a, {"v": torch.tensor([1.0])})


def test_float_formats_are_torchs():
    formats = {f.name: f for f in float_formats()}
    assert (formats["fp16"].exponent_bits, formats["fp16"].mantissa_bits) == (5, 10)
    assert (formats["bf16"].exponent_bits, formats["bf16"].mantissa_bits) == (8, 7)
    assert (formats["fp32"].exponent_bits, formats["fp32"].mantissa_bits) == (8, 23)
    assert formats["fp16"].max == torch.finfo(torch.float16).max == 65504
    assert formats["fp16"].smallest_subnormal == 2.0**-24
    assert torch.tensor(formats["fp16"].smallest_subnormal).half().item() > 0
    assert torch.tensor(formats["fp16"].smallest_subnormal / 2).half().item() == 0  # ties round to even: 0
    assert formats["bf16"].smallest_subnormal == 2.0**-133


def test_fp16_flush_fraction():
    values = torch.tensor([1.0, 1e-3, 1e-8, 2.0**-26, 0.0, -1e-9])
    assert fp16_flush_fraction(values) == pytest.approx(3 / 5)  # 1e-8, 2**-26, -1e-9 (zeros are not counted)
    assert fp16_flush_fraction(values, 2.0**16) == 0
    assert fp16_flush_fraction(torch.zeros(3)) == 0
    with pytest.raises(ValueError):
        fp16_flush_fraction(values, 0)


def test_time_train_steps_counts_and_trains():
    model = tiny()
    before = [p.detach().clone() for p in model.parameters()]
    times = time_train_steps(model, batch(2), steps=3, warmup=1)
    assert len(times) == 3 and all(t > 0 for t in times)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert len(time_train_steps(model, batch(2), steps=1, warmup=0, precision="bf16")) == 1
    with pytest.raises(ValueError):
        time_train_steps(model, batch(2), precision="fp16")


def test_train_mlp_with_batch_size_is_deterministic_and_counts_steps():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 5))
    y = (X[:, 0] > 0).astype(int)
    run = train_mlp_with_batch_size(X, y, X[:20], y[:20], batch_size=32, lr=0.1, epochs=3, hidden=(8,))
    again = train_mlp_with_batch_size(X, y, X[:20], y[:20], batch_size=32, lr=0.1, epochs=3, hidden=(8,))
    assert run.steps == 3 * 4 and run.val_accuracy == again.val_accuracy
    assert run.train_loss < F.cross_entropy(torch.zeros(100, 2), torch.as_tensor(y)).item()
    with pytest.raises(ValueError):
        train_mlp_with_batch_size(X, y, X, y, batch_size=0, lr=0.1, epochs=1)
