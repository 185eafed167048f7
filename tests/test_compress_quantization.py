"""Quantization from first principles against torch's observers and kernels; QAT's straight-through
gradient; the torchao int8 paths run and stay close to fp32."""

import warnings

import pytest
import torch
import torch.nn as nn
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

from bigtrain_lab.compress import (
    dequantize_affine,
    dequantize_per_channel,
    fake_quantize,
    int8_dynamic,
    int8_static,
    int8_weight_only,
    legacy_quantize_dynamic,
    prepare_qat,
    quantize_affine,
    quantize_per_channel,
    quantize_weights,
    size_on_disk,
    strip_fake_quant,
)
from bigtrain_lab.compress.quantization import FakeQuantLinear, quant_range

warnings.filterwarnings("ignore", message=".*deprecated.*")


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_per_tensor_matches_torch(symmetric, seed):
    torch.manual_seed(seed)
    x = torch.randn(200) * (seed + 1) + seed - 2
    q, scale, zp = quantize_affine(x, symmetric=symmetric)
    obs = MinMaxObserver(dtype=torch.qint8 if symmetric else torch.quint8,
                         qscheme=torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine,
                         quant_min=-127 if symmetric else 0, quant_max=127 if symmetric else 255)
    obs(x)
    s_ref, z_ref = obs.calculate_qparams()
    assert scale == pytest.approx(float(s_ref), rel=1e-7) and zp == int(z_ref)
    ref = torch.quantize_per_tensor(x, scale, zp, torch.qint8 if symmetric else torch.quint8).int_repr()
    assert (q.long() - ref.long()).abs().max() <= 1 and (q.long() != ref.long()).float().mean() < 0.01
    assert q.dtype == (torch.int8 if symmetric else torch.uint8)
    assert (dequantize_affine(q, scale, zp) - x).abs().max() <= scale / 2 * (1 + 1e-5)


def test_ranges_zero_and_bad_input():
    assert quant_range(8) == (0, 255) and quant_range(8, True) == (-127, 127) and quant_range(4, True) == (-7, 7)
    q, scale, zp = quantize_affine(torch.tensor([1.0, 2.0]))
    assert zp == 0  # the range [0, 2] contains 0 exactly
    q, scale, zp = quantize_affine(torch.zeros(3))
    assert scale == torch.finfo(torch.float32).eps and torch.equal(dequantize_affine(q, scale, zp), torch.zeros(3))
    with pytest.raises(ValueError):
        quantize_affine(torch.tensor([1.0, float("nan")]))
    with pytest.raises(TypeError):
        quantize_affine(torch.tensor([1, 2]))
    with pytest.raises(ValueError):
        quant_range(1)


def test_per_channel_matches_torch_observer_and_beats_per_tensor():
    torch.manual_seed(0)
    w = torch.randn(8, 16) * torch.logspace(-2, 0, 8)[:, None]  # channels of very different scales
    q, scales, zps = quantize_per_channel(w, axis=0)
    obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                   quant_min=-127, quant_max=127)
    obs(w)
    s_ref, _ = obs.calculate_qparams()
    assert torch.allclose(scales, s_ref)
    err_channel = (dequantize_per_channel(q, scales, zps) - w).abs().mean()
    qt, s, z = quantize_affine(w, symmetric=True)
    err_tensor = (dequantize_affine(qt, s, z) - w).abs().mean()
    assert err_channel < err_tensor / 3


def test_fake_quantize_straight_through_gradient():
    x = torch.randn(20, requires_grad=True)
    y = fake_quantize(x, num_bits=4)
    q, s, z = quantize_affine(x.detach(), num_bits=4, symmetric=True)
    assert torch.allclose(y.detach(), dequantize_affine(q, s, z))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(20))


def test_fewer_bits_more_error():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    x = torch.randn(50, 32)
    errors = [(quantize_weights(model, b)(x) - model(x)).abs().mean().item() for b in (8, 4, 2)]
    assert errors[0] < errors[1] < errors[2]


