"""bigtrain_lab.lightweight: the depthwise-separable block vs torch's grouped conv, the cost arithmetic vs
parameter counts and torch's FlopCounterMode, the model family's shapes and multipliers."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.lightweight import (
    BASE_CHANNELS,
    BASE_STRIDES,
    DepthwiseSeparableConv,
    LightweightNet,
    compare,
    conv_cost,
    conv_vs_separable_latency,
    count_flops,
    count_layer_calls,
    count_parameters,
    latency_ms,
    scaled_channels,
    separable_ratio,
    slim_head_cnn,
    standard_variants,
)
from bigtrain_lab.models import CNN

SHAPES = [(1, 1, 1, 1), (3, 5, 3, 1), (4, 6, 3, 2), (8, 16, 5, 1), (6, 3, 5, 2), (16, 32, 3, 2)]


@pytest.mark.parametrize(("in_ch", "out_ch", "k", "stride"), SHAPES)
def test_block_parameters_and_output_match_the_formula_and_grouped_conv(in_ch, out_ch, k, stride):
    torch.manual_seed(0)
    block = DepthwiseSeparableConv(in_ch, out_ch, k, stride)
    assert count_parameters(block) == in_ch * k * k + in_ch * out_ch + out_ch
    assert block.depthwise.groups == in_ch and block.depthwise.bias is None
    assert block.depthwise.padding == (k // 2, k // 2) and block.pointwise.kernel_size == (1, 1)
    x = torch.randn(3, in_ch, 9, 7)
    expected = F.conv2d(F.conv2d(x, block.depthwise.weight, None, stride, k // 2, groups=in_ch),
                        block.pointwise.weight, block.pointwise.bias)
    got = block(x)
    assert got.shape == (3, out_ch, (9 - 1) // stride + 1, (7 - 1) // stride + 1)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_block_is_a_standard_conv_with_rank_one_factorised_weights():
    # W[o, i] = P[o, i] * D[i]: a standard conv with these weights computes the same map
    torch.manual_seed(1)
    block = DepthwiseSeparableConv(5, 7, 3, 1)
    D, P = block.depthwise.weight[:, 0], block.pointwise.weight[:, :, 0, 0]
    W = P[:, :, None, None] * D[None]
    x = torch.randn(2, 5, 6, 6)
    torch.testing.assert_close(block(x), F.conv2d(x, W, block.pointwise.bias, padding=1), rtol=1e-5, atol=1e-5)


def test_block_rejects_bad_sizes():
    with pytest.raises(ValueError):
        DepthwiseSeparableConv(0, 4, 3, 1)
    with pytest.raises(ValueError):
        DepthwiseSeparableConv(4, 4, 3, 0)


@pytest.mark.parametrize(("in_ch", "out_ch", "k", "size"), [(16, 32, 3, 8), (32, 64, 3, 4), (3, 10, 5, 7),
                                                            (1, 16, 3, 8)])
def test_conv_cost_matches_real_modules_and_flop_counter(in_ch, out_ch, k, size):
    x = torch.randn(1, in_ch, size, size)
    standard = nn.Conv2d(in_ch, out_ch, k, padding=k // 2)
    separable = DepthwiseSeparableConv(in_ch, out_ch, k)
    for module, sep in ((standard, False), (separable, True)):
        cost = conv_cost(in_ch, out_ch, k, size, size, separable=sep)
        assert cost.params == count_parameters(module)
        assert 2 * cost.macs == count_flops(module, x)  # FlopCounterMode: 2 FLOPs per multiply-add
        assert 2 * cost.macs * 4 == count_flops(module, x.repeat(4, 1, 1, 1))
    no_bias = (conv_cost(in_ch, out_ch, k, size, size, separable=True, bias=False),
               conv_cost(in_ch, out_ch, k, size, size, bias=False))
    assert no_bias[0].params / no_bias[1].params == pytest.approx(separable_ratio(out_ch, k))
    assert no_bias[0].macs / no_bias[1].macs == pytest.approx(separable_ratio(out_ch, k))


def test_flop_count_of_the_cnn_by_hand_and_mode_restored():
    cnn = CNN(num_classes=5).train()
    macs = conv_cost(1, 16, 3, 8, 8).macs + conv_cost(16, 32, 3, 8, 8).macs + 512 * 64 + 64 * 5
    assert count_flops(cnn, torch.zeros(1, 1, 8, 8)) == 2 * macs
    # conv, relu, conv, relu, pool, flatten, linear, relu, dropout, linear
    assert count_layer_calls(cnn, torch.zeros(1, 1, 8, 8)) == 10
    assert count_layer_calls(LightweightNet(depth=3), torch.zeros(1, 1, 8, 8)) == 2 + 3 * 4 + 3
    assert cnn.training


def test_scaled_channels_rounds_like_make_divisible():
    def make_divisible(v, divisor, min_value=None):  # torchvision.models._utils._make_divisible
        min_value = min_value or divisor
        new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
        return new_v + divisor if new_v < 0.9 * v else new_v

    for c in (8, 16, 32, 64, 128):
        for w in (0.1, 0.25, 0.3, 0.35, 0.5, 0.75, 1.0, 1.3, 2.0):
            got = scaled_channels(c, w)
            assert got == make_divisible(c * w, 4) and got % 4 == 0 and got >= 0.9 * c * w
    assert scaled_channels(32, 1.0) == 32 and scaled_channels(10, 1.0, divisor=1) == 10
    with pytest.raises(ValueError):
        scaled_channels(32, 0.0)


@pytest.mark.parametrize(("width", "depth"), [(0.25, 1), (0.5, 2), (1.0, 2), (2.0, 3), (1.0, 4)])
def test_family_shapes_and_multipliers(width, depth):
    torch.manual_seed(0)
    backbone = CNN(num_classes=5)
    net = LightweightNet(backbone.features[0], width=width, depth=depth)
    assert len(net.blocks) == depth
    assert net.channels == tuple(scaled_channels(c, width) for c in BASE_CHANNELS[:depth])
    assert [b[0].depthwise.stride[0] for b in net.blocks] == list(BASE_STRIDES[:depth])
    assert net(torch.randn(4, 1, 8, 8)).shape == (4, 5) and net(torch.randn(3, 64)).shape == (3, 5)
    # the stem is the backbone's first conv, copied (training the net leaves the backbone alone)
    torch.testing.assert_close(net.stem[0].weight, backbone.features[0].weight)
    assert net.stem[0].weight.data_ptr() != backbone.features[0].weight.data_ptr()
    # parameters: stem + blocks (each a separable conv + BatchNorm) + head
    expected, previous = count_parameters(backbone.features[0]), 16
    for c in net.channels:
        expected += conv_cost(previous, c, 3, 1, 1, separable=True).params + 2 * c
        previous = c
    assert count_parameters(net) == expected + previous * 5 + 5


def test_width_scales_pointwise_cost_quadratically_and_depth_adds_blocks():
    x = torch.zeros(1, 1, 8, 8)
    flops = {w: count_flops(LightweightNet(width=w, depth=2), x) for w in (1.0, 2.0)}
    stem = count_flops(nn.Conv2d(1, 16, 3, padding=1), x)
    assert 2.5 < (flops[2.0] - stem) / (flops[1.0] - stem) < 4  # ~ width^2 in the pointwise convs, less at the edges
    depth_flops = [count_flops(LightweightNet(depth=d), x) for d in (1, 2, 3, 4)]
    assert depth_flops == sorted(depth_flops)


def test_family_rejects_bad_arguments():
    with pytest.raises(ValueError):
        LightweightNet(depth=0)
    with pytest.raises(ValueError):
        LightweightNet(depth=len(BASE_CHANNELS) + 1)
    with pytest.raises(ValueError):
        LightweightNet(nn.Conv2d(3, 16, 3))
    with pytest.raises(ValueError):
        LightweightNet()(torch.zeros(1, 3, 8, 8))


def test_slim_head_keeps_the_conv_flops_and_drops_the_head_parameters():
    cnn = CNN(num_classes=5)
    slim = slim_head_cnn(cnn)
    x = torch.zeros(1, 1, 8, 8)
    assert count_parameters(slim) == count_parameters(cnn.features) + 32 * 5 + 5
    assert count_flops(slim, x) == count_flops(cnn, x) - 2 * (512 * 64 + 64 * 5) + 2 * 32 * 5
    assert slim(x).shape == (1, 5)


def test_latency_is_positive_and_mode_restored():
    model = LightweightNet().train()
    assert latency_ms(model, torch.zeros(2, 1, 8, 8), min_run_time=0.005) > 0
    assert model.training


def test_compare_and_variants_on_a_tiny_task():
    variants = standard_variants(widths=(0.5, 1.0), depths=(1, 2))
    names = [v.name for v in variants]
    assert names[:3] == ["CNN, from scratch", "CNN, pretrained, fine-tuned", "CNN features + pooled head"]
    assert len(names) == len(set(names)) == 3 + 2 + 1 + 1

    def task(seed):
        g = torch.Generator().manual_seed(seed)
        return torch.rand(20, 1, 8, 8, generator=g), torch.arange(20) % 5, torch.rand(10, 1, 8, 8), torch.arange(10) % 5

    torch.manual_seed(0)
    pretrained = CNN(num_classes=5)
    rows = compare([variants[1], variants[3]], lambda: _copy(pretrained), task, seeds=[0, 1], steps=2,
                   batch_size=8, min_run_time=0.005, latency_batches=(1, 4))
    assert [r["name"] for r in rows] == [variants[1].name, variants[3].name]
    for r in rows:
        assert len(r["accuracy"]) == 2 and 0 <= r["mean"] <= 1 and r["std"] >= 0
        assert r["params"] > 0 and r["flops"] > 0 and r["layer_calls"] > 0 and r["latency_ms_b1"] > 0 and r["latency_ms_b4"] > 0
    assert rows[1]["width"] == 0.5 and rows[1]["depth"] == 2
    # the fine-tuned row started from the pretrained weights but trained a copy
    torch.testing.assert_close(pretrained.features[0].weight, _copy(pretrained).features[0].weight)


def _copy(model):
    clone = CNN(num_classes=5)
    clone.load_state_dict(model.state_dict())
    return clone


def test_conv_vs_separable_rows():
    rows = conv_vs_separable_latency(8, 16, (4, 8), batch=2, min_run_time=0.005)
    assert [r["size"] for r in rows] == [4.0, 8.0]
    for r in rows:
        assert r["flop_ratio"] == pytest.approx(separable_ratio(16, 3))
        assert r["standard_ms"] > 0 and r["separable_ms"] > 0
