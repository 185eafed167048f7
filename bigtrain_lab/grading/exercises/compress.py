"""Exercises of the compression lesson. References are torch's own implementations:
``torch.nn.utils.prune.l1_unstructured`` (the mask), ``torch.ao.quantization.MinMaxObserver`` with
``torch.quantize_per_tensor`` / ``torch.fake_quantize_per_tensor_affine`` / ``torch.dequantize``
(quantization), ``F.kl_div`` + ``F.cross_entropy`` (distillation), ``torch.linalg.svd`` (low rank). The
LoRA layer's reference is the lesson's own ``bigtrain_lab.compress.LoRALinear`` (no library in the pinned
stack ships one), checked on the behaviour the exercise text specifies.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune

from bigtrain_lab.compress.lowrank import LoRALinear
from bigtrain_lab.grading import probe
from bigtrain_lab.grading.compare import WrongKind, as_real
from bigtrain_lab.grading.exercises.optim import tensor_close
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe


class Problem(str):
    """What a runner found wrong with the candidate's object (not an exception of the candidate)."""


def _tensor(rng: np.random.Generator, *shape: int, dtype: torch.dtype = torch.float32, scale: float = 1.0,
            loc: float = 0.0) -> torch.Tensor:
    return torch.tensor(rng.normal(loc, scale, shape), dtype=dtype)


# ---- compress.magnitude_prune_mask --------------------------------------------------------------

def _torch_prune_mask(weight: torch.Tensor, amount: float) -> torch.Tensor:
    holder = nn.Module()
    holder.weight = nn.Parameter(weight.detach().clone())
    prune.l1_unstructured(holder, "weight", amount=amount)
    return holder.weight_mask.detach().clone()


def _mask_compare(got: Any, expected: torch.Tensor) -> str | None:
    shape = tuple(expected.shape)
    if not isinstance(got, torch.Tensor):
        return f"expected the mask as a torch.Tensor of shape {shape}, got {type(got).__name__}: {describe(got, 80)}"
    if tuple(got.shape) != shape:
        return f"the mask has shape {tuple(got.shape)}, expected the shape of the weight {shape}"
    if got.is_complex():
        return "the mask should hold 0 and 1, not complex numbers"
    values = got.detach().to(torch.float64)
    if not bool(((values == 0) | (values == 1)).all()):
        return "the mask must hold only 0 and 1 (multiply the weight by it)"
    pruned, want = int((values == 0).sum()), int((expected == 0).sum())
    if pruned != want:
        return (f"the mask zeroes {pruned} of {expected.numel()} entries, expected {want} "
                f"(= round(amount * numel), Python's round, halves to even)")
    if not torch.equal(values, expected.to(torch.float64)):
        return "the right number of entries is zeroed, but not the ones with the smallest |w|"
    return None


def _prune_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("small 2x3 weight, amount 0.5", (torch.tensor([[0.5, -2.0, 0.1], [3.0, -0.2, 1.0]]), 0.5)),
        Case("large NEGATIVE weights are important too (|w|, not w)",
             (torch.tensor([[-5.0, 0.3, -4.0, 0.2], [0.1, -3.0, 0.05, 2.0]]), 0.5)),
        Case("amount 0.0 keeps everything", (_tensor(rng, 4, 5), 0.0)),
        Case("amount 1.0 removes everything", (_tensor(rng, 3, 3), 1.0)),
        Case("amount * numel = 2.5 rounds to 2 (halves to even)", (_tensor(rng, 2, 5), 0.25)),
        Case("amount * numel = 3.5 rounds to 4", (_tensor(rng, 2, 7), 0.25)),
        Case("amount * numel = 1.5 rounds to 2", (_tensor(rng, 6), 0.25)),
        Case("amount * numel = 0.4 rounds to 0: nothing pruned", (_tensor(rng, 4), 0.1)),
        Case("a 1-D weight (a bias-like vector)", (_tensor(rng, 9), 0.3)),
        Case("a conv weight (16, 3, 3, 3)", (_tensor(rng, 16, 3, 3, 3), 0.6)),
        Case("float64 weight", (_tensor(rng, 8, 8, dtype=torch.float64), 0.9)),
        Case("weights already containing zeros", (torch.tensor([[0.0, 1.0, 0.0], [2.0, -3.0, 0.5]]), 0.5)),
    ]
    for i in range(8):
        shape = tuple(int(s) for s in rng.integers(1, 30, int(rng.integers(1, 4))))
        amount = float(np.round(rng.uniform(0.05, 0.97), 3))
        cases.append(Case(f"random #{i + 1} (shape {shape}, amount {amount})",
                          (_tensor(rng, *shape, scale=float(rng.uniform(0.01, 3))), amount)))
    return cases


