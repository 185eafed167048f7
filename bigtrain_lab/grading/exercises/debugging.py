"""Exercises of the gradient-check lesson; the reference is ``torch.autograd.grad``.

``debugging.numerical_gradient`` is checked on several smooth scalar functions of float64 tensors of
several shapes. Central differences with eps = 1e-6 agree with autograd to about 1e-8 here (truncation
eps**2 * f''' / 6 plus rounding ~ 1e-16 * |f| / eps), so the tolerance is rtol 1e-5 / atol 1e-6; forward
differences are off by about eps * f'' / 2, which ``sin(50 x)`` (f'' up to 2500) makes ~1e-3. Some
functions are black boxes (computed in NumPy, invisible to autograd), as the functions one gradient-checks
usually are; the reference then differentiates their torch twin.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bigtrain_lab.grading.exercises.optim import tensor_close
from bigtrain_lab.grading.registry import Case, Exercise, register


class ScalarFunction:
    """A smooth ``f(x) -> 0-d tensor`` the checker hands to the candidate.

    ``torch_fn`` is differentiable by autograd (the reference uses it); with ``black_box=True`` the
    candidate's calls go through NumPy instead, so a candidate cannot use autograd on them.
    """

    def __init__(self, formula: str, torch_fn: Callable[[torch.Tensor], torch.Tensor],
                 numpy_fn: Callable[[np.ndarray], float] | None = None) -> None:
        self.formula, self.torch_fn, self.numpy_fn = formula, torch_fn, numpy_fn

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.numpy_fn is not None:
            return torch.tensor(float(self.numpy_fn(x.detach().numpy())), dtype=torch.float64)
        return self.torch_fn(x)

    def __deepcopy__(self, memo: dict) -> ScalarFunction:
        return self  # immutable: the checker's copies of the inputs may share it

    def __repr__(self) -> str:
        return f"f(x) = {self.formula}" + (" (a black box computed in NumPy)" if self.numpy_fn else "")


def _functions(rng: np.random.Generator) -> list[ScalarFunction]:
    a, b = float(rng.uniform(0.5, 2.0)), float(rng.uniform(-1.0, 1.0))
    return [
        ScalarFunction("sum(x**2)", lambda x: (x**2).sum()),
        ScalarFunction("sum(sin(50 * x))", lambda x: torch.sin(50 * x).sum()),
        ScalarFunction("logsumexp(x)", lambda x: torch.logsumexp(x.reshape(-1), 0)),
        ScalarFunction("sum(x**4) + sum(x)**2", lambda x: (x**4).sum() + x.sum() ** 2),
        ScalarFunction("sum(exp(3 * x))", lambda x: torch.exp(3 * x).sum()),
        ScalarFunction(f"sum(tanh({a:.3f} * x + {b:.3f}))", lambda x: torch.tanh(a * x + b).sum(),
                       lambda x: np.tanh(a * x + b).sum()),
        ScalarFunction("sum(cos(20 * x) * x)", lambda x: (torch.cos(20 * x) * x).sum(),
                       lambda x: (np.cos(20 * x) * x).sum()),
        ScalarFunction("log(1 + sum(x**2))", lambda x: torch.log1p((x**2).sum())),
    ]


def _autograd_gradient(f, x, *, eps=1e-6):  # noqa: ARG001 - eps is part of the candidate's signature
    fn = f.torch_fn if isinstance(f, ScalarFunction) else f
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x), x)
    return grad


def _x(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.tensor(rng.normal(0.0, scale, shape), dtype=torch.float64)


def _cases(rng: np.random.Generator) -> list[Case]:
    square, sin50, lse, quartic, exp3, tanh_box, cos_box, log1p = _functions(rng)
    cases = [
        Case("sum of squares of a vector", (square, _x(rng, 5))),
        Case("a fast oscillation (forward differences fail here)", (sin50, _x(rng, 6))),
        Case("a fast oscillation on a matrix", (sin50, _x(rng, 3, 4))),
        Case("a 0-d tensor (a scalar x)", (quartic, _x(rng))),
        Case("log-sum-exp of a 3-d tensor", (lse, _x(rng, 2, 3, 2))),
        Case("coupled terms (the gradient mixes elements)", (quartic, _x(rng, 2, 3))),
        Case("fast growth", (exp3, _x(rng, 4))),
        Case("a black box (NumPy inside: autograd cannot see it)", (tanh_box, _x(rng, 3, 3))),
        Case("an oscillating black box", (cos_box, _x(rng, 7))),
        Case("a single element", (log1p, _x(rng, 1))),
        Case("eps=1e-5", (exp3, _x(rng, 5, scale=0.5)), {"eps": 1e-5}),
        Case("eps=1e-4 on a cubic-free function", (square, _x(rng, 2, 2)), {"eps": 1e-4}),
    ]
    functions = _functions(rng)
    for i in range(8):
        f = functions[int(rng.integers(len(functions)))]
        shape = [(), (3,), (8,), (2, 5), (3, 2, 2)][int(rng.integers(5))]
        cases.append(Case(f"random #{i + 1} ({f.formula}, shape {shape})", (f, _x(rng, *shape))))
    return cases


register(Exercise(
    id="debugging.numerical_gradient",
    reference=_autograd_gradient,
    make_cases=_cases,
    compare=tensor_close("the gradient", {torch.float64: (1e-5, 1e-6)}),
    hint="For each element i (e.g. over x.reshape(-1) of a copy): g[i] = (f(x + eps e_i) - f(x - eps e_i)) "
         "/ (2 * eps), with e_i the i-th unit vector; return a float64 tensor of x's shape. Central, not "
         "forward, differences: their error is O(eps**2), not O(eps). Never change x itself.",
    section="gradient-checking",
))
