"""Plausible WRONG implementations of the ``security.*`` exercises (each must be rejected by ``check``),
and several different CORRECT ones (each must be accepted)."""

import torch
import torch.nn.functional as F


def _validate(eps, clamp):
    if eps < 0 or (clamp is not None and clamp[0] > clamp[1]):
        raise ValueError("bad eps or clamp")


def _input_grad(model, x, y, reduction="mean"):
    x_adv = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y, reduction=reduction), x_adv)
    return g


def fgsm_right(model, x, y, *, eps, clamp=(0.0, 1.0)):
    _validate(eps, clamp)
    out = x + eps * _input_grad(model, x, y).sign()
    return (out.clamp(*clamp) if clamp is not None else out).detach()


def fgsm_right_sum_loss(model, x, y, *, eps, clamp=(0.0, 1.0)):
    # a summed loss has the same sign; torch.clamp with min / max written out
    _validate(eps, clamp)
    out = x.detach() + eps * torch.sign(_input_grad(model, x, y, reduction="sum"))
    if clamp is not None:
        out = torch.clamp(out, min=clamp[0], max=clamp[1])
    return out


def fgsm_descends(model, x, y, *, eps, clamp=(0.0, 1.0)):
    # steps DOWN the loss (towards the label): makes the model more confident, not less
    _validate(eps, clamp)
    out = x - eps * _input_grad(model, x, y).sign()
    return (out.clamp(*clamp) if clamp is not None else out).detach()


def fgsm_raw_gradient(model, x, y, *, eps, clamp=(0.0, 1.0)):
    # the gradient itself, not its sign (that is a gradient step, not the L-inf FGSM)
    _validate(eps, clamp)
    out = x + eps * _input_grad(model, x, y)
    return (out.clamp(*clamp) if clamp is not None else out).detach()


def fgsm_no_clamp(model, x, y, *, eps, clamp=(0.0, 1.0)):
    # pixels leave the valid range
    _validate(eps, clamp)
    return (x + eps * _input_grad(model, x, y).sign()).detach()


def fgsm_own_prediction(model, x, y, *, eps, clamp=(0.0, 1.0)):
    # attacks the model's prediction instead of the true label
    _validate(eps, clamp)
    with torch.no_grad():
        pred = model(x).argmax(1)
    out = x + eps * _input_grad(model, x, pred).sign()
    return (out.clamp(*clamp) if clamp is not None else out).detach()


def fgsm_backward_leaves_grads(model, x, y, *, eps, clamp=(0.0, 1.0)):
    # loss.backward() fills the model's .grad as a side effect
    _validate(eps, clamp)
    x_adv = x.detach().clone().requires_grad_(True)
    F.cross_entropy(model(x_adv), y).backward()
    out = x + eps * x_adv.grad.sign()
    return (out.clamp(*clamp) if clamp is not None else out).detach()


WRONG = {
    "security.fgsm": [fgsm_descends, fgsm_raw_gradient, fgsm_no_clamp, fgsm_own_prediction,
                      fgsm_backward_leaves_grads],
}
RIGHT = {
    "security.fgsm": [fgsm_right, fgsm_right_sum_loss],
}