register(Exercise(
    id="compress.magnitude_prune_mask",
    reference=_torch_prune_mask,
    make_cases=_prune_cases,
    compare=_mask_compare,
    hint="k = round(amount * weight.numel()) (Python's round, as torch does); the k entries with the "
         "smallest ABSOLUTE value get 0, all others 1 (torch.topk(weight.abs().flatten(), k, largest=False)). "
         "Return a tensor of the weight's shape; do not modify the weight.",
    section="unstructured-pruning",
))


# ---- compress.quantize_affine / compress.dequantize_affine ---------------------------------------

def _observer_qparams(x: torch.Tensor, num_bits: int, symmetric: bool) -> tuple[float, int, int, int]:
    from torch.ao.quantization.observer import MinMaxObserver

    if symmetric:
        qmax = 2 ** (num_bits - 1) - 1
        qmin = -qmax
        obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, quant_min=qmin, quant_max=qmax)
    else:
        qmin, qmax = 0, 2 ** num_bits - 1
        obs = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine, quant_min=qmin, quant_max=qmax)
    obs(x.detach().float())
    scale, zero_point = obs.calculate_qparams()
    return float(scale), int(zero_point), qmin, qmax


def _torch_quantize(x: torch.Tensor, *, num_bits: int = 8, symmetric: bool = False
                    ) -> tuple[torch.Tensor, float, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scale, zp, qmin, qmax = _observer_qparams(x, num_bits, symmetric)
        xf = x.detach().float()
        if num_bits == 8:
            qx = torch.quantize_per_tensor(xf, scale, zp, torch.qint8 if symmetric else torch.quint8)
            q = qx.int_repr().to(torch.int64)
        else:
            fq = torch.fake_quantize_per_tensor_affine(xf, scale, zp, qmin, qmax)
            q = torch.round(fq / scale).to(torch.int64) + zp
    return q, scale, zp


def run_quantize(fn: Callable[..., Any], x: torch.Tensor, **kwargs: Any) -> tuple[Any, torch.Tensor, dict]:
    """The candidate's output next to the input and the options (the comparator needs them)."""
    return fn(x, **kwargs), x, kwargs


def _one(value: Any) -> Any:
    """A one-element tensor (what torch's observers return) as its value."""
    return value.reshape(()) if isinstance(value, torch.Tensor) and value.numel() == 1 else value


def _quantize_compare(got: Any, expected: Any) -> str | None:
    out, x, kwargs = got
    (q_ref, scale_ref, zp_ref), _, _ = expected
    bits, symmetric = kwargs.get("num_bits", 8), kwargs.get("symmetric", False)
    if not isinstance(out, tuple | list) or len(out) != 3:
        return f"expected a tuple (q, scale, zero_point), got {type(out).__name__}: {describe(out, 80)}"
    q, scale, zp = out
    if not isinstance(q, torch.Tensor):
        return f"q should be a torch.Tensor of integers, got {type(q).__name__}"
    if q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        return f"q should have an integer dtype (torch.uint8 / int8 / int32 / int64), got {q.dtype}"
    if tuple(q.shape) != tuple(x.shape):
        return f"q has shape {tuple(q.shape)}, expected the input's shape {tuple(x.shape)}"
    try:
        scale_v = as_real(_one(scale), "scale as a number")
        zp_v = as_real(_one(zp), "zero_point as a number")
    except WrongKind as e:
        return str(e)
    if not math.isfinite(scale_v) or not math.isclose(scale_v, scale_ref, rel_tol=1e-6, abs_tol=0.0):
        return (f"scale: expected {scale_ref!r}, got {scale_v!r} (range widened to include 0; "
                f"{'max|x| / qmax' if symmetric else '(max - min) / (2^b - 1)'}; at least float32 eps)")
    if zp_v != zp_ref:
        return f"zero_point: expected {zp_ref}, got {zp_v!r}" + (" (symmetric: 0)" if symmetric else "")
    qmax = 2 ** (bits - 1) - 1 if symmetric else 2 ** bits - 1
    qmin = -qmax if symmetric else 0
    qi = q.to(torch.int64)
    if int(qi.min()) < qmin or int(qi.max()) > qmax:
        return f"q has values in [{int(qi.min())}, {int(qi.max())}], outside [{qmin}, {qmax}]"
    diff = (qi - q_ref).abs()
    ratio = x.detach().double() / scale_ref
    at_tie = (ratio - ratio.floor() - 0.5).abs() < 1e-3  # x / scale on a .5: either neighbour is fine
    bad = (diff > 1) | ((diff == 1) & ~at_tie)
    if bool(bad.any()):
        i = int(torch.nonzero(bad.flatten())[0])
        return (f"q differs from torch's at {int(bad.sum())} positions; first: x = {float(x.flatten()[i])!r} "
                f"-> expected {int(q_ref.flatten()[i])}, got {int(qi.flatten()[i])} "
                "(q = clamp(round(x / scale) + zero_point, qmin, qmax))")
    err = float(((qi.double() - zp_v) * scale_v - x.detach().double()).abs().max())
    if err > scale_v / 2 * (1 + 1e-4) + 1e-12:
        return f"round-trip error {err:.3g} exceeds scale / 2 = {scale_v / 2:.3g}"
    return None


def _quantize_cases(rng: np.random.Generator) -> list[Case]:
    sym = {"symmetric": True}
    cases = [
        Case("small example", (torch.tensor([-1.0, 0.0, 0.5, 2.0]),)),
        Case("small example, symmetric", (torch.tensor([-1.0, 0.0, 0.5, 2.0]),), sym),
        Case("all positive: the range is widened to include 0", (torch.tensor([1.0, 2.0, 3.0, 4.0]),)),
        Case("all negative: the range is widened to include 0", (torch.tensor([-4.0, -2.5, -1.0]),)),
        Case("all negative, symmetric", (torch.tensor([-4.0, -2.5, -1.0]),), sym),
        Case("all zeros (scale falls back to float32 eps)", (torch.zeros(5),)),
        Case("a single value", (torch.tensor([0.7]),)),
        Case("a 2-D weight matrix", (_tensor(rng, 16, 32, scale=0.05),)),
        Case("a 2-D weight matrix, symmetric", (_tensor(rng, 16, 32, scale=0.05),), sym),
        Case("4 bits", (_tensor(rng, 50),), {"num_bits": 4}),
        Case("4 bits, symmetric", (_tensor(rng, 50),), {"num_bits": 4, "symmetric": True}),
        Case("2 bits", (_tensor(rng, 40, loc=1.0),), {"num_bits": 2}),
        Case("an outlier stretches the scale", (torch.cat([_tensor(rng, 30, scale=0.1), torch.tensor([25.0])]),)),
        Case("ReLU-like activations (min 0)", (_tensor(rng, 8, 8).clamp(min=0),)),
    ]
    for i in range(10):
        shape = tuple(int(s) for s in rng.integers(1, 20, int(rng.integers(1, 4))))
        kwargs: dict[str, Any] = {}
        if i % 2:
            kwargs["symmetric"] = True
        if i % 3 == 2:
            kwargs["num_bits"] = int(rng.integers(3, 8))
        x = _tensor(rng, *shape, scale=float(rng.uniform(0.01, 5)), loc=float(rng.normal(0, 1)))
        cases.append(Case(f"random #{i + 1} (shape {shape}, {kwargs or 'defaults'})", (x,), kwargs))
    return cases


register(Exercise(
    id="compress.quantize_affine",
    reference=_torch_quantize,
    make_cases=_quantize_cases,
    compare=_quantize_compare,
    run=run_quantize,
    hint="lo = min(x.min(), 0), hi = max(x.max(), 0). Affine: qmin, qmax = 0, 2^b - 1; scale = (hi - lo) / "
         "(qmax - qmin); zero_point = qmin - round(lo / scale). Symmetric: qmax = 2^(b-1) - 1, qmin = -qmax, "
         "scale = max(-lo, hi) / qmax, zero_point = 0. Clamp scale to at least torch.finfo(torch.float32).eps. "
         "q = clamp(round(x / scale) + zero_point, qmin, qmax) as an integer tensor; scale a float, "
         "zero_point an int.",
    section="int8-from-first-principles",
))


def _torch_dequantize(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if q.dtype in (torch.uint8, torch.int8):
            qx = torch._make_per_tensor_quantized_tensor(q, scale, zero_point)
            return torch.dequantize(qx)
        return (q.to(torch.float64) - zero_point).mul(scale).to(torch.float32)


def _dequantize_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("small uint8 example", (torch.tensor([0, 64, 128, 255], dtype=torch.uint8), 0.01, 64)),
        Case("int8, symmetric (zero_point 0)", (torch.tensor([-127, -1, 0, 5, 127], dtype=torch.int8), 0.5, 0)),
        Case("uint8 near the top (q - zero_point must not wrap around in uint8)",
             (torch.tensor([250, 3, 255], dtype=torch.uint8), 0.1, 200)),
        Case("int64 codes (4-bit values)", (torch.tensor([0, 7, 15], dtype=torch.int64), 0.25, 8)),
        Case("a 2-D tensor", (torch.tensor(rng.integers(0, 256, (4, 6)), dtype=torch.uint8), 0.037, 121)),
    ]
    for i in range(8):
        shape = tuple(int(s) for s in rng.integers(1, 15, int(rng.integers(1, 3))))
        if i % 2:
            q = torch.tensor(rng.integers(-127, 128, shape), dtype=torch.int8)
            zp = 0
        else:
            q = torch.tensor(rng.integers(0, 256, shape), dtype=torch.uint8)
            zp = int(rng.integers(0, 256))
        cases.append(Case(f"random #{i + 1} ({q.dtype}, shape {shape})",
                          (q, float(rng.uniform(1e-3, 1.0)), zp)))
    return cases


register(Exercise(
    id="compress.dequantize_affine",
    reference=_torch_dequantize,
    make_cases=_dequantize_cases,
    compare=tensor_close("the dequantized tensor", steps=4),  # (q - zero_point) * scale, cast: exact or 1-2 roundings
    hint="x_hat = (q - zero_point) * scale as float32. Convert q to float (or a wide integer type) BEFORE "
         "subtracting: in uint8, 3 - 200 wraps around to 59.",
    section="int8-from-first-principles",
))


# ---- compress.distillation_loss ----------------------------------------------------------------

def _torch_distillation_loss(student_logits, teacher_logits, targets, *, temperature, alpha):
    T = temperature
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.softmax(teacher_logits / T, dim=-1),
                    reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)


