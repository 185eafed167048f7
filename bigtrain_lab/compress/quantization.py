"""Integer quantization from first principles, and the supported int8 path (torchao).

Affine (asymmetric) b-bit quantization maps a real range [lo, hi] (widened to contain 0, so that 0 is
exact: zero padding, ReLU outputs) onto the integers [0, 2^b - 1]:

    scale = (hi - lo) / (2^b - 1),   zero_point = -round(lo / scale),
    q = clamp(round(x / scale) + zero_point, 0, 2^b - 1),   x_hat = (q - zero_point) * scale.

Symmetric quantization here uses the RESTRICTED range [-(2^(b-1) - 1), 2^(b-1) - 1] ([-127, 127] for
int8: the code -128 is left unused so that the range is symmetric about 0) with zero_point 0 and
scale = max|x| / (2^(b-1) - 1). ``round`` is round-half-to-even (``torch.round``), as torch's observers and
quantize kernels do, and ``scale`` is clamped to at least float32's eps (an all-zero tensor gets
scale = eps). These are exactly the formulas of ``torch.ao.quantization.MinMaxObserver`` when it is given
``quant_min=-127, quant_max=127`` (for symmetric schemes it computes scale = max|x| / ((quant_max -
quant_min) / 2)). Its DEFAULT qint8 range is the full [-128, 127], which gives scale = max|x| / 127.5 (the
top value then rounds to 127.5 and is clipped to 127, still within scale / 2); torchao's int8 configs
(``Int8DynamicActivationInt8WeightConfig``) use that full range too, and so does the "dynamic" QAT scheme
below, which must match them. The affine round trip error is at most ``scale / 2``.

For real int8 models on CPU the supported path is torchao (``quantize_`` with an int8 config). The
eager ``torch.ao.quantization`` API (``quantize_dynamic``, ``prepare``/``convert``) still runs in torch
2.13 but warns that it is deprecated; ``legacy_quantize_dynamic`` wraps it, for comparison only.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = torch.finfo(torch.float32).eps


def quant_range(num_bits: int = 8, symmetric: bool = False) -> tuple[int, int]:
    """``(qmin, qmax)``: ``(0, 2^b - 1)`` affine, ``(-(2^(b-1) - 1), 2^(b-1) - 1)`` symmetric."""
    if isinstance(num_bits, bool) or not isinstance(num_bits, int) or not 2 <= num_bits <= 16:
        raise ValueError(f"num_bits must be an integer in [2, 16], got {num_bits!r}")
    if symmetric:
        return -(2 ** (num_bits - 1) - 1), 2 ** (num_bits - 1) - 1
    return 0, 2 ** num_bits - 1


def _int_dtype(num_bits: int, symmetric: bool) -> torch.dtype:
    if num_bits <= 8:
        return torch.int8 if symmetric else torch.uint8
    return torch.int32


def _qparams(lo: torch.Tensor, hi: torch.Tensor, num_bits: int, symmetric: bool
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point (tensors, one per channel) from observed minima and maxima, as MinMaxObserver."""
    qmin, qmax = quant_range(num_bits, symmetric)
    lo = torch.minimum(lo.float(), torch.zeros_like(lo, dtype=torch.float32))
    hi = torch.maximum(hi.float(), torch.zeros_like(hi, dtype=torch.float32))
    if symmetric:
        scale = torch.maximum(-lo, hi) / (float(qmax - qmin) / 2)
        scale = torch.clamp(scale, min=EPS)
        zero_point = torch.zeros_like(scale, dtype=torch.int64)
    else:
        scale = torch.clamp((hi - lo) / float(qmax - qmin), min=EPS)
        zero_point = torch.clamp(qmin - torch.round(lo / scale).to(torch.int64), qmin, qmax)
    return scale, zero_point


def _check_float(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor, got {type(x).__name__} "
                        f"{getattr(x, 'dtype', '')}")
    if x.numel() == 0:
        raise ValueError("cannot calibrate a quantizer on an empty tensor")
    if not torch.isfinite(x).all():
        raise ValueError("the tensor holds inf or NaN: min/max calibration needs finite values")


def quantize_affine(x: torch.Tensor, *, num_bits: int = 8, symmetric: bool = False
                    ) -> tuple[torch.Tensor, float, int]:
    """Per-tensor quantization with min/max calibration: returns ``(q, scale, zero_point)``; ``q`` is
    uint8 / int8 for up to 8 bits (int32 above)."""
    _check_float(x)
    scale, zp = _qparams(x.detach().min(), x.detach().max(), num_bits, symmetric)
    qmin, qmax = quant_range(num_bits, symmetric)
    q = torch.clamp(torch.round(x.detach().float() / scale) + zp, qmin, qmax)
    return q.to(_int_dtype(num_bits, symmetric)), float(scale), int(zp)


