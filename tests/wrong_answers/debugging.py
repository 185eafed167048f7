"""Plausible WRONG numerical gradients (each must be rejected by ``check``) and several different
CORRECT ones (each must be accepted)."""

import numpy as np
import torch

from bigtrain_lab.debugging import numerical_gradient as lesson_numerical_gradient


def ng_forward(f, x, *, eps=1e-6):
    # forward differences: error O(eps * f''), visible on a fast oscillation
    flat = x.detach().reshape(-1)
    base = float(f(x))
    grad = torch.empty_like(flat)
    for i in range(flat.numel()):
        xp = flat.clone()
        xp[i] += eps
        grad[i] = (float(f(xp.reshape(x.shape))) - base) / eps
    return grad.reshape(x.shape)


def ng_divides_by_eps(f, x, *, eps=1e-6):
    # central differences divided by eps instead of 2 * eps: twice the gradient
    flat = x.detach().reshape(-1)
    grad = torch.empty_like(flat)
    for i in range(flat.numel()):
        xp, xm = flat.clone(), flat.clone()
        xp[i] += eps
        xm[i] -= eps
        grad[i] = (float(f(xp.reshape(x.shape))) - float(f(xm.reshape(x.shape)))) / eps
    return grad.reshape(x.shape)


def ng_times_two_eps(f, x, *, eps=1e-6):
    flat = x.detach().reshape(-1)
    grad = torch.empty_like(flat)
    for i in range(flat.numel()):
        xp, xm = flat.clone(), flat.clone()
        xp[i] += eps
        xm[i] -= eps
        grad[i] = (float(f(xp.reshape(x.shape))) - float(f(xm.reshape(x.shape)))) * (2 * eps)
    return grad.reshape(x.shape)


def ng_flat(f, x, *, eps=1e-6):
    # right numbers, wrong shape: returns the flattened gradient
    flat = x.detach().reshape(-1)
    grad = torch.empty_like(flat)
    for i in range(flat.numel()):
        xp, xm = flat.clone(), flat.clone()
        xp[i] += eps
        xm[i] -= eps
        grad[i] = (float(f(xp.reshape(x.shape))) - float(f(xm.reshape(x.shape)))) / (2 * eps)
    return grad


def ng_perturbs_x_in_place(f, x, *, eps=1e-6):
    # nudges x itself and does not put it back
    flat = x.view(-1)
    grad = torch.empty_like(flat)
    for i in range(flat.numel()):
        flat[i] += eps
        fp = float(f(x))
        flat[i] -= 2 * eps
        fm = float(f(x))
        grad[i] = (fp - fm) / (2 * eps)
    return grad.reshape(x.shape)


def ng_float32(f, x, *, eps=1e-6):
    # computes in float32: eps = 1e-6 is below float32's resolution for |x| ~ 1
    flat = x.detach().reshape(-1).float()
    grad = torch.empty_like(flat)
    for i in range(flat.numel()):
        xp, xm = flat.clone(), flat.clone()
        xp[i] += eps
        xm[i] -= eps
        grad[i] = (float(f(xp.reshape(x.shape).double())) - float(f(xm.reshape(x.shape).double()))) / (2 * eps)
    return grad.reshape(x.shape)


def ng_autograd(f, x, *, eps=1e-6):
    # autograd is not a numerical gradient: it cannot see through a black box
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x), x)
    return grad


def ng_all_at_once(f, x, *, eps=1e-6):
    # perturbs every element together: a directional derivative, not a gradient
    diff = (float(f(x + eps)) - float(f(x - eps))) / (2 * eps)
    return torch.full_like(x, diff / max(x.numel(), 1))


NUMERICAL_GRADIENT_WRONG = [ng_forward, ng_divides_by_eps, ng_times_two_eps, ng_flat, ng_perturbs_x_in_place,
                            ng_float32, ng_autograd, ng_all_at_once]


def ng_loop(f, x, *, eps=1e-6):
    grad = torch.zeros_like(x, dtype=torch.float64)
    for index in np.ndindex(*x.shape):
        xp, xm = x.clone(), x.clone()
        xp[index] += eps
        xm[index] -= eps
        grad[index] = (f(xp) - f(xm)) / (2 * eps)
    return grad


def ng_numpy_basis(f, x, *, eps=1e-6):
    # one row of the identity per element, evaluated through NumPy copies
    base = x.detach().numpy().reshape(-1)
    grad = np.empty_like(base)
    for i, e in enumerate(np.eye(base.size)):
        up = torch.from_numpy((base + eps * e).reshape(x.shape))
        down = torch.from_numpy((base - eps * e).reshape(x.shape))
        grad[i] = (f(up).item() - f(down).item()) / (2 * eps)
    return torch.from_numpy(grad.reshape(x.shape))


NUMERICAL_GRADIENT_RIGHT = [ng_loop, ng_numpy_basis, lesson_numerical_gradient]  # the last: the lesson's own

WRONG = {"debugging.numerical_gradient": NUMERICAL_GRADIENT_WRONG}
RIGHT = {"debugging.numerical_gradient": NUMERICAL_GRADIENT_RIGHT}