def _scalar_tensor_compare(rtol: dict[torch.dtype, float]):
    def compare(got: Any, expected: torch.Tensor) -> str | None:
        if not isinstance(got, torch.Tensor):
            return (f"expected the loss as a 0-d torch.Tensor (so that .backward() works), got "
                    f"{type(got).__name__}: {describe(got, 80)}")
        if got.ndim != 0:
            return f"expected a scalar (0-d) loss, got shape {tuple(got.shape)} (reduce over the batch)"
        value, exp = float(got.detach()), float(expected)
        if math.isnan(value):
            return "the loss is NaN (log of 0? use log_softmax, not log(softmax))"
        tol = rtol.get(expected.dtype, 1e-5)
        if not math.isclose(value, exp, rel_tol=tol, abs_tol=tol * 1e-2):
            return f"value differs: expected {exp!r}, got {value!r}"
        return None

    return compare


def _kd_cases(rng: np.random.Generator) -> list[Case]:
    def logits(n, c, dtype=torch.float32, scale=2.0):
        return _tensor(rng, n, c, dtype=dtype, scale=scale)

    def labels(n, c):
        return torch.tensor(rng.integers(0, c, n), dtype=torch.int64)

    s, t, y = logits(4, 3), logits(4, 3), labels(4, 3)
    cases = [
        Case("small example (T=2, alpha=0.5)", (s, t, y), {"temperature": 2.0, "alpha": 0.5}),
        Case("T=1, alpha=1 (pure KL)", (s, t, y), {"temperature": 1.0, "alpha": 1.0}),
        Case("alpha=0 (pure cross-entropy with the labels)", (s, t, y), {"temperature": 4.0, "alpha": 0.0}),
        Case("T=4: the soft term is multiplied by T^2", (s, t, y), {"temperature": 4.0, "alpha": 1.0}),
        Case("student equals teacher: KL is 0", (s, s.clone(), y), {"temperature": 3.0, "alpha": 0.7}),
        Case("10 classes, batch 32 (batchmean: sum over classes, mean over samples)",
             (logits(32, 10), logits(32, 10), labels(32, 10)), {"temperature": 5.0, "alpha": 0.9}),
        Case("a single sample", (logits(1, 5), logits(1, 5), labels(1, 5)), {"temperature": 2.0, "alpha": 0.3}),
        Case("very confident teacher (logits in the hundreds)",
             (logits(6, 4), logits(6, 4, scale=100.0), labels(6, 4)), {"temperature": 1.0, "alpha": 0.5}),
        Case("float64", (logits(8, 6, torch.float64), logits(8, 6, torch.float64), labels(8, 6)),
             {"temperature": 3.0, "alpha": 0.25}),
        Case("temperature below 1 (sharpening)", (logits(5, 3), logits(5, 3), labels(5, 3)),
             {"temperature": 0.5, "alpha": 0.6}),
    ]
    for i in range(8):
        n, c = int(rng.integers(1, 64)), int(rng.integers(2, 20))
        kw = {"temperature": float(np.round(rng.uniform(1, 10), 2)), "alpha": float(np.round(rng.uniform(0, 1), 2))}
        cases.append(Case(f"random #{i + 1} (batch {n}, {c} classes, {kw})",
                          (logits(n, c, scale=float(rng.uniform(0.5, 5))), logits(n, c), labels(n, c)), kw))
    return cases


