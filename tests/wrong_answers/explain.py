"""Plausible WRONG implementations of the explainability exercises (each must be rejected by ``check``),
and several different CORRECT ones (each must be accepted)."""

import itertools
import math

import numpy as np
import torch
from sklearn.linear_model import LinearRegression, Ridge

# ---- explain.exact_shapley ------------------------------------------------------------------------


def _v(f, x, baseline, subset):
    row = np.array(baseline, dtype=float)
    idx = list(subset)
    row[idx] = np.asarray(x, dtype=float)[idx]
    return float(f(row[None, :])[0])


def shapley_leave_one_out(f, x, baseline):
    # occlusion: f(x) - f(x with feature i reset): ignores how interactions are shared
    d = len(x)
    full = _v(f, x, baseline, range(d))
    return np.array([full - _v(f, x, baseline, [j for j in range(d) if j != i]) for i in range(d)])


def shapley_add_one(f, x, baseline):
    d = len(x)
    empty = _v(f, x, baseline, [])
    return np.array([_v(f, x, baseline, [i]) - empty for i in range(d)])


def shapley_mean_of_both(f, x, baseline):
    # exact for d <= 2, wrong as soon as three features interact
    return (shapley_leave_one_out(f, x, baseline) + shapley_add_one(f, x, baseline)) / 2


def shapley_banzhaf(f, x, baseline):
    # every coalition weighted equally: the Banzhaf value, which is not efficient
    d = len(x)
    phi = np.zeros(d)
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for size in range(d):
            for s in itertools.combinations(others, size):
                phi[i] += (_v(f, x, baseline, (*s, i)) - _v(f, x, baseline, s)) / 2 ** (d - 1)
    return phi


def shapley_wrong_weights(f, x, baseline):
    # |S|! (d - |S|)! / d! instead of |S|! (d - |S| - 1)! / d!
    d = len(x)
    phi = np.zeros(d)
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for size in range(d):
            w = math.factorial(size) * math.factorial(d - size) / math.factorial(d)
            for s in itertools.combinations(others, size):
                phi[i] += w * (_v(f, x, baseline, (*s, i)) - _v(f, x, baseline, s))
    return phi


def shapley_sampled(f, x, baseline):
    # 20 random orders: an estimate, not the exact values
    d = len(x)
    rng = np.random.default_rng(0)
    phi = np.zeros(d)
    for _ in range(20):
        prefix = []
        previous = _v(f, x, baseline, prefix)
        for i in rng.permutation(d):
            prefix.append(int(i))
            current = _v(f, x, baseline, prefix)
            phi[i] += current - previous
            previous = current
    return phi / 20


def shapley_gradient_times_delta(f, x, baseline):
    # a first-order Taylor guess: (x - b) * df/dx at x, by finite differences
    x = np.asarray(x, dtype=float)
    eps = 1e-5
    grad = np.array([(f((x + eps * e)[None])[0] - f((x - eps * e)[None])[0]) / (2 * eps) for e in np.eye(len(x))])
    return (x - np.asarray(baseline)) * grad


SHAPLEY_WRONG = [shapley_leave_one_out, shapley_add_one, shapley_mean_of_both, shapley_banzhaf,
                 shapley_wrong_weights, shapley_sampled, shapley_gradient_times_delta]


def shapley_subsets(f, x, baseline):
    d = len(x)
    phi = np.zeros(d)
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for size in range(d):
            w = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
            for s in itertools.combinations(others, size):
                phi[i] += w * (_v(f, x, baseline, (*s, i)) - _v(f, x, baseline, s))
    return phi


def shapley_all_orders(f, x, baseline):
    d = len(x)
    phi = np.zeros(d)
    orders = list(itertools.permutations(range(d)))
    for order in orders:
        prefix = []
        previous = _v(f, x, baseline, prefix)
        for i in order:
            prefix.append(i)
            current = _v(f, x, baseline, prefix)
            phi[i] += current - previous
            previous = current
    return phi / len(orders)