def dequantize_affine(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """``(q - zero_point) * scale`` in float32."""
    return (q.to(torch.float32) - float(zero_point)) * float(scale)


def quantize_per_channel(w: torch.Tensor, *, axis: int = 0, num_bits: int = 8, symmetric: bool = True
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One scale and zero point per slice along ``axis`` (per output channel for a weight): returns
    ``(q, scales, zero_points)``. A channel of small weights no longer shares the scale of the largest."""
    _check_float(w)
    moved = w.detach().float().movedim(axis, 0)
    flat = moved.reshape(moved.shape[0], -1)
    scale, zp = _qparams(flat.min(dim=1).values, flat.max(dim=1).values, num_bits, symmetric)
    qmin, qmax = quant_range(num_bits, symmetric)
    shape = (-1,) + (1,) * (moved.dim() - 1)
    q = torch.clamp(torch.round(moved / scale.view(shape)) + zp.view(shape), qmin, qmax)
    return q.movedim(0, axis).to(_int_dtype(num_bits, symmetric)), scale, zp


def dequantize_per_channel(q: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor, *,
                           axis: int = 0) -> torch.Tensor:
    """Inverse of ``quantize_per_channel``."""
    shape = [1] * q.dim()
    shape[axis] = -1
    return (q.to(torch.float32) - zero_points.view(shape).float()) * scales.view(shape)


def fake_quantize(x: torch.Tensor, *, num_bits: int = 8, symmetric: bool = True, axis: int | None = None
                  ) -> torch.Tensor:
    """Quantize and dequantize in the forward pass; in the backward pass let the gradient through as if
    it were the identity (the straight-through estimator: ``x + (x_hat - x).detach()``). ``axis``: per
    channel along it, else per tensor."""
    if axis is None:
        q, s, z = quantize_affine(x, num_bits=num_bits, symmetric=symmetric)
        x_hat = dequantize_affine(q, s, z)
    else:
        q, s, z = quantize_per_channel(x, axis=axis, num_bits=num_bits, symmetric=symmetric)
        x_hat = dequantize_per_channel(q, s, z, axis=axis)
    return x + (x_hat.to(x.dtype) - x).detach()


def quantize_weights(model: nn.Module, num_bits: int, *, per_channel: bool = True) -> nn.Module:
    """A copy of ``model`` whose Linear / Conv2d weights are replaced by their ``num_bits`` symmetric
    quantize-dequantize round trip (activations stay float): the accuracy a b-bit weight format gives."""
    new = copy.deepcopy(model)
    with torch.no_grad():
        for m in new.modules():
            if isinstance(m, nn.Linear | nn.Conv2d):
                if per_channel:
                    q, s, z = quantize_per_channel(m.weight, axis=0, num_bits=num_bits, symmetric=True)
                    m.weight.copy_(dequantize_per_channel(q, s, z, axis=0))
                else:
                    q, s, z = quantize_affine(m.weight, num_bits=num_bits, symmetric=True)
                    m.weight.copy_(dequantize_affine(q, s, z))
    return new


# ---- quantization-aware training from scratch ------------------------------------------------------

QAT_SCHEMES = ("static", "dynamic")


def _fake_quantize_symmetric_full(x: torch.Tensor, amax: torch.Tensor, num_bits: int) -> torch.Tensor:
    """Symmetric fake quantization on the FULL signed range [-2^(b-1), 2^(b-1) - 1] with scale = amax /
    ((qmax - qmin) / 2), as torchao's ``choose_qparams_affine`` (MappingType.SYMMETRIC) computes it; ``amax``
    broadcasts against ``x`` (one value per row for per-token / per-channel). Straight-through gradient."""
    qmin, qmax = -(2 ** (num_bits - 1)), 2 ** (num_bits - 1) - 1
    scale = torch.clamp(amax / ((qmax - qmin) / 2), min=EPS)
    x_hat = torch.clamp(torch.round(x * (1.0 / scale)), qmin, qmax) * scale  # x * (1 / scale): as torchao rounds
    return x + (x_hat - x).detach()


class FakeQuantLinear(nn.Linear):
    """A Linear that trains through integer rounding (gradients pass by the straight-through estimator).

    ``scheme="static"``: weights fake-quantized symmetric per output channel (restricted range), inputs
    fake-quantized affine PER TENSOR with a range tracked as an exponential moving average during training
    (frozen in eval mode): what static PTQ deploys.

    ``scheme="dynamic"``: what torchao's ``Int8DynamicActivationInt8WeightConfig`` deploys (``int8_dynamic``):
    each input row (token) quantized symmetric with its own scale computed on the fly, weights symmetric per
    output row, both on the full range [-128, 127] with scale = max|x| / 127.5. Simulating the scheme that
    will be deployed is the point of QAT: the weights adapt to the rounding they will actually meet.
    (torchao 0.18's own ``QATConfig`` cannot simulate it: ``IntxFakeQuantizeConfig(torch.int8, "per_token",
    is_symmetric=True)`` raises NotImplementedError "Symmetric per token is not supported yet".)"""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, num_bits: int = 8,
                 momentum: float = 0.1, scheme: str = "static"):
        super().__init__(in_features, out_features, bias=bias)
        if scheme not in QAT_SCHEMES:
            raise ValueError(f"scheme must be one of {QAT_SCHEMES}, got {scheme!r}")
        self.num_bits, self.momentum, self.scheme = num_bits, momentum, scheme
        self.register_buffer("act_min", torch.tensor(float("inf")))
        self.register_buffer("act_max", torch.tensor(float("-inf")))

    @classmethod
    def from_linear(cls, linear: nn.Linear, num_bits: int = 8, *, scheme: str = "static") -> FakeQuantLinear:
        new = cls(linear.in_features, linear.out_features, linear.bias is not None, num_bits=num_bits,
                  scheme=scheme)
        new.load_state_dict(linear.state_dict(), strict=False)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scheme == "dynamic":
            x = _fake_quantize_symmetric_full(x, x.detach().abs().amax(dim=-1, keepdim=True), self.num_bits)
            w = _fake_quantize_symmetric_full(self.weight, self.weight.detach().abs().amax(dim=1, keepdim=True),
                                              self.num_bits)
            return F.linear(x, w, self.bias)
        if self.training:
            lo, hi = x.detach().min(), x.detach().max()
            if not bool(torch.isfinite(self.act_min)):  # first batch: take its range as it is
                self.act_min.copy_(lo)
                self.act_max.copy_(hi)
            else:
                self.act_min.lerp_(lo, self.momentum)
                self.act_max.lerp_(hi, self.momentum)
        if torch.isfinite(self.act_min):
            scale, zp = _qparams(self.act_min, self.act_max, self.num_bits, False)
            qmin, qmax = quant_range(self.num_bits, False)
            x_hat = (torch.clamp(torch.round(x / scale) + zp, qmin, qmax) - zp) * scale
            x = x + (x_hat - x).detach()
        w = fake_quantize(self.weight, num_bits=self.num_bits, symmetric=True, axis=0)
        return F.linear(x, w, self.bias)


def prepare_qat(model: nn.Module, num_bits: int = 8, *, scheme: str = "static") -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` swapped for a ``FakeQuantLinear`` (same weights) of the
    given ``scheme``: "static" (per-tensor activation ranges, as static PTQ) or "dynamic" (per-token
    activation scales on the fly, as ``int8_dynamic`` deploys)."""
    if scheme not in QAT_SCHEMES:
        raise ValueError(f"scheme must be one of {QAT_SCHEMES}, got {scheme!r}")
    new = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if type(child) is nn.Linear:
                setattr(parent, name, FakeQuantLinear.from_linear(child, num_bits, scheme=scheme))
            else:
                swap(child)

    swap(new)
    return new


def strip_fake_quant(model: nn.Module) -> nn.Module:
    """A copy with each ``FakeQuantLinear`` turned back into a plain ``nn.Linear`` (same float weights),
    ready for a real int8 conversion (e.g. ``int8_dynamic``)."""
    new = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, FakeQuantLinear):
                plain = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
                plain.load_state_dict({k: v for k, v in child.state_dict().items() if k in ("weight", "bias")})
                setattr(parent, name, plain)
            else:
                swap(child)

    swap(new)
    return new


