"""Gradient-based attributions for torch models: saliency, gradient x input, Integrated Gradients, Grad-CAM.

Every function takes a batch ``x`` of shape (N, ...) and the index of the output explained (``target``:
an int for all rows or a (N,) tensor; ``None`` when the model returns one scalar per row) and returns a
tensor of ``x``'s shape (Grad-CAM: one map per row). The model is put in eval mode and its parameters are
not changed. ``integrated_gradients`` is written from the definition (Sundararajan et al., 2017):

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x')) / dx_i da

approximated by a right Riemann sum over ``steps`` points a = k / steps, k = 1..steps; the unit tests
check it against captum's ``IntegratedGradients(method="riemann_right")``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = [
    "captum_integrated_gradients",
    "completeness_gap",
    "grad_cam",
    "gradient_x_input",
    "integrated_gradients",
    "riemann_alphas",
    "saliency",
    "target_output",
]

Target = int | torch.Tensor | None


def target_output(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """The (N,) outputs explained: ``model(x)[:, target]`` (or ``model(x)`` when target is None)."""
    out = model(x)
    if target is None:
        if out.dim() == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.dim() != 1:
            raise ValueError(f"the model returns shape {tuple(out.shape)}: pass target=<output index>")
        return out
    if out.dim() != 2:
        raise ValueError(f"with a target the model must return (N, n_outputs), got {tuple(out.shape)}")
    if isinstance(target, torch.Tensor) and target.dim() == 1:
        if len(target) != len(out):
            raise ValueError(f"target has {len(target)} entries for a batch of {len(out)}")
        return out.gather(1, target.long().view(-1, 1).to(out.device))[:, 0]
    index = int(target)
    if not -out.shape[1] <= index < out.shape[1]:
        raise ValueError(f"target {index} is out of range for {out.shape[1]} outputs")
    return out[:, index]


def _input_gradient(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(target_output(model, x, target).sum(), x)
    return grad


def saliency(model: nn.Module, x: torch.Tensor, target: Target = None, *, absolute: bool = True
             ) -> torch.Tensor:
    """Vanilla gradient map (Simonyan et al., 2013): |dF_target / dx| (signed with ``absolute=False``)."""
    model.eval()
    grad = _input_gradient(model, x, target)
    return grad.abs() if absolute else grad


def gradient_x_input(model: nn.Module, x: torch.Tensor, target: Target = None) -> torch.Tensor:
    """Gradient times input: x * dF/dx (IG with a zero baseline and a single step at a = 1)."""
    model.eval()
    return x.detach() * _input_gradient(model, x, target)


def riemann_alphas(steps: int) -> torch.Tensor:
    """The right Riemann sum's points on the path: a = 1/steps, 2/steps, ..., 1 (float64)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return torch.arange(1, steps + 1, dtype=torch.float64) / steps


def integrated_gradients(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | None = None, *,
                         target: Target = None, steps: int = 50, batch_size: int = 512) -> torch.Tensor:
    """Integrated Gradients by the right Riemann sum: (x - x') * mean_k dF(x' + (k/steps)(x - x'))/dx.

    ``baseline`` defaults to zeros and is broadcast to ``x``. The ``steps`` path points of every row are
    evaluated in batches of at most ``batch_size`` inputs. Completeness: the attributions of a row sum to
    F(x) - F(x') up to the Riemann error, which shrinks like 1/steps.
    """
    model.eval()
    x = x.detach()
    baseline = torch.zeros_like(x) if baseline is None else baseline.detach().to(x.dtype).expand_as(x)
    alphas = riemann_alphas(steps).to(x.dtype)
    n, delta = len(x), x - baseline
    per_chunk = max(1, batch_size // max(n, 1))  # path points per row in one forward pass
    total = torch.zeros_like(x)
    for start in range(0, steps, per_chunk):
        chunk = alphas[start:start + per_chunk]
        # (k, n, ...) -> (k * n, ...): point (k, i) = baseline_i + alpha_k * delta_i
        points = baseline.unsqueeze(0) + chunk.view(-1, *([1] * x.dim())) * delta.unsqueeze(0)
        chunk_target = target.repeat(len(chunk)) if isinstance(target, torch.Tensor) and target.dim() == 1 \
            else target
        grads = _input_gradient(model, points.reshape(-1, *x.shape[1:]), chunk_target)
        total += grads.view(len(chunk), *x.shape).sum(dim=0)
    return delta * total / steps


def captum_integrated_gradients(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | None = None, *,
                                target: Target = None, steps: int = 50) -> torch.Tensor:
    """captum's ``IntegratedGradients(model).attribute(..., method="riemann_right")`` (the reference)."""
    from captum.attr import IntegratedGradients

    model.eval()
    baseline = torch.zeros_like(x) if baseline is None else baseline.to(x.dtype).expand_as(x)
    forward = model if target is not None else (lambda inp: target_output(model, inp, None))
    return IntegratedGradients(forward).attribute(x.detach(), baselines=baseline.detach(), target=target,
                                                  n_steps=steps, method="riemann_right").detach()


def completeness_gap(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | None,
                     attributions: torch.Tensor, target: Target = None) -> torch.Tensor:
    """Per row: sum(attributions) - (F(x) - F(baseline)); 0 for a complete attribution method."""
    model.eval()
    baseline = torch.zeros_like(x) if baseline is None else baseline.to(x.dtype).expand_as(x)
    with torch.no_grad():
        difference = target_output(model, x, target) - target_output(model, baseline, target)
    return attributions.reshape(len(x), -1).sum(dim=1) - difference


def _default_cam_layer(model: nn.Module) -> nn.Module:
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        raise ValueError("pass layer=...: the model has no `features` Sequential (bigtrain_lab.models.CNN has)")
    convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model's `features` hold no Conv2d layer")
    last = convs[-1]
    # the activation right after the last convolution, when there is one
    if last + 1 < len(features) and isinstance(features[last + 1], nn.ReLU | nn.GELU | nn.SiLU):
        return features[last + 1]
    return features[last]


def grad_cam(model: nn.Module, x: torch.Tensor, target: Target, *, layer: nn.Module | None = None,
             relu: bool = True) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., 2017): ReLU(sum_k w_k A_k), w_k = spatial mean of dF_target / dA_k.

    ``layer`` (default: the activation after the last conv of ``model.features``, 32x8x8 for
    ``bigtrain_lab.models.CNN``) gives the feature maps A (N, K, h, w). The maps are bilinearly resized
    to the input's spatial size when they differ. Returns (N, H, W).
    """
    model.eval()
    layer = _default_cam_layer(model) if layer is None else layer
    store: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        store["A"] = output

    handle = layer.register_forward_hook(keep)
    try:
        x = x.detach().clone().requires_grad_(True)
        out = target_output(model, x, target)
        (grads,) = torch.autograd.grad(out.sum(), store["A"])
    finally:
        handle.remove()
    activations = store["A"].detach()
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = (weights * activations).sum(dim=1)
    if relu:
        cam = torch.relu(cam)
    size = x.shape[-2:]
    if cam.shape[-2:] != size:
        cam = nn.functional.interpolate(cam.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0]
    return cam.detach()
