"""Photometric transforms: brightness, contrast, saturation, hue, noise, blur, solarize, posterize,
autocontrast, erasing.

Float images are expected in [0, 1] (uint8 images are scaled to it and back); results are clamped to
[0, 1]. Factors follow torchvision's definitions: ``factor = 1`` leaves the image unchanged, brightness
multiplies, contrast blends with the image's mean grey level, saturation blends with the grey image.
Grey is ITU-R 601 luma, ``0.299 R + 0.587 G + 0.114 B``. Parameters are scalars or ``(N,)`` tensors
(one value per image of a batch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bigtrain_lab.augment._core import ImageLike, per_sample, to_batch

__all__ = ["adjust_brightness", "adjust_contrast", "adjust_hue", "adjust_saturation", "autocontrast",
           "erase", "gaussian_blur", "gaussian_blur_batch", "gaussian_noise", "grayscale", "hsv_to_rgb",
           "posterize", "rgb_to_hsv", "solarize"]


def _col(value, x: torch.Tensor) -> torch.Tensor:
    """Per-image parameter shaped ``(N, 1, 1, 1)`` to broadcast over a batch."""
    return per_sample(value, x.shape[0], x).to(x.dtype).view(-1, 1, 1, 1)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma ``(N, 1, H, W)`` of a batch with 1, 3 or 4 channels (alpha ignored)."""
    if x.shape[1] == 1:
        return x
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (other + factor * (x - other)).clamp(0.0, 1.0)