# ---- real int8 models: torchao (supported) and torch.ao (deprecated) --------------------------------

class _TorchaoImportNoise(logging.Filter):
    """Drops the two log records that ``import torchao`` 0.18 emits on a CPU-only Python 3.11 install and
    nothing else:

    - torchao's "Failed to load .../torchao/_C_mxfp8.cpython-310-...so" and ".../_C_cutlass_90a.abi3.so":
      its wheel ships prebuilt extensions for MX-fp8 (built for CPython 3.10) and for NVIDIA sm_90 GPUs;
      torchao catches the load error, logs it and carries on. The int8 paths used here never call those
      kernels, so the "failure" is not one, but it reads like one in a lesson.
    - torch's "<enum 'KernelPreference'> is an Enum subclass ... Calling register_constant() on Enum
      subclasses is deprecated" (and the same for 'ScaleCalculationMode' when ``torchao.quantization.qat``
      is imported): a deprecation notice about torchao's own registration code, nothing a learner can act
      on.
    Any other torchao / torch message (a real failure) still gets through, and the filter is attached only
    while ``_import_torchao_quietly`` imports torchao."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if record.name == "torchao" and msg.startswith("Failed to load ") and "/torchao/_C" in msg \
                and ".so" in msg:
            return False
        return not (record.name == "torch.utils._pytree" and "is an Enum subclass" in msg
                    and "register_constant() on Enum subclasses is deprecated" in msg)


def _import_torchao_quietly() -> None:
    """Import torchao and its QAT module with ``_TorchaoImportNoise`` on the two loggers that would print it
    (the records are emitted once, at the first import; later imports are cached and silent anyway)."""
    noise = _TorchaoImportNoise()
    loggers = [logging.getLogger("torchao"), logging.getLogger("torch.utils._pytree")]
    for lg in loggers:
        lg.addFilter(noise)
    try:
        import torchao  # noqa: F401
        import torchao.prototype.qat  # noqa: F401  (QATConfig imports it lazily: ScaleCalculationMode)
        import torchao.quantization.qat  # noqa: F401  (registers more enums, same notice)
    finally:
        for lg in loggers:
            lg.removeFilter(noise)


def compile_frozen(model: nn.Module) -> nn.Module:
    """``torch.compile(model, options={"freezing": True})``: torchao's fast path for int8 on CPU (quantize_
    first, then compile; freezing lets inductor fold the int8 weights into constant-weight kernels). The
    first call compiles (seconds); call it once before timing."""
    return torch.compile(model, options={"freezing": True})


def _linear_filter(module: nn.Module, fqn: str) -> bool:
    return isinstance(module, nn.Linear)


def int8_dynamic(model: nn.Module) -> nn.Module:
    """A copy with torchao's int8 dynamic quantization: int8 weights (per row), activations quantized to
    int8 on the fly per token, int8 matmul. ``torchao.quantization.Int8DynamicActivationInt8WeightConfig``."""
    _import_torchao_quietly()
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    new = copy.deepcopy(model).eval()
    quantize_(new, Int8DynamicActivationInt8WeightConfig(), filter_fn=_linear_filter)
    return new


def int8_weight_only(model: nn.Module) -> nn.Module:
    """A copy with torchao's int8 weight-only quantization (weights stored in int8, math in float)."""
    _import_torchao_quietly()
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    new = copy.deepcopy(model).eval()
    quantize_(new, Int8WeightOnlyConfig(), filter_fn=_linear_filter)
    return new


