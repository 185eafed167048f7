"""Plausible WRONG implementations of the ``lightweight.*`` exercises (each must be rejected by ``check``),
and several different CORRECT ones (each must be accepted)."""

import torch.nn as nn


def _check(in_ch, out_ch, kernel_size, stride):
    if min(in_ch, out_ch, kernel_size, stride) < 1:
        raise ValueError("all sizes must be >= 1")


def dsc_without_groups(in_ch, out_ch, kernel_size, stride):
    # the "depthwise" conv mixes every input channel: a full k x k conv, k*k times the parameters
    _check(in_ch, out_ch, kernel_size, stride)
    return nn.Sequential(nn.Conv2d(in_ch, in_ch, kernel_size, stride, kernel_size // 2, bias=False),
                         nn.Conv2d(in_ch, out_ch, 1))


def dsc_depthwise_bias(in_ch, out_ch, kernel_size, stride):
    # a bias on the depthwise conv too (redundant: it folds into the pointwise bias)
    _check(in_ch, out_ch, kernel_size, stride)
    return nn.Sequential(nn.Conv2d(in_ch, in_ch, kernel_size, stride, kernel_size // 2, groups=in_ch),
                         nn.Conv2d(in_ch, out_ch, 1))


def dsc_no_padding(in_ch, out_ch, kernel_size, stride):
    # padding 0: the output shrinks by k - 1
    _check(in_ch, out_ch, kernel_size, stride)
    return nn.Sequential(nn.Conv2d(in_ch, in_ch, kernel_size, stride, groups=in_ch, bias=False),
                         nn.Conv2d(in_ch, out_ch, 1))


def dsc_relu_between(in_ch, out_ch, kernel_size, stride):
    # MobileNet's ReLU between the two convs: not the linear block of the contract
    _check(in_ch, out_ch, kernel_size, stride)
    return nn.Sequential(nn.Conv2d(in_ch, in_ch, kernel_size, stride, kernel_size // 2, groups=in_ch, bias=False),
                         nn.ReLU(), nn.Conv2d(in_ch, out_ch, 1))


def dsc_with_batchnorm(in_ch, out_ch, kernel_size, stride):
    # BatchNorm after each conv (MobileNet's layer, not the bare block)
    _check(in_ch, out_ch, kernel_size, stride)
    return nn.Sequential(nn.Conv2d(in_ch, in_ch, kernel_size, stride, kernel_size // 2, groups=in_ch, bias=False),
                         nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, out_ch, 1), nn.BatchNorm2d(out_ch))


def dsc_pointwise_first(in_ch, out_ch, kernel_size, stride):
    # the order reversed: 1x1 to out_ch channels, then the depthwise conv on out_ch channels
    _check(in_ch, out_ch, kernel_size, stride)
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1),
                         nn.Conv2d(out_ch, out_ch, kernel_size, stride, kernel_size // 2, groups=out_ch, bias=False))


def dsc_right_sequential(in_ch, out_ch, kernel_size, stride):
    _check(in_ch, out_ch, kernel_size, stride)
    return nn.Sequential(nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding=kernel_size // 2, groups=in_ch,
                                   bias=False),
                         nn.Conv2d(in_ch, out_ch, kernel_size=1))


class _Separable(nn.Module):
    def __init__(self, in_ch, out_ch, kernel_size, stride):
        super().__init__()
        _check(in_ch, out_ch, kernel_size, stride)
        self.dw = nn.Conv2d(in_ch, in_ch, (kernel_size, kernel_size), (stride, stride),
                            padding=(kernel_size // 2, kernel_size // 2), groups=in_ch, bias=False)
        self.pw = nn.Conv2d(in_ch, out_ch, (1, 1), bias=True)

    def forward(self, x):
        return self.pw(self.dw(x))


def dsc_right_module(in_ch, out_ch, kernel_size, stride):
    return _Separable(in_ch, out_ch, kernel_size, stride)


WRONG = {
    "lightweight.depthwise_separable_conv": [dsc_without_groups, dsc_depthwise_bias, dsc_no_padding, dsc_relu_between,
                                             dsc_with_batchnorm, dsc_pointwise_first],
}
RIGHT = {
    "lightweight.depthwise_separable_conv": [dsc_right_sequential, dsc_right_module],
}