register(Exercise(
    id="compress.distillation_loss",
    reference=_torch_distillation_loss,
    make_cases=_kd_cases,
    compare=_scalar_tensor_compare({torch.float32: 2e-5, torch.float64: 1e-9}),
    hint="soft = F.kl_div(F.log_softmax(student / T, -1), F.softmax(teacher / T, -1), reduction='batchmean') "
         "is KL(teacher || student) (kl_div takes the student's LOG-probabilities first); loss = alpha * T**2 * "
         "soft + (1 - alpha) * F.cross_entropy(student_logits, targets) (the hard term at T = 1).",
    section="knowledge-distillation",
))


# ---- compress.low_rank_factorize --------------------------------------------------------------

def _linear_from(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def run_factorize(fn: Callable[..., Any], weight: torch.Tensor, bias: torch.Tensor | None, rank: int,
                  x: torch.Tensor) -> Any:
    """Build the Linear, factorize it, and return what the checker compares: the product of the two
    weights, the first layer's bias (must be absent or zero), the second's, and the output on ``x``."""
    linear = _linear_from(weight, bias)
    out = fn(linear, rank)
    if not torch.equal(linear.weight.detach(), weight):
        return Problem("the Linear passed in was modified: build NEW layers")
    if not isinstance(out, nn.Sequential) or len(out) != 2 or not all(isinstance(m, nn.Linear) for m in out):
        return Problem(f"expected nn.Sequential(nn.Linear, nn.Linear), got {describe(out, 120)}")
    first, second = out
    if tuple(first.weight.shape) != (rank, weight.shape[1]) or tuple(second.weight.shape) != (weight.shape[0], rank):
        return Problem(f"layer shapes {tuple(first.weight.shape)} and {tuple(second.weight.shape)}; expected "
                       f"({rank}, {weight.shape[1]}) then ({weight.shape[0]}, {rank})")
    if first.bias is not None and bool(first.bias.detach().ne(0).any()):
        return Problem("the first layer must add no bias (the bias belongs after the product)")
    with torch.no_grad():
        product = second.weight @ first.weight
        y = out(x)
    return product.detach(), (None if second.bias is None else second.bias.detach()), y.detach()


#: The best rank-r approximation is well-conditioned only away from a tie sigma_r = sigma_(r+1): a backward
#: stable SVD (any correct implementation) is exact for W + E, ||E|| <= c n eps ||W||, and the truncation
#: moves by about ||E|| (1 + sigma_(r+1) / (sigma_r - sigma_(r+1))). The cases are drawn with that gap
#: factor at most ``GAP_FACTOR``.
GAP_FACTOR = 100.0


def _factorize_steps(name: str, expected: torch.Tensor) -> float:
    """Roundings allowed on the product of the two weights: 4 n (1 + GAP_FACTOR), n the larger dimension
    (||W||_2 <= n max |W|, and the bound is against max |expected|); the output x W_r^T + b adds a product
    over the input dimension, another factor n."""
    n = max(expected.shape) if expected.ndim else 1
    steps = 4 * n * (1 + GAP_FACTOR)
    return steps * n if name == "the output" else steps


def _gap_factor(weight: torch.Tensor, rank: int) -> float:
    s = torch.linalg.svdvals(weight.detach().double())
    if rank < 1 or rank >= len(s):
        return 0.0
    gap = float(s[rank - 1] - s[rank])
    return math.inf if gap <= 0 else float(s[rank]) / gap


def _factorize_compare(got: Any, expected: Any) -> str | None:
    if isinstance(got, Problem):
        return str(got)
    names = ("the product of the two weights (the best rank-r approximation)", "the bias", "the output")
    for name, value, exp in zip(names, got, expected, strict=True):
        if exp is None:
            if value is not None:
                return "the original layer has no bias, so neither should the factorized one"
            continue
        if value is None:
            return "the bias was dropped: keep it on the second layer"
        if reason := tensor_close(name, steps=_factorize_steps(name, exp))(value, exp):
            return reason
    return None


def _torch_factorize(linear: nn.Linear, rank: int) -> nn.Sequential:
    out_f, in_f = linear.weight.shape
    if not 1 <= rank <= min(out_f, in_f):
        raise ValueError(f"rank must be in [1, {min(out_f, in_f)}]")
    U, S, Vh = torch.linalg.svd(linear.weight.detach().double(), full_matrices=False)
    first = nn.Linear(in_f, rank, bias=False, dtype=linear.weight.dtype)
    second = nn.Linear(rank, out_f, bias=linear.bias is not None, dtype=linear.weight.dtype)
    with torch.no_grad():
        first.weight.copy_(Vh[:rank])
        second.weight.copy_(U[:, :rank] * S[:rank])
        if linear.bias is not None:
            second.bias.copy_(linear.bias)
    return nn.Sequential(first, second)


def _factorize_cases(rng: np.random.Generator) -> list[Case]:
    def case(label, out_f, in_f, rank, *, bias=True, dtype=torch.float32, raises=None, weight=None):
        w = _tensor(rng, out_f, in_f, dtype=dtype) if weight is None else weight
        while weight is None and raises is None and _gap_factor(w, rank) > GAP_FACTOR:  # a near tie: redraw
            w = _tensor(rng, out_f, in_f, dtype=dtype)
        b = _tensor(rng, out_f, dtype=dtype) if bias else None
        x = _tensor(rng, 5, in_f, dtype=dtype)
        return Case(label, (w, b, rank, x), raises=raises)

    low = _tensor(rng, 12, 3, dtype=torch.float64) @ _tensor(rng, 3, 10, dtype=torch.float64)
    cases = [
        case("8x6 weight, rank 2", 8, 6, 2),
        case("rank 1", 5, 7, 1),
        case("full rank (min(out, in)): the exact weight", 4, 6, 4),
        case("wide layer (out < in), rank 3", 3, 20, 3),
        case("no bias", 6, 6, 3, bias=False),
        case("float64, rank 5", 10, 12, 5, dtype=torch.float64),
        case("a rank-3 weight at rank 3 is reproduced exactly", 12, 10, 3, dtype=torch.float64, weight=low),
        case("rank 0 is invalid", 4, 4, 0, raises=ValueError),
        case("rank above min(out, in) is invalid", 4, 6, 5, raises=ValueError),
    ]
    for i in range(6):
        out_f, in_f = (int(v) for v in rng.integers(2, 40, 2))
        rank = int(rng.integers(1, min(out_f, in_f) + 1))
        cases.append(case(f"random #{i + 1} ({out_f}x{in_f}, rank {rank})", out_f, in_f, rank,
                          bias=bool(i % 3), dtype=torch.float64 if i % 2 else torch.float32))
    return cases


register(Exercise(
    id="compress.low_rank_factorize",
    reference=_torch_factorize,
    make_cases=_factorize_cases,
    compare=_factorize_compare,
    run=run_factorize,
    hint="U, S, Vh = torch.linalg.svd(W, full_matrices=False); keep the top `rank`: first = Linear(in, rank, "
         "bias=False) with weight Vh[:rank] (or sqrt(S) * Vh), second = Linear(rank, out) with weight "
         "U[:, :rank] * S[:rank] (or U * sqrt(S)) and the original bias. Raise ValueError unless "
         "1 <= rank <= min(out, in). Build new layers; leave `linear` alone.",
    section="low-rank-svd",
))


# ---- compress.LoRALinear ----------------------------------------------------------------------

def run_lora(cls: Callable[..., Any], weight: torch.Tensor, bias: torch.Tensor | None, rank: int, alpha: float,
             x: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> Any:
    """Build ``cls(base, rank, alpha)`` and probe what the exercise specifies, in order. The object is
    probed through ``probe``, so the same steps run on it in-process or where it lives, in a kernel."""
    base = _linear_from(weight, bias)
    layer = cls(base, rank, alpha)
    facts = probe.module_facts(layer, ("A", "B"))
    if not facts["is_module"]:
        return Problem(f"LoRALinear(...) should build an nn.Module, got {facts['type']}")
    a, b = facts["attrs"]["A"], facts["attrs"]["B"]
    if not isinstance(a, nn.Parameter) or not isinstance(b, nn.Parameter):
        return Problem("store the adapters as nn.Parameter attributes named A (rank x in_features) and "
                       "B (out_features x rank)")
    if tuple(a.shape) != tuple(A.shape) or tuple(b.shape) != tuple(B.shape):
        return Problem(f"A has shape {tuple(a.shape)} and B {tuple(b.shape)}; expected {tuple(A.shape)} and "
                       f"{tuple(B.shape)}")
    if bool(b.detach().ne(0).any()):
        return Problem("B must start at zero, so that the layer starts equal to the base layer")
    if not bool(a.detach().ne(0).any()):
        return Problem("A must start random (not zero): with A = B = 0 no gradient ever reaches either")
    if facts["trainable"] != ["A", "B"]:
        return Problem(f"only A and B may be trainable; trainable parameters: {facts['trainable']} (freeze the "
                       "base: requires_grad_(False) on its parameters)")
    y0 = probe.forward(layer, x)
    probe.assign(layer, {"A": A, "B": B})
    y1, grads = probe.forward_backward(layer, x, ("A", "B"))
    if grads["A"] is None or grads["B"] is None:
        return Problem("no gradient reached A or B: use them (as parameters) in forward")
    before = probe.module_facts(layer)["state"]
    merged = probe.call_method(layer, "merge")
    after = probe.module_facts(layer)["state"]
    if before.keys() != after.keys() or any(not torch.equal(before[k], after[k]) for k in before):
        return Problem("merge() changed the layer it was called on: build a new nn.Linear, leave self alone")
    if not isinstance(merged, nn.Linear):
        return Problem(f"merge() should return an nn.Linear, got {type(merged).__name__}")
    with torch.no_grad():
        y2 = merged(x)
    return y0, y1, grads["A"], grads["B"], y2.detach()


#: Roundings behind each checked value: products over in_features and the rank (both <= 24 here), the
#: gradients' sums over the batch (<= 6 rows), a few scalings: 4 * (24 + 24 + 6) covers them.
LORA_STEPS = 4 * (24 + 24 + 6)


def _lora_compare(got: Any, expected: Any) -> str | None:
    if isinstance(got, Problem):
        return str(got)
    names = ("the output right after construction (B = 0: equal to base(x))",
             "the output with A and B set (base(x) + (alpha / rank) * x A^T B^T)",
             "the gradient of A", "the gradient of B", "the output of merge()")
    for name, value, exp in zip(names, got, expected, strict=True):
        if reason := tensor_close(name, steps=LORA_STEPS)(value, exp):
            return reason
    return None


def _lora_cases(rng: np.random.Generator) -> list[Case]:
    def case(label, out_f, in_f, rank, alpha, *, bias=True, dtype=torch.float64, batch=(4,)):
        w = _tensor(rng, out_f, in_f, dtype=dtype)
        b = _tensor(rng, out_f, dtype=dtype) if bias else None
        x = _tensor(rng, *batch, in_f, dtype=dtype)
        A, B = _tensor(rng, rank, in_f, dtype=dtype), _tensor(rng, out_f, rank, dtype=dtype)
        return Case(label, (w, b, rank, alpha, x, A, B))

    cases = [
        case("6 -> 5, rank 2, alpha 4", 5, 6, 2, 4.0),
        case("alpha == rank (scaling 1)", 4, 4, 3, 3.0),
        case("alpha 16, rank 4 (scaling 4)", 8, 10, 4, 16.0),
        case("rank 1", 3, 7, 1, 2.0),
        case("no bias in the base layer", 6, 3, 2, 8.0, bias=False),
        case("float32", 5, 5, 2, 4.0, dtype=torch.float32),
        case("a sequence batch (2, 3, in)", 4, 6, 2, 1.0, batch=(2, 3)),
    ]
    for i in range(5):
        out_f, in_f = (int(v) for v in rng.integers(2, 24, 2))
        rank = int(rng.integers(1, min(out_f, in_f) + 1))
        alpha = float(rng.choice([1.0, 2.0, 8.0, 16.0, 32.0]))
        cases.append(case(f"random #{i + 1} ({in_f} -> {out_f}, rank {rank}, alpha {alpha})", out_f, in_f,
                          rank, alpha, bias=bool(i % 2)))
    return cases


register(Exercise(
    id="compress.LoRALinear",
    reference=LoRALinear,
    make_cases=_lora_cases,
    compare=_lora_compare,
    run=run_lora,
    hint="In __init__: keep `base`, call requires_grad_(False) on its parameters; self.A = nn.Parameter(rank x "
         "in_features, random, e.g. kaiming_uniform_), self.B = nn.Parameter(zeros(out_features, rank)) in the "
         "base's dtype. forward: base(x) + (alpha / rank) * (x @ A.T) @ B.T. merge(): a new nn.Linear with "
         "weight W + (alpha / rank) * B @ A and the same bias.",
    section="lora-from-scratch",
))
