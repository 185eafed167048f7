"""Plausible WRONG implementations of the ``privacy.*`` exercises (each must be rejected by ``check``),
and several different CORRECT ones (each must be accepted)."""

import math

import numpy as np
import torch
from torch.func import functional_call, grad, vmap


def _trainable(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def psg_right_loop(model, loss_fn, x, y):
    params = [p for _, p in _trainable(model)]
    rows = []
    for i in range(len(x)):
        grads = torch.autograd.grad(loss_fn(model(x[i:i + 1]), y[i:i + 1]), params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def psg_right_vmap(model, loss_fn, x, y):
    params = {n: p.detach() for n, p in _trainable(model)}

    def loss_one(params, xi, yi):
        return loss_fn(functional_call(model, params, (xi[None],)), yi[None])

    g = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g[n].reshape(len(x), -1) for n in params], dim=1)


def psg_batch_gradient_repeated(model, loss_fn, x, y):
    # the mean gradient of the batch, copied to every row: no per-example information
    params = [p for _, p in _trainable(model)]
    grads = torch.autograd.grad(loss_fn(model(x), y), params)
    return torch.cat([g.reshape(-1) for g in grads]).expand(len(x), -1).clone()


def psg_divided_by_batch(model, loss_fn, x, y):
    # per-sample gradients of the batch-mean loss (what opacus's grad_sample holds under a mean loss): 1/B too small
    return psg_right_loop(model, loss_fn, x, y) / len(x)


def psg_name_order(model, loss_fn, x, y):
    # parameters concatenated in sorted name order, not model.parameters() order
    named = sorted(_trainable(model))
    rows = []
    for i in range(len(x)):
        grads = torch.autograd.grad(loss_fn(model(x[i:i + 1]), y[i:i + 1]), [p for _, p in named])
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def psg_includes_frozen(model, loss_fn, x, y):
    # frozen parameters get a column of zeros
    rows = []
    for i in range(len(x)):
        loss = loss_fn(model(x[i:i + 1]), y[i:i + 1])
        params = [p for p in model.parameters() if p.requires_grad]
        grads = iter(torch.autograd.grad(loss, params))
        rows.append(torch.cat([next(grads).reshape(-1) if p.requires_grad else torch.zeros_like(p).reshape(-1)
                               for p in model.parameters()]))
    return torch.stack(rows)


def _check(g, max_norm, noise_multiplier):
    if g.ndim != 2 or len(g) == 0 or not max_norm > 0 or not noise_multiplier >= 0:
        raise ValueError("bad input")


def cn_right(per_sample_grads, *, max_norm, noise_multiplier, generator):
    g = per_sample_grads
    _check(g, max_norm, noise_multiplier)
    clipped = g * (max_norm / (g.norm(dim=1, keepdim=True) + 1e-6)).clamp(max=1.0)
    total = clipped.sum(0)
    if noise_multiplier > 0:
        total = total + torch.normal(0.0, noise_multiplier * max_norm, size=total.shape, generator=generator)
    return total / len(g)


def cn_right_randn(per_sample_grads, *, max_norm, noise_multiplier, generator):
    # another correct draw: randn * std, a loop for the clip factors
    g = per_sample_grads
    _check(g, max_norm, noise_multiplier)
    total = torch.zeros(g.shape[1], dtype=g.dtype)
    for row in g:
        total += row * min(1.0, max_norm / (float(row.norm()) + 1e-6))
    noise = torch.randn(g.shape[1], generator=generator, dtype=g.dtype) * (noise_multiplier * max_norm)
    return (total + noise) / len(g)


def cn_std_without_max_norm(per_sample_grads, *, max_norm, noise_multiplier, generator):
    # noise of std noise_multiplier, forgetting that the sensitivity is max_norm
    g = per_sample_grads
    _check(g, max_norm, noise_multiplier)
    clipped = g * (max_norm / (g.norm(dim=1, keepdim=True) + 1e-6)).clamp(max=1.0)
    total = clipped.sum(0)
    if noise_multiplier > 0:
        total = total + torch.normal(0.0, noise_multiplier, size=total.shape, generator=generator)
    return total / len(g)


