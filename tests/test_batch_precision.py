"""bigtrain_lab.batch and bigtrain_lab.precision: accumulation against the big batch, float formats against torch, the helpers' errors."""

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bigtrain_lab.batch import (
    accumulated_gradients,
    keras_model_compile,
    max_abs_difference,
    train_mlp_with_batch_size,
)
from bigtrain_lab.models import GPTConfig, TinyGPT
from bigtrain_lab.precision import (
    CpuInfo,
    cpu_fp32_flops_per_cycle,
    cpu_peak_flops,
    float_formats,
    fp16_flush_fraction,
    parse_cpuinfo,
    profile_step_ms,
    time_train_steps,
)


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


def test_fp16_rounds_half_the_smallest_subnormal_to_zero_and_anything_above_it_up():
    tiny_ = float_formats()[1].smallest_subnormal
    half = tiny_ / 2  # 2**-25
    assert torch.tensor(half).half().item() == 0  # the tie goes to the even neighbour, 0
    assert torch.tensor(half * 1.0001).half().item() == tiny_  # just above the tie: up
    assert torch.tensor(half * 0.9999).half().item() == 0
    assert torch.tensor(3 * half).half().item() == 2 * tiny_  # 1.5 x 2**-24: a tie between 1 and 2 -> 2 (even)


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


def test_profile_step_ms_splits_the_step_and_silences_the_profiler(monkeypatch):
    monkeypatch.delenv("KINETO_LOG_LEVEL", raising=False)
    split = profile_step_ms(tiny, batch(2), steps=1, warmup=1)
    assert list(split) == ["matmul", "attention", "casts_copies", "other"]
    assert split["matmul"] > 0 and all(v >= 0 for v in split.values())
    assert os.environ["KINETO_LOG_LEVEL"] == "6"


ZEN3 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\ncpu MHz\t\t: 2445.432\nflags\t\t: fpu avx avx2 fma\n"


@pytest.mark.parametrize("vendor,family,model,flags,expected", [
    ("AuthenticAMD", 23, 1, {"avx", "avx2", "fma"}, 16),  # Zen 1: 128-bit units
    ("AuthenticAMD", 23, 0x31, {"avx", "avx2", "fma"}, 32),  # Zen 2 (Rome)
    ("AuthenticAMD", 25, 1, {"avx", "avx2", "fma"}, 32),  # Zen 3 (Milan): this kit's machine
    ("AuthenticAMD", 25, 0x11, {"avx", "avx2", "fma", "avx512f"}, 32),  # Zen 4 (Genoa): double-pumped AVX-512
    ("AuthenticAMD", 26, 0x02, {"avx", "avx2", "fma", "avx512f"}, 64),  # Zen 5 (Turin): 512-bit units
    ("GenuineIntel", 6, 0x8F, {"avx", "avx2", "fma", "avx512f"}, 64),  # Sapphire Rapids: 2 x 512-bit FMA
    ("GenuineIntel", 6, 0x3C, {"avx", "avx2", "fma"}, 32),  # Haswell
    ("GenuineIntel", 6, 0x2A, {"avx"}, 16),  # Sandy Bridge: no FMA
    ("", None, None, set(), 8),
])
def test_cpu_flops_per_cycle_by_microarchitecture(vendor, family, model, flags, expected):
    per_cycle, why = cpu_fp32_flops_per_cycle(CpuInfo(vendor, family, model, frozenset(flags)))
    assert per_cycle == expected and why


def test_cpu_peak_flops_counts_physical_cores_and_reads_cpuinfo():
    two_cores = "\n".join(ZEN3 + f"physical id\t: 0\ncore id\t\t: {c}\n" for c in (0, 1))
    info = parse_cpuinfo(two_cores)
    assert (info.vendor, info.family, info.model, info.cores) == ("AuthenticAMD", 25, 1, 2)
    assert info.mhz == pytest.approx(2445.432) and {"avx2", "fma"} <= info.flags
    peak, label = cpu_peak_flops(info, threads=1)
    assert peak == pytest.approx(2.445432e9 * 32) and "32 fp32 FLOP/cycle" in label
    assert cpu_peak_flops(info, threads=2)[0] == pytest.approx(2 * peak)
    assert cpu_peak_flops(info, threads=8)[0] == pytest.approx(2 * peak)  # threads beyond the cores add nothing
    smt = parse_cpuinfo("\n".join(ZEN3 + "physical id\t: 0\ncore id\t\t: 0\n" for _ in range(2)))
    assert smt.cores == 1 and cpu_peak_flops(smt, threads=2)[0] == pytest.approx(peak)  # SMT siblings share FMAs
    zen4 = CpuInfo("AuthenticAMD", 25, 0x11, frozenset({"avx2", "fma", "avx512f"}), 3000.0, 1)
    assert cpu_peak_flops(zen4, threads=1)[0] == pytest.approx(3e9 * 32)  # not 64: the old estimate's 2x
    assert cpu_peak_flops(zen4, threads=1, ghz=2.0)[0] == pytest.approx(2e9 * 32)
    with pytest.raises(ValueError):
        cpu_peak_flops(info, threads=0)


def test_keras_compile_has_no_batch_size():
    assert keras_model_compile(optimizer="adam")["optimizer"] == "adam"
    with pytest.raises(TypeError, match="batch_size"):
        keras_model_compile(optimizer="adam", batch_size=64)
