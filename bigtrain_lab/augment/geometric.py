"""Geometric transforms: flips, affine (rotate, scale, translate, shear), crops, resize, pad.

Every function takes any image (numpy, PIL, torch; one image or a batch, see ``_core``) and returns the
same kind. Parameters are scalars, or ``(N,)`` tensors giving one value per image of a batch. Affine maps
sample the input bilinearly with ``torch.nn.functional.grid_sample``, so a batch is warped in one call
(on the GPU for CUDA tensors).

Conventions (those of ``scipy.ndimage.rotate`` and of PIL): the centre of rotation is the centre of the
image, ``((W - 1) / 2, (H - 1) / 2)`` in pixel coordinates; a positive angle turns the picture
counter-clockwise as displayed (rows going down); points that map from outside the input get ``fill``.
Interpolation near the border blends the outermost pixels with ``fill`` over one pixel (scipy's
``mode="grid-constant"``); scipy's ``mode="constant"`` cuts off instead, so the two differ only in that
one-pixel ring.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bigtrain_lab.augment._core import ImageLike, per_sample, to_batch

__all__ = ["affine", "affine_batch", "center_crop", "crop", "hflip", "pad", "resize", "resized_crop",
           "resized_crop_batch", "rotate", "vflip"]


def _affine_inverse(n: int, like: torch.Tensor, angle, translate, scale, shear) -> torch.Tensor:
    """``(N, 2, 3)`` maps output pixel (x, y), centred, to input pixel, centred (the inverse warp)."""
    a = torch.deg2rad(per_sample(angle, n, like))
    tx, ty = (per_sample(t, n, like) for t in translate)
    s = per_sample(scale, n, like)
    sh = torch.tan(torch.deg2rad(per_sample(shear, n, like)))
    if bool((s <= 0).any()):
        raise ValueError("scale must be positive")
    c, si = torch.cos(a), torch.sin(a)
    # forward: p_out = R @ Sh @ (s * p_in) + t with R = [[c, s], [-s, c]] (counter-clockwise on screen)
    # and Sh = [[1, tan(shear)], [0, 1]]; so p_in = (Sh^-1 @ R^T @ (p_out - t)) / s.
    rt = torch.stack([torch.stack([c, -si], -1), torch.stack([si, c], -1)], -2)  # R^T
    sh_inv = torch.zeros(n, 2, 2, dtype=torch.float64, device=like.device)
    sh_inv[:, 0, 0] = sh_inv[:, 1, 1] = 1.0
    sh_inv[:, 0, 1] = -sh
    lin = (sh_inv @ rt) / s[:, None, None]
    shift = -(lin @ torch.stack([tx, ty], -1)[..., None])
    return torch.cat([lin, shift], -1)


def _warp(x: torch.Tensor, inverse: torch.Tensor, out_hw: tuple[int, int], in_centre: torch.Tensor | None,
          fill: float, mode: str) -> torch.Tensor:
    """Sample ``x`` at ``inverse @ (centred output pixel)`` + input centre; outside points get ``fill``."""
    n, _, h, w = x.shape
    oh, ow = out_hw
    ys = torch.arange(oh, dtype=torch.float64, device=x.device) - (oh - 1) / 2
    xs = torch.arange(ow, dtype=torch.float64, device=x.device) - (ow - 1) / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx, gy, torch.ones_like(gx)], -1).reshape(1, -1, 3)  # (1, P, 3)
    src = pts @ inverse.transpose(1, 2)  # (N, P, 2), centred input coordinates
    if in_centre is not None:
        src = src + in_centre[:, None, :]
    norm = torch.tensor([max(w - 1, 1) / 2, max(h - 1, 1) / 2], dtype=torch.float64, device=x.device)
    grid = (src / norm).reshape(n, oh, ow, 2).to(x.dtype)
    shifted = x - fill if fill else x
    out = F.grid_sample(shifted, grid, mode=mode, padding_mode="zeros", align_corners=True)
    return out + fill if fill else out


def affine_batch(x: torch.Tensor, *, angle=0.0, translate=(0.0, 0.0), scale=1.0, shear=0.0, fill: float = 0.0,
                 interpolation: str = "bilinear") -> torch.Tensor:
    """:func:`affine` on a float batch ``(N, C, H, W)`` (no conversion)."""
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
    n, _, h, w = x.shape
    inverse = _affine_inverse(n, x, angle, translate, scale, shear)
    return _warp(x, inverse, (h, w), None, float(fill), interpolation)


def affine(image: ImageLike, *, angle=0.0, translate=(0.0, 0.0), scale=1.0, shear=0.0, fill: float = 0.0,
           interpolation: str = "bilinear") -> ImageLike:
    """Rotate by ``angle`` degrees, shear along x by ``shear`` degrees, zoom by ``scale`` (all about the
    centre) and shift by ``translate = (dx, dy)`` pixels (right, down). Same output size; ``fill`` where
    the output maps outside the input (in [0, 1] units for uint8 images)."""
    x, restore = to_batch(image)
    return restore(affine_batch(x, angle=angle, translate=translate, scale=scale, shear=shear, fill=fill,
                                interpolation=interpolation))


def rotate(image: ImageLike, degrees, *, fill: float = 0.0, interpolation: str = "bilinear") -> ImageLike:
    """Rotate about the centre by ``degrees`` (counter-clockwise), same size, bilinear, ``fill`` outside.

    Agrees with ``scipy.ndimage.rotate(image, degrees, reshape=False, order=1, mode="grid-constant")``
    to rounding (``tests/test_augment.py``).
    """
    return affine(image, angle=degrees, fill=fill, interpolation=interpolation)


def hflip(image: ImageLike) -> ImageLike:
    """Mirror left-right."""
    x, restore = to_batch(image)
    return restore(x.flip(-1))


def vflip(image: ImageLike) -> ImageLike:
    """Mirror top-bottom."""
    x, restore = to_batch(image)
    return restore(x.flip(-2))


def crop(image: ImageLike, top: int, left: int, height: int, width: int) -> ImageLike:
    """The ``height x width`` window whose top-left pixel is ``(top, left)``; it must lie inside the image."""
    x, restore = to_batch(image)
    h, w = x.shape[-2:]
    if not (top >= 0 and left >= 0 and height > 0 and width > 0 and top + height <= h and left + width <= w):
        raise ValueError(f"crop ({top}, {left}, {height}, {width}) does not fit in an image of {h}x{w}")
    return restore(x[..., top:top + height, left:left + width])


def center_crop(image: ImageLike, size: int | tuple[int, int]) -> ImageLike:
    """The central ``size`` window (``(height, width)`` or a square side)."""
    x, _ = to_batch(image)
    h, w = x.shape[-2:]
    oh, ow = (size, size) if isinstance(size, int) else size
    return crop(image, (h - oh) // 2, (w - ow) // 2, oh, ow)


def pad(image: ImageLike, padding: int | tuple[int, int, int, int], *, fill: float = 0.0,
        mode: str = "constant") -> ImageLike:
    """Pad by ``padding`` pixels (one int, or ``(left, right, top, bottom)``); ``mode`` is ``"constant"``
    (with ``fill``), ``"reflect"`` or ``"edge"``."""
    modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}
    if mode not in modes:
        raise ValueError(f"mode must be one of {sorted(modes)}, got {mode!r}")
    pads = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    if len(pads) != 4 or min(pads) < 0:
        raise ValueError(f"padding must be a non-negative int or (left, right, top, bottom), got {padding!r}")
    x, restore = to_batch(image)
    kwargs = {"value": float(fill)} if mode == "constant" else {}
    return restore(F.pad(x, pads, mode=modes[mode], **kwargs))


def resize(image: ImageLike, size: int | tuple[int, int], *, antialias: bool = True) -> ImageLike:
    """Resize to ``size`` (``(height, width)`` or a square side), bilinear (antialiased when shrinking)."""
    x, restore = to_batch(image)
    oh, ow = (size, size) if isinstance(size, int) else size
    out = F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False, antialias=antialias)
    return restore(out)


def resized_crop_batch(x: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop box ``(top, left, height, width)`` (float pixels; one row per image) and resize to ``size``.

    The box's pixel grid is sampled bilinearly (no antialiasing): a box of the output size at integer
    offsets copies pixels (to the rounding of the sampling grid).
    """
    n = x.shape[0]
    oh, ow = size
    boxes = boxes.to(device=x.device, dtype=torch.float64).reshape(n, 4)
    top, left, bh, bw = boxes.unbind(-1)
    # output pixel i (centred at (o - 1) / 2) maps to box pixel: centre + i * (box - 1) / (o - 1)
    sy = (bh - 1) / max(oh - 1, 1)
    sx = (bw - 1) / max(ow - 1, 1)
    inverse = torch.zeros(n, 2, 3, dtype=torch.float64, device=x.device)
    inverse[:, 0, 0], inverse[:, 1, 1] = sx, sy
    h, w = x.shape[-2:]
    centre = torch.stack([left + (bw - 1) / 2 - (w - 1) / 2, top + (bh - 1) / 2 - (h - 1) / 2], -1)
    return _warp(x, inverse, (oh, ow), centre, 0.0, "bilinear")


def resized_crop(image: ImageLike, top: float, left: float, height: float, width: float,
                 size: int | tuple[int, int]) -> ImageLike:
    """Crop the box ``(top, left, height, width)`` and resize it to ``size`` (bilinear)."""
    x, restore = to_batch(image)
    out_size = (size, size) if isinstance(size, int) else tuple(size)
    box = torch.tensor([[top, left, height, width]], dtype=torch.float64).expand(x.shape[0], 4)
    return restore(resized_crop_batch(x, box, out_size))