def cn_noise_after_mean(per_sample_grads, *, max_norm, noise_multiplier, generator):
    # noise added to the MEAN: B times too little noise
    g = per_sample_grads
    _check(g, max_norm, noise_multiplier)
    mean = (g * (max_norm / (g.norm(dim=1, keepdim=True) + 1e-6)).clamp(max=1.0)).mean(0)
    if noise_multiplier > 0:
        mean = mean + torch.normal(0.0, noise_multiplier * max_norm, size=mean.shape, generator=generator)
    return mean


def cn_noise_per_row(per_sample_grads, *, max_norm, noise_multiplier, generator):
    # noise on every example's gradient: sqrt(B) times too much on the sum
    g = per_sample_grads
    _check(g, max_norm, noise_multiplier)
    clipped = g * (max_norm / (g.norm(dim=1, keepdim=True) + 1e-6)).clamp(max=1.0)
    if noise_multiplier > 0:
        clipped = clipped + torch.normal(0.0, noise_multiplier * max_norm, size=clipped.shape, generator=generator)
    return clipped.sum(0) / len(g)


def cn_clip_the_mean(per_sample_grads, *, max_norm, noise_multiplier, generator):
    # clips the batch gradient, not each example's: one example's influence stays unbounded
    g = per_sample_grads
    _check(g, max_norm, noise_multiplier)
    mean = g.mean(0)
    mean = mean * min(1.0, max_norm / (float(mean.norm()) + 1e-6))
    if noise_multiplier > 0:
        mean = mean + torch.normal(0.0, noise_multiplier * max_norm, size=mean.shape, generator=generator) / len(g)
    return mean


def cn_scales_up(per_sample_grads, *, max_norm, noise_multiplier, generator):
    # normalises every row to max_norm: short gradients are blown up
    g = per_sample_grads
    _check(g, max_norm, noise_multiplier)
    total = (g * max_norm / (g.norm(dim=1, keepdim=True) + 1e-6)).sum(0)
    if noise_multiplier > 0:
        total = total + torch.normal(0.0, noise_multiplier * max_norm, size=total.shape, generator=generator)
    return total / len(g)


def _lap_check(value, sensitivity, epsilon):
    if not (epsilon > 0 and sensitivity > 0 and math.isfinite(epsilon) and math.isfinite(sensitivity)):
        raise ValueError("epsilon and sensitivity must be > 0")
    if not np.isfinite(np.asarray(value, dtype=float)).all():
        raise ValueError("value must be finite")


def _release(value, noise):
    return float(value + noise) if np.ndim(value) == 0 else np.asarray(value, dtype=float) + noise


def lap_right(value, *, sensitivity, epsilon, rng):
    _lap_check(value, sensitivity, epsilon)
    return _release(value, rng.laplace(0.0, sensitivity / epsilon, size=np.shape(value)))


def lap_right_exponential_difference(value, *, sensitivity, epsilon, rng):
    # Laplace(b) = b * (Exp(1) - Exp(1)): another correct draw
    _lap_check(value, sensitivity, epsilon)
    b = sensitivity / epsilon
    shape = np.shape(value)
    return _release(value, b * (rng.exponential(1.0, shape) - rng.exponential(1.0, shape)))


def lap_inverted_scale(value, *, sensitivity, epsilon, rng):
    # scale epsilon / sensitivity: LESS noise for more privacy
    _lap_check(value, sensitivity, epsilon)
    return _release(value, rng.laplace(0.0, epsilon / sensitivity, size=np.shape(value)))


def lap_gaussian(value, *, sensitivity, epsilon, rng):
    # Gaussian noise of the same scale: not the Laplace mechanism (and no pure epsilon-DP)
    _lap_check(value, sensitivity, epsilon)
    return _release(value, rng.normal(0.0, sensitivity / epsilon, size=np.shape(value)))