def test_qat_prepare_trains_and_strips():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    qat = prepare_qat(model)
    assert sum(isinstance(m, FakeQuantLinear) for m in qat.modules()) == 2
    x = torch.randn(10, 8)
    out = qat(x)
    out.sum().backward()
    assert qat[0].weight.grad is not None and torch.isfinite(qat[0].act_max)
    assert (out - model(x)).abs().max() < 0.05
    plain = strip_fake_quant(qat)
    assert not any(isinstance(m, FakeQuantLinear) for m in plain.modules())
    assert torch.equal(plain[0].weight, qat[0].weight)


def test_int8_paths_run_shrink_and_stay_close():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    x = torch.randn(32, 64)
    ref = model(x)
    fp32 = size_on_disk(model)
    for quantized in (int8_dynamic(model), int8_weight_only(model), int8_static(model, [x]),
                      legacy_quantize_dynamic(model)):
        with torch.no_grad():
            out = quantized(x)
        assert (out - ref).abs().max() < 0.05 * ref.abs().max()
        assert size_on_disk(quantized) < fp32 / 3
    assert torch.equal(model(x), ref)  # the originals are untouched (copies)


def test_restricted_symmetric_range_is_minmaxobserver_with_minus_127():
    """Our symmetric int8 is [-127, 127], scale = max|x| / 127: torch's MinMaxObserver gives it only when
    told quant_min=-127; its qint8 default is [-128, 127] with scale = max|x| / 127.5 (as torchao's)."""
    x = torch.tensor([-1.0, 0.3, 2.0])
    _, scale, _ = quantize_affine(x, symmetric=True)
    restricted = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, quant_min=-127, quant_max=127)
    default = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    restricted(x)
    default(x)
    assert (default.quant_min, default.quant_max) == (-128, 127)
    assert scale == pytest.approx(float(restricted.calculate_qparams()[0]), rel=1e-7) == pytest.approx(2.0 / 127)
    assert float(default.calculate_qparams()[0]) == pytest.approx(2.0 / 127.5, rel=1e-6)


def test_dynamic_qat_simulates_what_int8_dynamic_deploys():
    """scheme="dynamic" fake-quantizes as torchao's Int8DynamicActivationInt8WeightConfig computes: layer by
    layer the simulated and the deployed int8 outputs agree to float rounding; the static scheme does not."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10)).eval()
    x = torch.randn(40, 32) * 3
    deployed = int8_dynamic(model)
    dynamic = prepare_qat(model, scheme="dynamic").eval()
    static = prepare_qat(model).train()
    with torch.no_grad():
        static(x)
        static.eval()
        for layer in (0, 2):
            inp = x if layer == 0 else torch.relu(deployed[0](x))
            ref = deployed[layer](inp)
            assert (dynamic[layer](inp) - ref).abs().max() < 1e-4 * ref.abs().max()
            assert (static[layer](inp) - ref).abs().max() > 1e-3 * ref.abs().max()
    with pytest.raises(ValueError, match="scheme"):
        prepare_qat(model, scheme="per_token")


def test_dynamic_qat_trains_through_the_rounding():
    torch.manual_seed(0)
    layer = prepare_qat(nn.Sequential(nn.Linear(8, 4)), scheme="dynamic")[0]
    x = torch.randn(5, 8, requires_grad=True)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and x.grad is not None and x.grad.abs().sum() > 0
    assert torch.allclose(x.grad, layer.weight.detach().sum(0).expand(5, 8), atol=0.05)  # straight-through


def test_torchao_import_noise_filter_drops_only_its_two_records():
    import logging

    from bigtrain_lab.compress.quantization import _TorchaoImportNoise

    def record(name, msg):
        return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, None, None)

    f = _TorchaoImportNoise()
    so = "/x/site-packages/torchao/_C_mxfp8.cpython-310-x86_64-linux-gnu.so"
    assert not f.filter(record("torchao", f"Failed to load {so}: Could not load this library: {so}"))
    assert not f.filter(record("torch.utils._pytree", "<enum 'KernelPreference'> is an Enum subclass and is now "
                               "natively supported ... Calling register_constant() on Enum subclasses is deprecated"))
    assert f.filter(record("torchao", "Failed to quantize layer fc1"))
    assert f.filter(record("torchao", "Skipping import of cpp extensions due to incompatible torch version"))
    assert f.filter(record("other", f"Failed to load {so}"))