def _colour(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    return (x[:, :3], x[:, 3:]) if x.shape[1] == 4 else (x, None)


def _apply(image: ImageLike, fn) -> ImageLike:
    x, restore = to_batch(image)
    return restore(fn(x))


def adjust_brightness(image: ImageLike, factor) -> ImageLike:
    """Multiply by ``factor`` (0 gives black)."""
    return _apply(image, lambda x: (x * _col(factor, x)).clamp(0.0, 1.0))


def adjust_contrast(image: ImageLike, factor) -> ImageLike:
    """Blend with the image's mean grey level (0 gives a flat grey image)."""
    def fn(x):
        mean = grayscale(x[:, :3]).mean(dim=(1, 2, 3), keepdim=True)
        return _blend(x, mean.expand_as(x), _col(factor, x))
    return _apply(image, fn)


def adjust_saturation(image: ImageLike, factor) -> ImageLike:
    """Blend with the grey image (0 gives greyscale); single-channel images are unchanged."""
    def fn(x):
        if x.shape[1] == 1:
            return x
        rgb, alpha = _colour(x)
        out = _blend(rgb, grayscale(rgb).expand_as(rgb), _col(factor, x))
        return out if alpha is None else torch.cat([out, alpha], 1)
    return _apply(image, fn)


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in [0, 1] to HSV in [0, 1] (hue as a fraction of a turn)."""
    r, g, b = rgb.unbind(1)
    maxc, _ = rgb.max(1)
    minc, _ = rgb.min(1)
    delta = maxc - minc
    v = maxc
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, v], 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = hsv.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = torch.zeros_like(hsv)
    for k, (rr, gg, bb) in enumerate(choices):
        mask = (i == k).unsqueeze(1)
        out = torch.where(mask, torch.stack([rr, gg, bb], 1), out)
    return out


def adjust_hue(image: ImageLike, shift) -> ImageLike:
    """Rotate the hue by ``shift`` turns (in [-0.5, 0.5]); single-channel images are unchanged."""
    def fn(x):
        if x.shape[1] == 1:
            return x
        d = per_sample(shift, x.shape[0], x)
        if bool((d.abs() > 0.5).any()):
            raise ValueError("hue shift must be in [-0.5, 0.5]")
        rgb, alpha = _colour(x)
        hsv = rgb_to_hsv(rgb)
        hsv = torch.cat([(hsv[:, :1] + d.to(x.dtype).view(-1, 1, 1, 1)) % 1.0, hsv[:, 1:]], 1)
        out = hsv_to_rgb(hsv).clamp(0.0, 1.0)
        return out if alpha is None else torch.cat([out, alpha], 1)
    return _apply(image, fn)


def gaussian_noise(image: ImageLike, std, *, generator: torch.Generator | None = None) -> ImageLike:
    """Add N(0, std^2) noise (drawn on the CPU from ``generator``), then clamp to [0, 1]."""
    def fn(x):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return (x + _col(std, x) * noise).clamp(0.0, 1.0)
    return _apply(image, fn)


def _gaussian_kernels(sigma: torch.Tensor, radius: int, truncate: float) -> torch.Tensor:
    """``(N, 2 radius + 1)`` normalised 1-D kernels, each cut at its own ``int(truncate * sigma + 0.5)``."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64, device=sigma.device)
    own = torch.floor(truncate * sigma + 0.5)[:, None]
    k = torch.exp(-0.5 * (offsets[None] / sigma[:, None]) ** 2) * (offsets.abs()[None] <= own)
    return k / k.sum(1, keepdim=True)


def gaussian_blur_batch(x: torch.Tensor, sigma, *, truncate: float = 3.0) -> torch.Tensor:
    """Separable Gaussian blur of a batch, one ``sigma`` per image, mirror padding.

    Equal to ``scipy.ndimage.gaussian_filter(img, sigma, mode="mirror", truncate=truncate)`` per channel.
    """
    n, c, h, w = x.shape
    s = per_sample(sigma, n, x)
    if bool((s <= 0).any()):
        raise ValueError("sigma must be positive")
    radius = int(math.floor(truncate * float(s.max()) + 0.5))
    if radius == 0:
        return x.clone()
    if radius >= min(h, w):
        raise ValueError(f"sigma {float(s.max()):g} is too large for a {h}x{w} image (radius {radius})")
    k = _gaussian_kernels(s, radius, truncate).to(x.dtype)
    k = k.repeat_interleave(c, 0)  # (N*C, K)
    y = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k[:, None, None, :], groups=n * c)
    y = F.conv2d(y, k[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def gaussian_blur(image: ImageLike, sigma, *, truncate: float = 3.0) -> ImageLike:
    """Gaussian blur with standard deviation ``sigma`` pixels (see :func:`gaussian_blur_batch`)."""
    return _apply(image, lambda x: gaussian_blur_batch(x, sigma, truncate=truncate))


def solarize(image: ImageLike, threshold) -> ImageLike:
    """Invert the pixels at or above ``threshold`` (in [0, 1])."""
    return _apply(image, lambda x: torch.where(x >= _col(threshold, x), 1.0 - x, x))


def posterize(image: ImageLike, bits) -> ImageLike:
    """Keep the ``bits`` most significant bits of each 8-bit value (1..8)."""
    def fn(x):
        step = 2.0 ** (8 - _col(bits, x).round())
        return (torch.floor((x * 255.0).round() / step) * step / 255.0).clamp(0.0, 1.0)
    return _apply(image, fn)


def autocontrast(image: ImageLike) -> ImageLike:
    """Stretch each channel of each image to span [0, 1] (flat channels are unchanged)."""
    def fn(x):
        lo = x.amin(dim=(2, 3), keepdim=True)
        hi = x.amax(dim=(2, 3), keepdim=True)
        span = hi - lo
        return torch.where(span > 0, (x - lo) / torch.where(span > 0, span, torch.ones_like(span)), x)
    return _apply(image, fn)


def erase(image: ImageLike, top: int, left: int, height: int, width: int, value: float = 0.0) -> ImageLike:
    """Set the box ``(top, left, height, width)`` to ``value`` (random erasing / cutout)."""
    def fn(x):
        out = x.clone()
        out[..., top:top + height, left:left + width] = value
        return out
    return _apply(image, fn)
