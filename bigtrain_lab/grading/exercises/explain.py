"""Exercises of the explainability lesson: exact Shapley values, Integrated Gradients, a minimal LIME.

- ``explain.exact_shapley``: the reference is ``shap.explainers.Exact`` with an ``Independent`` masker on
  the single baseline row (interventional Shapley values with that background).
- ``explain.integrated_gradients``: the reference is captum's ``IntegratedGradients`` with
  ``method="riemann_right"`` and the same number of steps. captum multiplies the gradients by float32
  step sizes, so float64 results agree to ~1e-8 relative, not to rounding: near-zero entries of a sum over steps
  then miss a 1e-8 absolute bound (6.6e-8 seen on 2 of 60 seeds), so the float64 tolerance is 1e-6 relative
  plus 1e-6 absolute.
- ``explain.lime_tabular``: LIME samples, so no two correct implementations agree digit for digit. The
  checker uses functions whose LIME coefficients are known in closed form. Perturbations
  z = x + e, e ~ N(0, I) (unit scale), weights k(z) = exp(-||e||**2 / (2 w**2)) (``lime``'s default kernel
  sqrt(exp(-d**2 / w**2))), a weighted linear fit of f(z) on z (with intercept). Their product is a
  Gaussian N(0, s**2 I), 1 / s**2 = 1 + 1 / w**2, so in expectation:
    * f(z) = c + a . z (linear): the coefficients are a, whatever the kernel;
    * f(z) = c + a . z + g ||u||**2 (u . v), u = z - x (a cubic bump, odd around x): since
      E[||u||**2 u u^T] = (d + 2) s**4 I, they are a + g (d + 2) s**2 v. That term depends on the kernel
      and on the perturbation scale, so a missing kernel, a kernel without the square root or another
      scale gives a different answer (differences 5-50x the sampling noise at these sample sizes).
  The tolerance is sized from the sampling noise measured on the reference implementation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from bigtrain_lab.grading.case_models import CaseModel, restore_parameters, snapshot_parameters
from bigtrain_lab.grading.exercises.optim import tensor_close
from bigtrain_lab.grading.registry import Case, Comparator, Exercise, InputModified, register
from bigtrain_lab.grading.sandbox import describe

# ---- shared: black-box functions and an array comparator ----------------------------------------


class RowFunction:
    """``f(X (n, d)) -> (n,)`` handed to the candidate; ``formula`` is shown in feedback."""

    def __init__(self, formula: str, fn: Callable[[np.ndarray], np.ndarray], **params: Any) -> None:
        self.formula, self.fn, self.params = formula, fn, params

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"f takes a 2-D array of rows (n, d), got shape {X.shape}: pass x[None, :] "
                             "for a single row")
        return np.asarray(self.fn(X), dtype=np.float64)

    def __deepcopy__(self, memo: dict) -> RowFunction:
        return self  # immutable: the checker's copies of the inputs may share it

    def __repr__(self) -> str:
        return f"f(X) = {self.formula}"


def array_close(what: str, *, rtol: float = 1e-7, atol: float = 1e-9) -> Comparator:
    """A 1-D float array (list or tensor accepted) of the expected length, NaN-free, close to expected.

    ``expected`` may be a ``Tolerance`` carrying its own absolute tolerance."""

    def compare(got: Any, expected: Any) -> str | None:
        tol = atol
        if isinstance(expected, Tolerance):
            expected, tol = expected.value, expected.atol
        if isinstance(got, Tolerance):  # the reference checked against itself
            got = got.value
        if isinstance(got, torch.Tensor):
            got = got.detach().cpu().numpy()
        if not isinstance(got, np.ndarray | list | tuple):
            return f"expected {what} as a NumPy array of shape {expected.shape}, got {type(got).__name__}: " \
                   f"{describe(got, 80)}"
        try:
            values = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            return f"expected {what} as an array of numbers, got {describe(got, 80)}"
        if values.shape != expected.shape:
            return f"{what} has shape {values.shape}, expected {expected.shape}"
        if np.isnan(values).any():
            return f"{what} contains NaN"
        if not np.allclose(values, expected, rtol=rtol, atol=tol):
            err = float(np.max(np.abs(values - expected)))
            return f"{what} differs: max |got - expected| = {err:.3g} (allowed {tol:.3g} + {rtol:g} * |expected|)"
        return None

    return compare


class Tolerance:
    """An expected array with the absolute tolerance that goes with it (for sampled answers)."""

    def __init__(self, value: np.ndarray, atol: float) -> None:
        self.value, self.atol = value, atol

    def __repr__(self) -> str:
        return f"{describe(self.value)} (± {self.atol:.3g})"


# ---- explain.exact_shapley ----------------------------------------------------------------------


def _shap_exact(f, x, baseline):
    import shap

    x = np.asarray(x, dtype=np.float64)
    background = np.asarray(baseline, dtype=np.float64)[None, :]
    explanation = shap.explainers.Exact(f, shap.maskers.Independent(background, max_samples=1))(
        x[None, :], silent=True)
    return np.asarray(explanation.values[0], dtype=np.float64)


def _random_function(rng: np.random.Generator, d: int) -> RowFunction:
    w = np.round(rng.normal(0, 1, d), 3)
    Q = np.round(rng.normal(0, 0.5, (d, d)), 3)
    i, j, k = (rng.permutation(d).tolist() * 3)[:3]
    c = round(float(rng.normal()), 3)
    formula = f"tanh(X @ {w.tolist()}) + sum((X @ Q) * X) + {c} * X[:, {i}] * X[:, {j}] * X[:, {k}]"
    return RowFunction(formula, lambda X: np.tanh(X @ w) + np.sum((X @ Q) * X, axis=1) + c * X[:, i] * X[:, j] * X[:, k])


def _shapley_cases(rng: np.random.Generator) -> list[Case]:
    def row(d: int) -> np.ndarray:
        return np.round(rng.normal(0, 1.5, d), 3)

    w4 = np.round(rng.normal(0, 1, 4), 3)
    linear = RowFunction(f"X @ {w4.tolist()} + 2.0", lambda X: X @ w4 + 2.0)
    triple = RowFunction("X[:, 0] * X[:, 1] * X[:, 2]", lambda X: X[:, 0] * X[:, 1] * X[:, 2])
    triple_plus = RowFunction("X[:, 0] * X[:, 1] * X[:, 2] + X[:, 3] ** 2 - X[:, 0]",
                              lambda X: X[:, 0] * X[:, 1] * X[:, 2] + X[:, 3] ** 2 - X[:, 0])
    maximum = RowFunction("max(X, axis=1)", lambda X: X.max(axis=1))
    ignores = RowFunction("exp(X[:, 0]) * X[:, 2] (X[:, 1] is ignored)", lambda X: np.exp(X[:, 0]) * X[:, 2])
    square = RowFunction("X[:, 0] ** 2", lambda X: X[:, 0] ** 2)
    logistic = RowFunction("1 / (1 + exp(-(X[:, 0] * X[:, 1] - X[:, 2] + X[:, 3] * X[:, 4])))",
                           lambda X: 1 / (1 + np.exp(-(X[:, 0] * X[:, 1] - X[:, 2] + X[:, 3] * X[:, 4]))))
    x3 = row(3)
    cases = [
        Case("a linear function (phi_i = w_i (x_i - baseline_i))", (linear, row(4), row(4))),
        Case("a three-way interaction, zero baseline", (triple, np.array([1.0, 2.0, 3.0]), np.zeros(3))),
        Case("a three-way interaction plus other terms", (triple_plus, row(4), row(4))),
        Case("max of the features (not smooth)", (maximum, row(5), row(5))),
        Case("a feature the function ignores gets 0", (ignores, row(3), row(3))),
        Case("a single feature: phi = f(x) - f(baseline)", (square, row(1), row(1))),
        Case("x equal to the baseline: every value is 0", (triple, x3, x3.copy())),
        Case("a logistic model with interactions, 5 features", (logistic, row(5), row(5))),
    ]
    for n in range(6):
        d = int(rng.integers(2, 8))
        cases.append(Case(f"random #{n + 1} (d={d})", (_random_function(rng, d), row(d), row(d))))
    return cases


register(Exercise(
    id="explain.exact_shapley",
    reference=_shap_exact,
    make_cases=_shapley_cases,
    compare=array_close("the Shapley values", rtol=1e-7, atol=1e-9),
    hint="v(S) = f(row with the features in S taken from x, the others from baseline); "
         "phi_i = sum over subsets S of the OTHER features of |S|! (d - |S| - 1)! / d! * (v(S + {i}) - v(S)). "
         "Check: the values sum to f(x) - f(baseline). Leave-one-out (f(x) - f(x without i)) is not it: it "
         "misses the interactions' shares. f takes a 2-D array: build all 2**d rows and call it once.",
    section="shapley-values",
))


# ---- explain.integrated_gradients ---------------------------------------------------------------


class ScalarModel(CaseModel):
    """A float64 network mapping a batch (n, *shape) to one output per row, (n,)."""

    def __init__(self, description: str, net: nn.Module, input_shape: tuple[int, ...]) -> None:
        super().__init__(description, net)
        self.input_shape = input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(torch.float64)).reshape(len(x), -1).sum(dim=1).to(x.dtype)


class _Square(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x**2


def _models(rng: np.random.Generator) -> dict[str, ScalarModel]:
    torch.manual_seed(int(rng.integers(2**31)))
    return {
        "tanh": ScalarModel("MLP 5 -> 8 (tanh) -> 1", nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1)), (5,)),
        "relu": ScalarModel("MLP 6 -> 16 (ReLU) -> 8 (ReLU) -> 1",
                            nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1)),
                            (6,)),
        "quadratic": ScalarModel("sum((A x)**2)", nn.Sequential(nn.Linear(4, 3, bias=False), _Square()), (4,)),
        "softplus": ScalarModel("MLP 3 -> 6 (softplus) -> 1",
                                nn.Sequential(nn.Linear(3, 6), nn.Softplus(), nn.Linear(6, 1)), (3,)),
        "conv": ScalarModel("Conv2d(1, 2, 3) -> tanh -> sum over an image (1, 5, 5)",
                            nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh()), (1, 5, 5)),
    }


def _ig_reference(model, x, baseline, *, steps=50):
    from captum.attr import IntegratedGradients

    return IntegratedGradients(model).attribute(x.detach().clone(), baselines=baseline.detach().clone(),
                                                n_steps=steps, method="riemann_right").detach()


def _ig_run(fn, model, x, baseline, **kwargs):
    before = snapshot_parameters(model)
    out = fn(model, x, baseline, **kwargs)
    if restore_parameters(model, before):
        raise InputModified("the model's parameters changed")
    return out


def _ig_cases(rng: np.random.Generator) -> list[Case]:
    models = _models(rng)

    def batch(name: str, n: int, dtype=torch.float64) -> torch.Tensor:
        return torch.tensor(rng.normal(0, 1.5, (n, *models[name].input_shape)), dtype=dtype)

    x_same = batch("tanh", 2)
    cases = [
        Case("MLP (tanh), one row, zero baseline, steps=5",
             (models["tanh"], batch("tanh", 1), torch.zeros(1, 5, dtype=torch.float64)), {"steps": 5}),
        Case("MLP (tanh), a batch of 3, random baseline, steps=10",
             (models["tanh"], batch("tanh", 3), batch("tanh", 3)), {"steps": 10}),
        Case("MLP (ReLU), default steps (50)", (models["relu"], batch("relu", 2), batch("relu", 2))),
        Case("sum((A x)**2): a quadratic, steps=4", (models["quadratic"], batch("quadratic", 2),
                                                     batch("quadratic", 2)), {"steps": 4}),
        Case("softplus MLP, steps=2 (the fewest captum accepts)",
             (models["softplus"], batch("softplus", 2), batch("softplus", 2)), {"steps": 2}),
        Case("a conv net on (1, 5, 5) images, steps=8", (models["conv"], batch("conv", 2), batch("conv", 2)),
             {"steps": 8}),
        Case("x equal to the baseline: all zeros", (models["tanh"], x_same, x_same.clone()), {"steps": 6}),
        Case("float32 inputs stay float32", (models["softplus"], batch("softplus", 2, torch.float32),
                                              batch("softplus", 2, torch.float32)), {"steps": 7}),
    ]
    names = sorted(models)
    for n in range(5):
        name = names[int(rng.integers(len(names)))]
        steps = int(rng.choice([2, 3, 5, 16, 25, 64]))
        rows = int(rng.integers(1, 5))
        cases.append(Case(f"random #{n + 1} ({name}, {rows} rows, steps={steps})",
                          (models[name], batch(name, rows), batch(name, rows)), {"steps": steps}))
    return cases


register(Exercise(
    id="explain.integrated_gradients",
    reference=_ig_reference,
    make_cases=_ig_cases,
    compare=tensor_close("the attributions", {torch.float64: (1e-6, 1e-6), torch.float32: (1e-4, 1e-5)}),
    hint="IG(x) = (x - baseline) * (1/steps) * sum_{k=1..steps} dF/dx at baseline + (k/steps) (x - baseline): "
         "the RIGHT Riemann sum (alpha = 1/steps ... 1, never 0). model maps a batch (n, ...) to (n,); "
         "differentiate model(points).sum() with torch.autograd.grad. Do not forget the (x - baseline) "
         "factor; keep x's dtype.",
    section="integrated-gradients",
    run=_ig_run,
))


# ---- explain.lime_tabular -----------------------------------------------------------------------


def _lime_functions(rng: np.random.Generator, d: int, *, bump: float) -> RowFunction:
    a = np.round(rng.normal(0, 1, d), 3)
    c = round(float(rng.normal(0, 2)), 3)
    x0 = np.round(rng.normal(0, 1, d), 3)
    v = np.round(rng.normal(0, 1, d), 3)
    if bump == 0:
        return RowFunction(f"{c} + X @ {a.tolist()}", lambda X: c + X @ a, a=a, bump=0.0, v=v, x0=x0)

    def fn(X: np.ndarray) -> np.ndarray:
        U = X - x0
        return c + X @ a + bump * np.sum(U**2, axis=1) * (U @ v)

    formula = f"{c} + X @ {a.tolist()} + {bump} * |X - x|**2 * ((X - x) @ {v.tolist()}), x = {x0.tolist()}"
    return RowFunction(formula, fn, a=a, bump=bump, v=v, x0=x0)


def _lime_reference(f, x, *, num_samples, kernel_width, seed):  # noqa: ARG001 - the candidate's signature
    """The population LIME coefficients (module docstring) and a tolerance sized for the sampling noise."""
    p = f.params
    d = len(p["a"])
    s2 = 1.0 / (1.0 + 1.0 / kernel_width**2)
    bump_term = p["bump"] * (d + 2) * s2 * p["v"]
    scale = float(np.max(np.abs(p["a"])))
    atol = 0.02 * scale + 0.12 * float(np.max(np.abs(bump_term)))
    return Tolerance(p["a"] + bump_term, atol)


def _lime_cases(rng: np.random.Generator) -> list[Case]:
    cases = []

    def add(label: str, d: int, bump: float, num_samples: int, kernel_width: float) -> None:
        f = _lime_functions(rng, d, bump=bump)
        seed = int(rng.integers(10_000))
        cases.append(Case(label, (f, f.params["x0"].copy()),
                          {"num_samples": num_samples, "kernel_width": kernel_width, "seed": seed}))

    add("a linear f, 3 features: its coefficients come back", 3, 0.0, 2000, 1.5)
    add("a linear f, 1 feature", 1, 0.0, 1000, 0.75)
    add("a linear f with a narrow kernel", 2, 0.0, 5000, 0.5)
    add("a linear f, 6 features, lime's default width 0.75 sqrt(6)", 6, 0.0, 3000, 0.75 * math.sqrt(6))
    add("a cubic bump around x (the kernel width matters)", 3, 0.5, 5000, 1.0)
    add("a cubic bump, narrow kernel", 2, 0.5, 5000, 0.5)
    add("a cubic bump, wide kernel", 2, 0.3, 5000, 2.0)
    for n in range(4):
        d = int(rng.integers(1, 5))
        bump = float(rng.choice([0.0, 0.2, 0.5]))
        width = float(rng.choice([0.75, 1.0, 1.5]))
        add(f"random #{n + 1} (d={d}, bump={bump}, kernel_width={width})", d, bump, 5000, width)
    return cases


register(Exercise(
    id="explain.lime_tabular",
    reference=_lime_reference,
    make_cases=_lime_cases,
    compare=array_close("the LIME coefficients", rtol=0.0),
    hint="rng = np.random.default_rng(seed); Z = x + rng.normal(0, 1, (num_samples, d)) (perturbation scale 1, "
         "as lime does in standardised units); weights = exp(-||Z - x||**2 / (2 kernel_width**2)) (lime's "
         "sqrt(exp(-d**2 / w**2))); fit a weighted linear model WITH an intercept (e.g. "
         "sklearn.linear_model.Ridge(alpha=1.0).fit(Z - x, f(Z), sample_weight=weights)) and return coef_ "
         "(d values, no intercept).",
    section="lime-from-scratch",
))
