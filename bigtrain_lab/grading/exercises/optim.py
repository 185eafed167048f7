"""Exercises of the optimizers lesson: one SGD step and one AdamW step, checked over MANY steps.

The learner writes a pure function for a single step; the checker's runner calls it on a sequence of
gradients, feeding each step's outputs (parameter and optimizer state) back into the next call, and the
whole trajectory is compared with ``torch.optim.SGD`` / ``torch.optim.AdamW`` on the same gradients.
The reference for one step is torch's functional optimizer (``torch.optim.sgd.sgd``,
``torch.optim.adamw.adamw``: what ``SGD.step()`` / ``AdamW.step()`` run) applied to the state handed in
(momentum buffer; step count and moments). Since that state is all an optimizer carries from step to
step, the reference trajectory is exactly what one ``torch.optim.SGD`` / ``AdamW`` stepped N times gives
(``tests/test_optim.py`` checks this, bit for bit).

The tensor comparators used by the lesson 02-04 exercises live here too (``tensor_close``,
``tensor_tuple``, ``steps``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.optim.adamw import adamw
from torch.optim.sgd import sgd

from bigtrain_lab.grading.compare import max_abs, normwise_reason, rounding_bound
from bigtrain_lab.grading.registry import Case, Comparator, Exercise, InputModified, register
from bigtrain_lab.grading.sandbox import clone_inputs, describe, same_value

#: (rtol, atol) per dtype, for comparators whose error is not rounding (a finite-difference truncation, a
#: reference computed in a narrower format): given explicitly where used.
DEFAULT_TOLERANCES = {torch.float64: (1e-9, 1e-12), torch.float32: (1e-5, 1e-6)}

#: Rounding steps allowed by default (``compare.rounding_bound``): an optimizer run of up to 30 steps,
#: each a handful of operations on values of the size of the parameter and its state, times the
#: cancellation AdamW's bias correction 1 / (1 - beta2**t) can amplify (up to 1 / (1 - 0.999)).
DEFAULT_STEPS = 2**14

#: steps(expected) -> how many roundings feed each entry of ``expected`` (or a constant).
Steps = float | Callable[[torch.Tensor], float]


# ---- tensor comparators -------------------------------------------------------------------------

def _tensor_reason(got: Any, expected: torch.Tensor, what: str,
                   tolerances: dict[torch.dtype, tuple[float, float]] | None = None,
                   steps: Steps | None = None) -> str | None:
    shape = tuple(expected.shape)
    if not isinstance(got, torch.Tensor):
        return (f"expected {what} as a torch.Tensor of shape {shape}, got {type(got).__name__}: "
                f"{describe(got, 80)}")
    if tuple(got.shape) != shape:
        return f"{what} has shape {tuple(got.shape)}, expected shape {shape}"
    if got.dtype != expected.dtype:
        return f"{what} has dtype {got.dtype}, expected {expected.dtype} (keep the dtype of the inputs)"
    got = got.detach()
    if bool(torch.isnan(got).any()) and not bool(torch.isnan(expected).any()):
        return f"{what} contains NaN (a 0/0, an exp overflow or a fully masked row?)"
    if tolerances is None:
        n = steps(expected) if callable(steps) else (DEFAULT_STEPS if steps is None else steps)
        return normwise_reason(got, expected, what, rounding_bound(n, max_abs(expected), expected.dtype))
    rtol, atol = tolerances.get(expected.dtype, DEFAULT_TOLERANCES[torch.float32])
    if not torch.allclose(got, expected, rtol=rtol, atol=atol):
        err = float((got - expected).abs().max())
        return f"{what} differs: max |got - expected| = {err:.3g} (allowed {atol:g} + {rtol:g} * |expected|)"
    return None


def tensor_close(what: str = "the result", tolerances: dict | None = None, *, steps: Steps | None = None
                 ) -> Comparator:
    """A tensor of the expected shape and dtype, NaN-free, close to the expected one.

    By default "close" is norm-wise, derived from the dtype and the case: max |got - expected| <=
    ``compare.rounding_bound(steps, max |expected|, dtype)``, ``steps`` (a number, or a function of the
    expected tensor) counting the roundings that feed each entry. ``tolerances`` ({dtype: (rtol, atol)},
    element-wise) is for errors that are not rounding (a finite-difference truncation, say)."""

    def compare(got: Any, expected: torch.Tensor) -> str | None:
        return _tensor_reason(got, expected, what, tolerances, steps)

    return compare


def tensor_tuple(names: Sequence[str], tolerances: dict | None = None, *, steps: Steps | None = None
                 ) -> Comparator:
    """A tuple of ``len(names)`` tensors, each compared like ``tensor_close``; where the expected
    element is None (e.g. no momentum buffer when momentum is 0) any value is accepted."""
    what = f"a tuple of {len(names)} tensors ({', '.join(names)})"

    def compare(got: Any, expected: Sequence[Any]) -> str | None:
        if not isinstance(got, tuple | list):
            return f"expected {what}, got {type(got).__name__}: {describe(got, 80)}"
        if len(got) != len(names):
            return f"expected {what}, got {len(got)} values"
        for name, value, exp in zip(names, got, expected, strict=True):
            if exp is not None and (reason := _tensor_reason(value, exp, name, tolerances, steps)):
                return reason
        return None

    return compare


def steps(step_compare: Comparator) -> Comparator:
    """A multi-step run (a list with one output per step) compared step by step; the first differing
    step is reported, since a mistake usually shows at step 1 or 2 and then compounds."""

    def compare(got: list, expected: list) -> str | None:
        for index, (value, exp) in enumerate(zip(got, expected, strict=False)):
            if reason := step_compare(value, exp):
                return f"step {index + 1} of {len(expected)}: {reason}"
        if len(got) != len(expected):
            return (f"stopped after step {len(got)} of {len(expected)}: what it returned could not be "
                    "passed into the next step")
        return None

    return compare


# ---- runners: drive a one-step function over a gradient sequence --------------------------------

def _is_state(value: Any, n: int, optional: Sequence[int] = ()) -> bool:
    return isinstance(value, tuple | list) and len(value) == n and all(
        isinstance(v, torch.Tensor) or (i in optional and v is None) for i, v in enumerate(value))


def _call_step(call: Callable[[], Any], handed: tuple, index: int) -> Any:
    """``call()`` (one step of the learner's function), making sure it left the state handed in alone."""
    kept = clone_inputs(handed)
    out = call()
    if not same_value(handed, kept):
        raise InputModified(f"at step {index + 1} a tensor passed in (parameter or optimizer state) "
                            "was changed")
    return out


def run_sgd(sgd_step: Callable[..., Any], param: torch.Tensor, grads: list[torch.Tensor],
            momentum_buffer: torch.Tensor | None = None, **hyper: Any) -> list:
    """``sgd_step`` on each gradient in turn from ``(param, momentum_buffer)``; one output per step."""
    outputs: list = []
    for index, grad in enumerate(grads):
        out = _call_step(functools.partial(sgd_step, param, grad, momentum_buffer, **hyper),
                         (param, momentum_buffer), index)
        outputs.append(out)
        if not _is_state(out, 2, optional=(1,)):
            break
        param, momentum_buffer = out
    return outputs


def run_adamw(adamw_step: Callable[..., Any], param: torch.Tensor, grads: list[torch.Tensor],
              exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, first_step: int = 1, **hyper: Any) -> list:
    """``adamw_step`` on each gradient in turn, the step count going up from ``first_step``."""
    outputs: list = []
    for index, grad in enumerate(grads):
        step = first_step + index
        out = _call_step(functools.partial(adamw_step, param, grad, exp_avg, exp_avg_sq, step, **hyper),
                         (param, exp_avg, exp_avg_sq), index)
        outputs.append(out)
        if not _is_state(out, 3):
            break
        param, exp_avg, exp_avg_sq = out
    return outputs


# ---- references: torch's optimizers, one step from the given state -----------------------------
# ``torch.optim.sgd.sgd`` and ``torch.optim.adamw.adamw`` are torch's functional optimizers: the code that
# ``SGD.step()`` / ``AdamW.step()`` run on the state they keep. (Constructing the optimizer classes would
# give the same numbers but import torch._dynamo on first use, a 1-3 s pause in a learner's first check.)

def _torch_sgd_step(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    p = param.detach().clone()
    buffers = [None if momentum_buffer is None else momentum_buffer.detach().clone()]
    sgd([p], [grad.detach().clone()], buffers, weight_decay=weight_decay, momentum=momentum, lr=lr,
        dampening=0.0, nesterov=nesterov, maximize=False)
    return p, (buffers[0] if momentum != 0 else None)  # torch keeps no buffer when momentum == 0


def _torch_adamw_step(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8,
                      weight_decay=0.01):
    p, m, v = (t.detach().clone() for t in (param, exp_avg, exp_avg_sq))
    # torch's state holds the number of steps taken so far and increments it first: this step - 1.
    adamw([p], [grad.detach().clone()], [m], [v], [], [torch.tensor(float(step - 1))], amsgrad=False,
          beta1=betas[0], beta2=betas[1], lr=lr, weight_decay=weight_decay, eps=eps, maximize=False)
    return p, m, v


# ---- case generators ----------------------------------------------------------------------------

def _tensor(rng: np.random.Generator, shape: tuple, dtype: torch.dtype = torch.float64, scale: float = 1.0):
    return torch.tensor(rng.normal(0.0, scale, shape), dtype=dtype)


def _grads(rng: np.random.Generator, n: int, shape: tuple, dtype: torch.dtype = torch.float64,
           scale: float = 1.0) -> list[torch.Tensor]:
    return [_tensor(rng, shape, dtype, scale) for _ in range(n)]


SHAPES = [(), (5,), (3, 4), (2, 3, 2), (7,)]


def _sgd_cases(rng: np.random.Generator) -> list[Case]:
    p = _tensor(rng, (4,))
    cases = [
        Case("plain SGD, 3 steps", (p, _grads(rng, 3, (4,))), {"lr": 0.1}),
        Case("momentum 0.9, 10 steps", (p, _grads(rng, 10, (4,))), {"lr": 0.05, "momentum": 0.9}),
        Case("momentum: the first step starts the buffer at the gradient", (p, _grads(rng, 1, (4,))),
             {"lr": 0.1, "momentum": 0.9}),
        Case("weight decay without momentum", (p, _grads(rng, 5, (4,))), {"lr": 0.1, "weight_decay": 0.1}),
        Case("weight decay with momentum (decay goes INTO the buffer)", (p, _grads(rng, 8, (4,))),
             {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.05}),
        Case("Nesterov momentum", (p, _grads(rng, 10, (4,))), {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        Case("Nesterov with weight decay", (_tensor(rng, (3, 4)), _grads(rng, 6, (3, 4))),
             {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01, "nesterov": True}),
        Case("zero gradients: only weight decay moves the weights", (p, [torch.zeros(4, dtype=torch.float64)] * 4),
             {"lr": 0.5, "momentum": 0.5, "weight_decay": 0.2}),
        Case("resuming with a momentum buffer from a checkpoint",
             (p, _grads(rng, 4, (4,)), _tensor(rng, (4,))), {"lr": 0.1, "momentum": 0.9}),
        Case("a 0-d parameter (a scalar tensor)", (torch.tensor(1.5, dtype=torch.float64),
                                                    _grads(rng, 5, ())), {"lr": 0.1, "momentum": 0.5}),
        Case("float32 parameter, 20 steps", (_tensor(rng, (3, 4), torch.float32),
                                            _grads(rng, 20, (3, 4), torch.float32)),
             {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-2}),
    ]
    for i in range(8):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        momentum = float(rng.choice([0.0, 0.5, 0.9, 0.99]))
        hyper = {"lr": float(10 ** rng.uniform(-3, -0.5)), "momentum": momentum,
                 "weight_decay": float(rng.choice([0.0, 1e-4, 0.01, 0.1])),
                 "nesterov": bool(momentum > 0 and rng.random() < 0.4)}
        n = int(rng.integers(2, 30))
        cases.append(Case(f"random #{i + 1} ({n} steps, shape {shape})",
                          (_tensor(rng, shape), _grads(rng, n, shape, scale=float(rng.uniform(0.1, 3)))), hyper))
    return cases


def _zeros_state(param: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros_like(param), torch.zeros_like(param)


def _adamw_cases(rng: np.random.Generator) -> list[Case]:
    p = _tensor(rng, (4,))

    def fresh(param, n, scale=1.0):
        return (param, _grads(rng, n, tuple(param.shape), param.dtype, scale), *_zeros_state(param), 1)

    cases = [
        Case("the first step (step=1, zero moments)", fresh(p, 1), {"lr": 1e-2}),
        Case("5 steps with the defaults", fresh(p, 5), {"lr": 1e-2}),
        Case("no weight decay (plain Adam)", fresh(p, 6), {"lr": 1e-2, "weight_decay": 0.0}),
        Case("large decoupled weight decay", fresh(p, 6), {"lr": 0.05, "weight_decay": 0.5}),
        Case("zero gradients: only the decay moves the weights", (p, [torch.zeros(4, dtype=torch.float64)] * 3,
                                                                  *_zeros_state(p), 1),
             {"lr": 0.1, "weight_decay": 0.1}),
        Case("betas=(0.8, 0.99)", fresh(p, 10), {"lr": 1e-2, "betas": (0.8, 0.99)}),
        Case("tiny gradients with eps=1e-3 (where eps goes matters)", fresh(p, 5, scale=1e-3),
             {"lr": 1e-2, "eps": 1e-3}),
        Case("resuming at step 101 with moments from a checkpoint",
             (p, _grads(rng, 4, (4,)), _tensor(rng, (4,), scale=0.1), _tensor(rng, (4,)).abs() * 0.1, 101),
             {"lr": 1e-3, "weight_decay": 0.1}),
        Case("a 0-d parameter (a scalar tensor)", fresh(torch.tensor(-0.7, dtype=torch.float64), 4), {"lr": 0.1}),
        Case("float32 parameter, 20 steps", fresh(_tensor(rng, (3, 4), torch.float32), 20),
             {"lr": 1e-3, "weight_decay": 0.1}),
    ]
    for i in range(8):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        n = int(rng.integers(2, 30))
        hyper = {"lr": float(10 ** rng.uniform(-4, -1)),
                 "betas": (float(rng.choice([0.0, 0.8, 0.9, 0.95])), float(rng.choice([0.95, 0.99, 0.999]))),
                 "eps": float(rng.choice([1e-8, 1e-6, 1e-3])),
                 "weight_decay": float(rng.choice([0.0, 0.01, 0.1, 0.3]))}
        cases.append(Case(f"random #{i + 1} ({n} steps, shape {shape})",
                          fresh(_tensor(rng, shape), n, scale=float(10 ** rng.uniform(-2, 0.5))), hyper))
    return cases


register(Exercise(
    id="optim.sgd_step",
    reference=_torch_sgd_step,
    make_cases=_sgd_cases,
    compare=steps(tensor_tuple(("new_param", "new_momentum_buffer"))),
    hint="As torch.optim.SGD: d = grad + weight_decay * param; with momentum, buf = d (first step, when "
         "momentum_buffer is None) else momentum * buf + d (no (1 - momentum) factor); then d = buf, or "
         "d + momentum * buf with Nesterov; new_param = param - lr * d. Without momentum return None as "
         "the buffer. Never change param, grad or the buffer in place.",
    section="sgd-and-momentum",
    run=run_sgd,
))

register(Exercise(
    id="optim.adamw_step",
    reference=_torch_adamw_step,
    make_cases=_adamw_cases,
    compare=steps(tensor_tuple(("new_param", "new_exp_avg", "new_exp_avg_sq"))),
    hint="As torch.optim.AdamW, with step counted from 1: param = param * (1 - lr * weight_decay) (decoupled: "
         "the decay never enters the moments); m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g**2; "
         "m_hat = m / (1 - b1**step); v_hat = v / (1 - b2**step); param -= lr * m_hat / (sqrt(v_hat) + eps) "
         "(eps outside the square root).",
    section="adam-and-adamw",
    run=run_adamw,
))