def shapley_vectorised(f, x, baseline):
    from bigtrain_lab.explain import exact_shapley

    return exact_shapley(f, x, baseline)


SHAPLEY_RIGHT = [shapley_subsets, shapley_all_orders, shapley_vectorised]

# ---- explain.integrated_gradients -----------------------------------------------------------------


def _grad(model, points):
    points = points.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(points).sum(), points)
    return g


def _ig_with_alphas(model, x, baseline, alphas):
    total = torch.zeros_like(x)
    for a in alphas:
        total += _grad(model, baseline + a * (x - baseline))
    return (x - baseline) * total / len(alphas)


def ig_left_riemann(model, x, baseline, *, steps=50):
    return _ig_with_alphas(model, x, baseline, [k / steps for k in range(steps)])


def ig_midpoint(model, x, baseline, *, steps=50):
    return _ig_with_alphas(model, x, baseline, [(k + 0.5) / steps for k in range(steps)])


def ig_linspace(model, x, baseline, *, steps=50):
    # steps points from 0 to 1 inclusive: a different quadrature
    return _ig_with_alphas(model, x, baseline, torch.linspace(0, 1, steps).tolist())


def ig_no_delta(model, x, baseline, *, steps=50):
    total = sum(_grad(model, baseline + (k / steps) * (x - baseline)) for k in range(1, steps + 1))
    return total / steps


def ig_ignores_baseline(model, x, baseline, *, steps=50):
    return _ig_with_alphas(model, x, torch.zeros_like(x), [k / steps for k in range(1, steps + 1)])


def ig_gradient_at_x(model, x, baseline, *, steps=50):
    return (x - baseline) * _grad(model, x)


def ig_divides_by_steps_plus_one(model, x, baseline, *, steps=50):
    return _ig_with_alphas(model, x, baseline, [k / steps for k in range(1, steps + 1)]) * steps / (steps + 1)


def ig_returns_float64(model, x, baseline, *, steps=50):
    return ig_loop(model, x.double(), baseline.double(), steps=steps)


IG_WRONG = [ig_left_riemann, ig_midpoint, ig_linspace, ig_no_delta, ig_ignores_baseline, ig_gradient_at_x,
            ig_divides_by_steps_plus_one, ig_returns_float64]


def ig_loop(model, x, baseline, *, steps=50):
    return _ig_with_alphas(model, x, baseline, [k / steps for k in range(1, steps + 1)])


def ig_batched(model, x, baseline, *, steps=50):
    alphas = torch.arange(1, steps + 1, dtype=x.dtype) / steps
    shape = (steps,) + (1,) * x.dim()
    points = (baseline + alphas.view(shape) * (x - baseline)).reshape(-1, *x.shape[1:])
    grads = _grad(model, points).reshape(steps, *x.shape)
    return (x - baseline) * grads.mean(dim=0)


def ig_package(model, x, baseline, *, steps=50):
    from bigtrain_lab.explain import integrated_gradients

    return integrated_gradients(model, x, baseline, steps=steps)


IG_RIGHT = [ig_loop, ig_batched, ig_package]

# ---- explain.lime_tabular -------------------------------------------------------------------------


def _lime(f, x, num_samples, kernel_width, seed, *, scale=1.0, kernel="lime", intercept=True, alpha=1.0,
          centre=True):
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=float)
    E = rng.normal(0, scale, (num_samples, len(x)))
    dist = np.linalg.norm(E, axis=1)
    if kernel == "lime":
        w = np.exp(-dist**2 / (2 * kernel_width**2))
    elif kernel == "no sqrt":
        w = np.exp(-dist**2 / kernel_width**2)
    else:
        w = np.ones(num_samples)
    Z = x + E
    X_fit = E if centre else Z
    model = Ridge(alpha=alpha, fit_intercept=intercept).fit(X_fit, f(Z), sample_weight=w)
    return model.coef_


