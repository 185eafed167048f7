"""Exercises of the lightweight-models topic (lesson 10).

- ``lightweight.depthwise_separable_conv(in_ch, out_ch, kernel_size, stride) -> nn.Module``: graded
  against :class:`bigtrain_lab.lightweight.DepthwiseSeparableConv` (its docstring is the contract: a k x k
  depthwise conv, ``groups=in_ch``, ``padding=k // 2``, no bias, then a 1x1 pointwise conv with a bias; no
  BatchNorm, no activation). A runner builds the candidate's module, checks its parameter count
  (``in_ch k k + in_ch out_ch + out_ch``) and parameter shapes, copies the grader's weights into it by shape
  (the first 4-D parameter is the depthwise weight, the second the pointwise one, the 1-D one the pointwise
  bias: ``load_state_dict`` with the module's own names) and returns its output on the grader's input as
  data; the grader compares it with the reference block given the same weights, i.e. with
  ``F.conv2d(F.conv2d(x, w_dw, None, stride, k // 2, groups=in_ch), w_pw, b_pw)``, within float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bigtrain_lab.grading import probe
from bigtrain_lab.grading.compare import normwise_reason, rounding_bound
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe
from bigtrain_lab.lightweight import DepthwiseSeparableConv


@dataclass(frozen=True)
class Separable:
    """What the runner saw: the parameter count, the output (with the rounding it may carry), or a problem."""

    problem: str = ""
    n_params: int = 0
    out: Any = None
    allowed: float = 0.0

    def __repr__(self) -> str:
        if self.problem:
            return self.problem
        return f"{self.n_params} parameters; output of shape {tuple(self.out.shape)}"


def _expected_shapes(in_ch: int, out_ch: int, k: int) -> list[tuple]:
    return [(in_ch, 1, k, k), (out_ch, in_ch, 1, 1), (out_ch,)]


def run_separable(fn: Any, in_ch: int, out_ch: int, kernel_size: int, stride: int, *, x: torch.Tensor,
                  weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> Separable:
    """Build ``fn(in_ch, out_ch, kernel_size, stride)``, load ``weights`` (depthwise, pointwise, bias) into
    it by shape and run it on ``x``."""
    module = fn(in_ch, out_ch, kernel_size, stride)
    facts = probe.module_facts(module)
    if not facts["is_module"]:
        return Separable(f"return an nn.Module, got {facts['type']}")
    params = {k: v for k, v in facts["state"].items() if not k.startswith("buffer:")}
    buffers = [k[len("buffer:"):] for k in facts["state"] if k.startswith("buffer:")]
    shapes = {k: tuple(v.shape) for k, v in params.items()}
    n_params = sum(v.numel() for v in params.values())
    expected_n = in_ch * kernel_size**2 + in_ch * out_ch + out_ch
    if n_params != expected_n:
        hint = ""
        if any(s == (in_ch, in_ch, kernel_size, kernel_size) for s in shapes.values()) and in_ch > 1:
            hint = " (a full k x k conv over all input channels: the depthwise conv needs groups=in_ch)"
        elif n_params == expected_n + in_ch:
            hint = " (a bias on the depthwise conv: the contract has none, it folds into the pointwise bias)"
        elif buffers:
            hint = f" (BatchNorm or other layers inside: the block is just the two convs; buffers {buffers})"
        return Separable(f"{n_params} parameters, expected {expected_n} = in_ch*k*k + in_ch*out_ch + out_ch"
                         f"{hint}; parameter shapes: {shapes}")
    four_d = [k for k, v in params.items() if v.dim() == 4]
    one_d = [k for k, v in params.items() if v.dim() == 1]
    want = _expected_shapes(in_ch, out_ch, kernel_size)
    if len(four_d) != 2 or len(one_d) != 1 or [shapes[k] for k in (*four_d, *one_d)] != want:
        return Separable(f"expected a depthwise weight {want[0]}, a pointwise weight {want[1]} and a pointwise "
                         f"bias {want[2]}, got parameter shapes {shapes}")
    new_state = dict(zip((*four_d, *one_d), weights, strict=True))
    probe.call_method(module, "load_state_dict", new_state)
    out = probe.forward(module, x)
    if not isinstance(out, torch.Tensor):
        return Separable(f"the module's output is {describe(out, 60)}, not a tensor")
    w_dw, w_pw, b = weights
    k2 = kernel_size**2
    scale = float(x.abs().max() * w_dw.abs().max() * k2 * w_pw.abs().max() * in_ch + b.abs().max())
    return Separable("", n_params, out.detach(), rounding_bound(k2 + in_ch + 2, scale, x.dtype))


def _separable_compare(got: Any, expected: Separable) -> str | None:
    if not isinstance(got, Separable):
        return f"unexpected result {describe(got, 80)}"
    if got.problem:
        return got.problem
    if tuple(got.out.shape) != tuple(expected.out.shape):
        return (f"output shape {tuple(got.out.shape)}, expected {tuple(expected.out.shape)} (padding = "
                "kernel_size // 2 on the depthwise conv, the stride there too, not on the 1x1 conv)")
    return normwise_reason(got.out, expected.out, "the output (the same weights loaded into both blocks)",
                           expected.allowed)


def _separable_cases(rng: np.random.Generator) -> list[Case]:
    def case(label: str, in_ch: int, out_ch: int, k: int, stride: int, hw: tuple = (9, 9), **kw: Any) -> Case:
        def t(*shape: int) -> torch.Tensor:
            return torch.tensor(rng.normal(0, 1, shape), dtype=torch.float32)

        weights = (t(in_ch, 1, k, k), t(out_ch, in_ch, 1, 1), t(out_ch)) if in_ch > 0 else ()
        return Case(label, (in_ch, out_ch, k, stride), {"x": t(2, max(in_ch, 1), *hw), "weights": weights}, **kw)

    cases = [
        case("3 -> 8 channels, 3x3, stride 1", 3, 8, 3, 1),
        case("4 -> 4, 3x3, stride 2 (the stride on the depthwise conv)", 4, 4, 3, 2),
        case("8 -> 16, 5x5 (padding 2 keeps the size)", 8, 16, 5, 1),
        case("a single input channel (depthwise = an ordinary conv)", 1, 6, 3, 1),
        case("a single output channel", 6, 1, 3, 2),
        case("1x1 kernel", 5, 7, 1, 1),
        case("7x7, stride 2, a non-square input 11x8", 4, 6, 7, 2, hw=(11, 8)),
        case("16 -> 32, 3x3 (a MobileNet-sized block)", 16, 32, 3, 1, hw=(6, 6)),
        case("stride 3", 3, 5, 3, 3, hw=(10, 10)),
        case("in_ch = 0: ValueError", 0, 4, 3, 1, raises=ValueError),
    ]
    for i in range(3):
        in_ch, out_ch = (int(v) for v in rng.integers(1, 12, 2))
        k, stride = int(rng.choice([1, 3, 5])), int(rng.integers(1, 3))
        hw = tuple(int(v) for v in rng.integers(k, 12, 2))
        cases.append(case(f"random #{i + 1} ({in_ch} -> {out_ch}, {k}x{k}, stride {stride}, input {hw})", in_ch,
                          out_ch, k, stride, hw=hw))
    return cases


register(Exercise(
    id="lightweight.depthwise_separable_conv",
    reference=DepthwiseSeparableConv,
    make_cases=_separable_cases,
    compare=_separable_compare,
    run=run_separable,
    hint="Return nn.Sequential(nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding=kernel_size // 2, "
         "groups=in_ch, bias=False), nn.Conv2d(in_ch, out_ch, 1)) (or a module with those two convs in that "
         "order): groups=in_ch makes the first conv depthwise (one k x k filter per channel), the 1x1 conv "
         "mixes the channels; no bias on the depthwise conv, no BatchNorm or activation in between.",
    section="depthwise-separable-convolutions",
))
