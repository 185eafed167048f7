"""Random transforms and pipelines.

A transform is called as ``t(image, generator=None)``: ``image`` is anything ``_core.to_batch`` accepts
(numpy / PIL / torch, one image or a batch ``(N, C, H, W)``), the result is the same kind. Each image of a
batch gets its own random parameters, drawn on the CPU from ``generator`` (a ``torch.Generator``), so a
seeded generator gives the same result on every run and on every device. ``generator=None`` uses torch's
global generator.

Subclasses implement ``apply_batch(x, generator)`` on a float batch in [0, 1]; :class:`Compose` chains
them without converting in between.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from bigtrain_lab.augment import geometric as geo
from bigtrain_lab.augment import photometric as photo
from bigtrain_lab.augment._core import ImageLike, draw_uniform, to_batch

__all__ = ["ColorJitter", "Compose", "GaussianBlur", "GaussianNoise", "RandomAffine", "RandomApply",
           "RandomCrop", "RandomErasing", "RandomHorizontalFlip", "RandomResizedCrop", "RandomRotation",
           "RandomVerticalFlip", "Transform", "format_value", "make_generator"]


def format_value(value: object, digits: int = 6) -> str:
    """``repr`` of a transform's parameter with floats rounded to ``digits`` significant digits, so that
    float noise (a slider's ``69.99999999999999``, ``1 - 0.7 = 0.30000000000000004``) reads as meant.

    >>> format_value((-69.99999999999999, 0.30000000000000004, 3))
    '(-70.0, 0.3, 3)'
    """
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, float):
        return repr(float(f"{value:.{digits}g}"))
    if isinstance(value, tuple):
        inner = ", ".join(format_value(v, digits) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v, digits) for v in value) + "]"
    return repr(value)


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``."""
    return torch.Generator().manual_seed(int(seed))


class Transform:
    """Base class: ``__call__`` converts, ``apply_batch`` transforms a float batch ``(N, C, H, W)``."""

    def __call__(self, image: ImageLike, generator: torch.Generator | None = None) -> ImageLike:
        x, restore = to_batch(image)
        return restore(self.apply_batch(x, generator))

    def apply_batch(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={format_value(v)}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _mask(p: float, n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    return (torch.rand(n, generator=generator) < p).to(device)


def _check_p(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    return float(p)


def _range(value: float | Sequence[float], name: str, centre: float = 0.0) -> tuple[float, float]:
    """``v`` -> ``(centre - v, centre + v)``; a pair is kept."""
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value!r}")
        return centre - value, centre + value
    lo, hi = value
    if lo > hi:
        raise ValueError(f"{name} range must be (low, high) with low <= high, got {value!r}")
    return float(lo), float(hi)


class Compose(Transform):
    """Apply ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def apply_batch(self, x, generator):
        for t in self.transforms:
            x = t.apply_batch(x, generator)
        return x


class RandomApply(Transform):
    """Apply ``transform`` to each image with probability ``p``."""

    def __init__(self, transform: Transform, p: float = 0.5):
        self.transform, self.p = transform, _check_p(p)

    def apply_batch(self, x, generator):
        chosen = _mask(self.p, len(x), generator, x.device)
        out = x.clone()
        if bool(chosen.any()):
            out[chosen] = self.transform.apply_batch(x[chosen], generator)
        return out


class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability ``p`` (NOT label-preserving for digits or text)."""

    def __init__(self, p: float = 0.5):
        self.p = _check_p(p)

    def apply_batch(self, x, generator):
        chosen = _mask(self.p, len(x), generator, x.device).view(-1, 1, 1, 1)
        return torch.where(chosen, x.flip(-1), x)


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror top-bottom with probability ``p``."""

    def apply_batch(self, x, generator):
        chosen = _mask(self.p, len(x), generator, x.device).view(-1, 1, 1, 1)
        return torch.where(chosen, x.flip(-2), x)


class RandomAffine(Transform):
    """Random rotation (degrees), translation (fraction of width / height), zoom and x-shear (degrees).

    ``degrees=15`` draws the angle uniformly in [-15, 15]; ``translate=(0.1, 0.1)`` shifts by up to 10 %
    of the width and height; ``scale=(0.9, 1.1)`` zooms; ``shear=10`` shears by up to 10 degrees.
    """

    def __init__(self, degrees: float | tuple[float, float] = 0.0, translate: tuple[float, float] | None = None,
                 scale: tuple[float, float] | None = None, shear: float | tuple[float, float] = 0.0,
                 fill: float = 0.0):
        self.degrees = _range(degrees, "degrees")
        self.translate = translate
        self.scale = scale
        self.shear = _range(shear, "shear")
        self.fill = fill
        if translate is not None and not all(0.0 <= t <= 1.0 for t in translate):
            raise ValueError(f"translate fractions must be in [0, 1], got {translate!r}")
        if scale is not None and not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale!r}")

    def apply_batch(self, x, generator):
        n, _, h, w = x.shape
        angle = draw_uniform(*self.degrees, n, generator, x.device)
        tx_max, ty_max = (self.translate or (0.0, 0.0))
        tx = draw_uniform(-tx_max * w, tx_max * w, n, generator, x.device).round()
        ty = draw_uniform(-ty_max * h, ty_max * h, n, generator, x.device).round()
        scale = draw_uniform(*(self.scale or (1.0, 1.0)), n, generator, x.device)
        shear = draw_uniform(*self.shear, n, generator, x.device)
        return geo.affine_batch(x, angle=angle, translate=(tx, ty), scale=scale, shear=shear, fill=self.fill)


class RandomRotation(RandomAffine):
    """Rotate by an angle uniform in ``[-degrees, degrees]`` (or in a ``(low, high)`` range)."""

    def __init__(self, degrees: float | tuple[float, float], fill: float = 0.0):
        super().__init__(degrees=degrees, fill=fill)


class RandomResizedCrop(Transform):
    """Crop a random box of ``scale`` times the area and aspect ratio in ``ratio`` (log-uniform), resize
    it to ``size``. Boxes larger than the image are clipped to it (torchvision retries instead)."""

    def __init__(self, size: int | tuple[int, int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.scale, self.ratio = scale, ratio
        if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"bad scale {scale!r} or ratio {ratio!r}")

    def apply_batch(self, x, generator):
        n, _, h, w = x.shape
        area = draw_uniform(*self.scale, n, generator) * h * w
        log_r = draw_uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), n, generator)
        r = torch.exp(log_r)
        bw = torch.sqrt(area * r).clamp(1, w)
        bh = torch.sqrt(area / r).clamp(1, h)
        top = torch.rand(n, generator=generator, dtype=torch.float64) * (h - bh)
        left = torch.rand(n, generator=generator, dtype=torch.float64) * (w - bw)
        return geo.resized_crop_batch(x, torch.stack([top, left, bh, bw], -1), self.size)


class RandomCrop(Transform):
    """Pad by ``padding`` (``fill``), then cut a random ``size`` window at integer offsets."""

    def __init__(self, size: int | tuple[int, int], padding: int = 0, fill: float = 0.0):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding, self.fill = padding, fill

    def apply_batch(self, x, generator):
        if self.padding:
            x = torch.nn.functional.pad(x, (self.padding,) * 4, value=float(self.fill))
        n, _, h, w = x.shape
        oh, ow = self.size
        if oh > h or ow > w:
            raise ValueError(f"crop size {self.size} is larger than the padded image {h}x{w}")
        top = torch.randint(0, h - oh + 1, (n,), generator=generator).to(x.device)
        left = torch.randint(0, w - ow + 1, (n,), generator=generator).to(x.device)
        rows = (top[:, None] + torch.arange(oh, device=x.device))[:, :, None]  # (N, oh, 1)
        cols = (left[:, None] + torch.arange(ow, device=x.device))[:, None, :]  # (N, 1, ow)
        batch = torch.arange(n, device=x.device)[:, None, None]
        return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()  # exact copies


class ColorJitter(Transform):
    """Random brightness, contrast, saturation (factors uniform in ``[max(0, 1 - v), 1 + v]``) and hue
    (shift uniform in ``[-hue, hue]``), applied in that fixed order."""

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                 hue: float = 0.0):
        if min(brightness, contrast, saturation, hue) < 0 or hue > 0.5:
            raise ValueError("jitter strengths must be >= 0 and hue <= 0.5")
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def apply_batch(self, x, generator):
        n = len(x)
        steps = [(self.brightness, photo.adjust_brightness), (self.contrast, photo.adjust_contrast),
                 (self.saturation, photo.adjust_saturation)]
        for strength, fn in steps:
            if strength:
                x = fn(x, draw_uniform(max(0.0, 1 - strength), 1 + strength, n, generator, x.device))
        if self.hue:
            x = photo.adjust_hue(x, draw_uniform(-self.hue, self.hue, n, generator, x.device))
        return x


class GaussianNoise(Transform):
    """Add Gaussian noise with a standard deviation uniform in ``std`` (a range) or fixed."""

    def __init__(self, std: float | tuple[float, float] = 0.05):
        self.std = (std, std) if isinstance(std, int | float) else tuple(std)
        if min(self.std) < 0:
            raise ValueError(f"std must be non-negative, got {std!r}")

    def apply_batch(self, x, generator):
        std = draw_uniform(*self.std, len(x), generator, x.device)
        return photo.gaussian_noise(x, std, generator=generator)


class GaussianBlur(Transform):
    """Blur with ``sigma`` uniform in a range (pixels)."""

    def __init__(self, sigma: float | tuple[float, float] = (0.1, 2.0)):
        self.sigma = (sigma, sigma) if isinstance(sigma, int | float) else tuple(sigma)
        if min(self.sigma) <= 0:
            raise ValueError(f"sigma must be positive, got {sigma!r}")

    def apply_batch(self, x, generator):
        return photo.gaussian_blur_batch(x, draw_uniform(*self.sigma, len(x), generator, x.device))


class RandomErasing(Transform):
    """With probability ``p`` erase a random box (``scale`` of the area, aspect ``ratio``) to ``value``
    (Zhong et al., 2017; "cutout" when the box is a fixed square)."""

    def __init__(self, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.33),
                 ratio: tuple[float, float] = (0.3, 3.3), value: float = 0.0):
        self.p, self.scale, self.ratio, self.value = _check_p(p), scale, ratio, value

    def apply_batch(self, x, generator):
        n, _, h, w = x.shape
        chosen = _mask(self.p, n, generator, "cpu")
        area = draw_uniform(*self.scale, n, generator) * h * w
        r = torch.exp(draw_uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), n, generator))
        bh = torch.sqrt(area / r).round().clamp(1, h).long()
        bw = torch.sqrt(area * r).round().clamp(1, w).long()
        top = (torch.rand(n, generator=generator, dtype=torch.float64) * (h - bh + 1)).long()
        left = (torch.rand(n, generator=generator, dtype=torch.float64) * (w - bw + 1)).long()
        rows = torch.arange(h)[None, :, None]
        cols = torch.arange(w)[None, None, :]
        box = ((rows >= top[:, None, None]) & (rows < (top + bh)[:, None, None])
               & (cols >= left[:, None, None]) & (cols < (left + bw)[:, None, None]) & chosen[:, None, None])
        return torch.where(box[:, None].to(x.device), torch.full_like(x, self.value), x)