def lime_no_kernel(f, x, *, num_samples, kernel_width, seed):
    return _lime(f, x, num_samples, kernel_width, seed, kernel="none")


def lime_kernel_without_sqrt(f, x, *, num_samples, kernel_width, seed):
    return _lime(f, x, num_samples, kernel_width, seed, kernel="no sqrt")


def lime_small_perturbations(f, x, *, num_samples, kernel_width, seed):
    return _lime(f, x, num_samples, kernel_width, seed, scale=0.1)


def lime_no_intercept(f, x, *, num_samples, kernel_width, seed):
    # the local model is forced through 0 at x: the coefficients absorb f(x)
    return _lime(f, x, num_samples, kernel_width, seed, intercept=False)


def lime_strong_ridge(f, x, *, num_samples, kernel_width, seed):
    return _lime(f, x, num_samples, kernel_width, seed, alpha=1000.0)


def lime_returns_intercept_too(f, x, *, num_samples, kernel_width, seed):
    rng = np.random.default_rng(seed)
    E = rng.normal(0, 1, (num_samples, len(x)))
    w = np.exp(-np.sum(E**2, axis=1) / (2 * kernel_width**2))
    fit = Ridge(alpha=1.0).fit(E, f(x + E), sample_weight=w)
    return np.r_[fit.intercept_, fit.coef_]


def lime_binary_features(f, x, *, num_samples, kernel_width, seed):
    # lime's discretised mode: features switched on/off (x or 0): another explanation altogether
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=float)
    M = rng.integers(0, 2, (num_samples, len(x)))
    dist = np.sqrt(np.sum(1 - M, axis=1))
    w = np.exp(-dist**2 / (2 * kernel_width**2))
    return Ridge(alpha=1.0).fit(M, f(M * x), sample_weight=w).coef_


LIME_WRONG = [lime_no_kernel, lime_kernel_without_sqrt, lime_small_perturbations, lime_no_intercept,
              lime_strong_ridge, lime_returns_intercept_too, lime_binary_features]


def lime_ridge(f, x, *, num_samples, kernel_width, seed):
    return _lime(f, x, num_samples, kernel_width, seed)


def lime_weighted_least_squares(f, x, *, num_samples, kernel_width, seed):
    # closed form, on the absolute points z (the intercept absorbs the shift), no penalty
    rng = np.random.default_rng(seed + 1)
    x = np.asarray(x, dtype=float)
    Z = x + rng.standard_normal((num_samples, len(x)))
    w = np.exp(-np.sum((Z - x) ** 2, axis=1) / (2 * kernel_width**2))
    A = np.c_[np.ones(num_samples), Z]
    sw = np.sqrt(w)[:, None]
    beta = np.linalg.lstsq(A * sw, f(Z) * sw[:, 0], rcond=None)[0]
    return beta[1:]


def lime_sklearn_linear(f, x, *, num_samples, kernel_width, seed):
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((num_samples, len(x)))
    w = np.sqrt(np.exp(-np.linalg.norm(E, axis=1) ** 2 / kernel_width**2))
    return LinearRegression().fit(E, f(np.asarray(x) + E), sample_weight=w).coef_


def lime_package(f, x, *, num_samples, kernel_width, seed):
    from bigtrain_lab.explain import local_linear_lime

    return local_linear_lime(f, x, num_samples=num_samples, kernel_width=kernel_width, seed=seed)


LIME_RIGHT = [lime_ridge, lime_weighted_least_squares, lime_sklearn_linear, lime_package]

WRONG = {
    "explain.exact_shapley": SHAPLEY_WRONG,
    "explain.integrated_gradients": IG_WRONG,
    "explain.lime_tabular": LIME_WRONG,
}
RIGHT = {
    "explain.exact_shapley": SHAPLEY_RIGHT,
    "explain.integrated_gradients": IG_RIGHT,
    "explain.lime_tabular": LIME_RIGHT,
}