@torch.no_grad()
def calibrate_input_ranges(model: nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, float]:
    """Run calibration batches through ``model`` and record, for each Linear, the largest |input| seen."""
    amax: dict[str, float] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            def hook(mod, inputs, name=name):
                amax[name] = max(amax.get(name, 0.0), float(inputs[0].detach().abs().max()))
            hooks.append(module.register_forward_pre_hook(hook))
    model.eval()
    try:
        n = 0
        for batch in batches:
            model(batch)
            n += 1
        if n == 0:
            raise ValueError("need at least one calibration batch")
    finally:
        for h in hooks:
            h.remove()
    return amax


def int8_static(model: nn.Module, calibration: Iterable[torch.Tensor]) -> nn.Module:
    """A copy with torchao's int8 STATIC quantization: each Linear's input scale is fixed beforehand from
    calibration data (symmetric, per tensor: scale = max|input| / 127), weights int8 per row. Only for
    Linears fed 2-D inputs ``(N, features)``."""
    _import_torchao_quietly()
    from torchao.quantization import Int8StaticActivationInt8WeightConfig, PerRow, PerTensor, quantize_

    new = copy.deepcopy(model).eval()
    ranges = calibrate_input_ranges(new, calibration)
    for name, amax in ranges.items():
        scale = torch.tensor([[max(amax, 1e-8) / 127.0]])
        config = Int8StaticActivationInt8WeightConfig(act_quant_scale=scale, granularity=[PerTensor(), PerRow()])
        quantize_(new, config, filter_fn=lambda m, fqn, name=name: fqn == name)
    return new


def legacy_quantize_dynamic(model: nn.Module) -> nn.Module:
    """``torch.ao.quantization.quantize_dynamic`` (int8 Linear weights, fbgemm kernels). DEPRECATED in
    torch 2.13 (it warns; torchao is the supported path); kept to compare kernels. Its deprecation
    warnings are silenced here: read them once in the lesson."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear},
                                                      dtype=torch.qint8)