def lap_global_state(value, *, sensitivity, epsilon, rng):
    # draws from np.random's global generator: not reproducible from the rng handed in
    _lap_check(value, sensitivity, epsilon)
    return _release(value, np.random.laplace(0.0, sensitivity / epsilon, size=np.shape(value)))


def lap_no_validation(value, *, sensitivity, epsilon, rng):
    return _release(value, rng.laplace(0.0, abs(sensitivity / epsilon) if epsilon else 1.0, size=np.shape(value)))


def _rr_check(bits, epsilon):
    bits = np.asarray(bits).astype(np.int64) if np.asarray(bits).dtype == bool else np.asarray(bits)
    if bits.size == 0 or not np.isin(bits, (0, 1)).all() or not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError("bits must be 0/1 and epsilon > 0")
    return bits.astype(np.int64)


def rr_right(bits, *, epsilon, rng):
    bits = _rr_check(bits, epsilon)
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    reports = np.where(rng.random(len(bits)) < p, bits, 1 - bits)
    return reports, float((reports.mean() - (1 - p)) / (2 * p - 1))


def rr_right_two_coins(bits, *, epsilon, rng):
    # another correct scheme: flip with probability 1 - p via a Bernoulli draw, estimate written out
    bits = _rr_check(bits, epsilon)
    q = 1 / (1 + math.exp(epsilon))
    flip = rng.binomial(1, q, len(bits))
    reports = bits ^ flip
    return reports, float((reports.mean() - q) / (1 - 2 * q))


def rr_raw_mean(bits, *, epsilon, rng):
    # reports the raw share of yes answers: biased towards 1/2
    reports, _ = rr_right(bits, epsilon=epsilon, rng=rng)
    return reports, float(reports.mean())


def rr_warner_fixed(bits, *, epsilon, rng):
    # Warner's p = 3/4 whatever epsilon is (only right for epsilon = ln 3)
    bits = _rr_check(bits, epsilon)
    p = 0.75
    reports = np.where(rng.random(len(bits)) < p, bits, 1 - bits)
    return reports, float((reports.mean() - (1 - p)) / (2 * p - 1))


def rr_flip_with_p(bits, *, epsilon, rng):
    # keeps with 1 - p and flips with p: mostly lies
    bits = _rr_check(bits, epsilon)
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    reports = np.where(rng.random(len(bits)) < 1 - p, bits, 1 - bits)
    return reports, float((reports.mean() - (1 - p)) / (2 * p - 1))


def rr_wrong_offset(bits, *, epsilon, rng):
    # subtracts p instead of 1 - p in the estimator
    bits = _rr_check(bits, epsilon)
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    reports = np.where(rng.random(len(bits)) < p, bits, 1 - bits)
    return reports, float((reports.mean() - p) / (2 * p - 1))


WRONG = {
    "privacy.per_sample_gradients": [psg_batch_gradient_repeated, psg_divided_by_batch, psg_name_order,
                                     psg_includes_frozen],
    "privacy.clip_and_noise": [cn_std_without_max_norm, cn_noise_after_mean, cn_noise_per_row, cn_clip_the_mean,
                               cn_scales_up],
    "privacy.laplace_mechanism": [lap_inverted_scale, lap_gaussian, lap_global_state, lap_no_validation],
    "privacy.randomized_response": [rr_raw_mean, rr_warner_fixed, rr_flip_with_p, rr_wrong_offset],
}
RIGHT = {
    "privacy.per_sample_gradients": [psg_right_loop, psg_right_vmap],
    "privacy.clip_and_noise": [cn_right, cn_right_randn],
    "privacy.laplace_mechanism": [lap_right, lap_right_exponential_difference],
    "privacy.randomized_response": [rr_right, rr_right_two_coins],
}
