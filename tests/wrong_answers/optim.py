"""Plausible WRONG optimizer steps (each must be rejected by ``check``, which runs them over many steps
against torch.optim) and several different CORRECT ones (each must be accepted)."""

import math

import torch

# ---- optim.sgd_step -------------------------------------------------------------------------------


def sgd_dampened(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    # momentum as an exponential moving average: buf = m * buf + (1 - m) * g (torch's dampening=0 has no 1 - m)
    d = grad + weight_decay * param
    if momentum:
        buf = d.clone() if momentum_buffer is None else momentum * momentum_buffer + (1 - momentum) * d
        d = d + momentum * buf if nesterov else buf
    else:
        buf = None
    return param - lr * d, buf


def sgd_decoupled_decay(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    # weight decay applied to the weights directly, never entering the momentum buffer
    d = grad
    buf = None
    if momentum:
        buf = d.clone() if momentum_buffer is None else momentum * momentum_buffer + d
        d = d + momentum * buf if nesterov else buf
    return param - lr * d - lr * weight_decay * param, buf


def sgd_ignores_nesterov(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    d = grad + weight_decay * param
    buf = None
    if momentum:
        buf = d.clone() if momentum_buffer is None else momentum * momentum_buffer + d
        d = buf
    return param - lr * d, buf


def sgd_nesterov_old_buffer(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0,
                            nesterov=False):
    # "look-ahead" with the buffer from BEFORE this step
    d = grad + weight_decay * param
    buf = None
    if momentum:
        old = torch.zeros_like(d) if momentum_buffer is None else momentum_buffer
        buf = d.clone() if momentum_buffer is None else momentum * momentum_buffer + d
        d = d + momentum * old if nesterov else buf
    return param - lr * d, buf


def sgd_lr_in_buffer(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    # Sutskever's form v = m v + lr g, p -= v: the same weights for a constant lr, but the state kept is
    # lr times torch's buffer (and breaks when lr changes)
    d = grad + weight_decay * param
    if not momentum:
        return param - lr * d, None
    buf = lr * d if momentum_buffer is None else momentum * momentum_buffer + lr * d
    step = lr * d + momentum * buf if nesterov else buf
    return param - step, buf


def sgd_fresh_buffer_every_call(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0,
                                nesterov=False):
    # ignores the buffer handed in: momentum never accumulates
    d = grad + weight_decay * param
    buf = d.clone() if momentum else None
    if momentum:
        d = d + momentum * buf if nesterov else buf
    return param - lr * d, buf


def sgd_in_place(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    # torch.optim style: updates the parameter in place
    d = grad + weight_decay * param
    buf = None
    if momentum:
        buf = d.clone() if momentum_buffer is None else momentum_buffer.mul_(momentum).add_(d)
        d = d + momentum * buf if nesterov else buf
    param.sub_(lr * d)
    return param, buf


def sgd_weight_decay_sign(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    d = grad - weight_decay * param
    buf = None
    if momentum:
        buf = d.clone() if momentum_buffer is None else momentum * momentum_buffer + d
        d = d + momentum * buf if nesterov else buf
    return param - lr * d, buf


SGD_WRONG = [sgd_dampened, sgd_decoupled_decay, sgd_ignores_nesterov, sgd_nesterov_old_buffer, sgd_lr_in_buffer,
             sgd_fresh_buffer_every_call, sgd_in_place, sgd_weight_decay_sign]


def sgd_torch_style(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    d = grad.add(param, alpha=weight_decay) if weight_decay else grad.clone()
    buf = None
    if momentum != 0:
        buf = d.clone() if momentum_buffer is None else momentum_buffer.mul(momentum).add(d)
        d = d.add(buf, alpha=momentum) if nesterov else buf
    return param.add(d, alpha=-lr), buf


def sgd_rewritten(param, grad, momentum_buffer, *, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    # Nesterov as (1 + m) * new_buf - m * old_buf; with momentum 0 the "buffer" returned is the step
    d = grad + weight_decay * param
    old = torch.zeros_like(d) if momentum_buffer is None or not momentum else momentum_buffer
    new = momentum * old + d
    step = (1 + momentum) * new - momentum * old if nesterov else new
    return param - lr * step, new


SGD_RIGHT = [sgd_torch_style, sgd_rewritten]

# ---- optim.adamw_step -----------------------------------------------------------------------------


def _moments(grad, exp_avg, exp_avg_sq, betas):
    b1, b2 = betas
    return b1 * exp_avg + (1 - b1) * grad, b2 * exp_avg_sq + (1 - b2) * grad * grad


def adamw_l2(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    # Adam + L2: the decay is added to the gradient (and so rescaled by the adaptive denominator)
    g = grad + weight_decay * param
    m, v = _moments(g, exp_avg, exp_avg_sq, betas)
    m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
    return param - lr * m_hat / (v_hat.sqrt() + eps), m, v


def adamw_no_bias_correction(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8,
                             weight_decay=0.01):
    p = param * (1 - lr * weight_decay)
    m, v = _moments(grad, exp_avg, exp_avg_sq, betas)
    return p - lr * m / (v.sqrt() + eps), m, v


def adamw_eps_inside_sqrt(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8,
                          weight_decay=0.01):
    p = param * (1 - lr * weight_decay)
    m, v = _moments(grad, exp_avg, exp_avg_sq, betas)
    m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
    return p - lr * m_hat / (v_hat + eps).sqrt(), m, v


def adamw_decay_after_update(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8,
                             weight_decay=0.01):
    # decays the NEW parameter, after the Adam update
    m, v = _moments(grad, exp_avg, exp_avg_sq, betas)
    m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
    p = param - lr * m_hat / (v_hat.sqrt() + eps)
    return p - lr * weight_decay * p, m, v


def adamw_step_from_zero(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8,
                         weight_decay=0.01):
    # thinks the step count starts at 0, so bias-corrects with step + 1
    p = param * (1 - lr * weight_decay)
    m, v = _moments(grad, exp_avg, exp_avg_sq, betas)
    t = step + 1
    m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    return p - lr * m_hat / (v_hat.sqrt() + eps), m, v


def adamw_decay_not_scaled_by_lr(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8,
                                 weight_decay=0.01):
    # param *= 1 - weight_decay: torch multiplies the decay by lr
    p = param * (1 - weight_decay)
    m, v = _moments(grad, exp_avg, exp_avg_sq, betas)
    m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
    return p - lr * m_hat / (v_hat.sqrt() + eps), m, v


def adamw_betas_swapped(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8,
                        weight_decay=0.01):
    p = param * (1 - lr * weight_decay)
    b1, b2 = betas
    m = b1 * exp_avg + (1 - b1) * grad
    v = b2 * exp_avg_sq + (1 - b2) * grad * grad
    m_hat, v_hat = m / (1 - b2 ** step), v / (1 - b1 ** step)
    return p - lr * m_hat / (v_hat.sqrt() + eps), m, v


def adamw_returns_corrected_moments(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999),
                                    eps=1e-8, weight_decay=0.01):
    # hands back the bias-corrected moments as the state (they get corrected again next step)
    p = param * (1 - lr * weight_decay)
    m, v = _moments(grad, exp_avg, exp_avg_sq, betas)
    m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
    return p - lr * m_hat / (v_hat.sqrt() + eps), m_hat, v_hat


ADAMW_WRONG = [adamw_l2, adamw_no_bias_correction, adamw_eps_inside_sqrt, adamw_decay_after_update,
               adamw_step_from_zero, adamw_decay_not_scaled_by_lr, adamw_betas_swapped,
               adamw_returns_corrected_moments]


def adamw_textbook(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    b1, b2 = betas
    p = param * (1 - lr * weight_decay)
    m = b1 * exp_avg + (1 - b1) * grad
    v = b2 * exp_avg_sq + (1 - b2) * grad**2
    m_hat = m / (1 - b1**step)
    v_hat = v / (1 - b2**step)
    return p - lr * m_hat / (torch.sqrt(v_hat) + eps), m, v


def adamw_folded_step_size(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=0.01):
    # bias corrections folded into a step size, eps scaled to match: the same update, rearranged
    b1, b2 = betas
    m = exp_avg.lerp(grad, 1 - b1)
    v = exp_avg_sq.mul(b2).addcmul(grad, grad, value=1 - b2)
    bc2_sqrt = math.sqrt(1 - b2**step)
    step_size = lr * bc2_sqrt / (1 - b1**step)
    denom = v.sqrt().add(eps * bc2_sqrt)
    p = param.mul(1 - lr * weight_decay).addcdiv(m, denom, value=-step_size)
    return p, m, v


ADAMW_RIGHT = [adamw_textbook, adamw_folded_step_size]

WRONG = {
    "optim.sgd_step": SGD_WRONG,
    "optim.adamw_step": ADAMW_WRONG,
}
RIGHT = {
    "optim.sgd_step": SGD_RIGHT,
    "optim.adamw_step": ADAMW_RIGHT,
}
