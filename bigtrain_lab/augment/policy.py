"""RandAugment (Cubuk et al., 2020): apply ``num_ops`` operations drawn uniformly from a fixed list, all
at one global ``magnitude`` — two hyperparameters instead of AutoAugment's searched policy.

Magnitudes follow torchvision's ``RandAugment``: bin ``magnitude`` of ``num_magnitude_bins`` (default 9 of
31) maps each operation's range linearly; signed operations flip sign with probability 1/2. Operations:
identity, shear x / y (up to 0.3, as a tangent), translate x / y (up to 150/331 of the size), rotate (up
to 30 degrees), brightness / colour (saturation) / contrast (factor 1 +- up to 0.9), posterize (8 down to
4 bits), solarize (threshold 1 down to 0) and autocontrast. (torchvision's sharpness and equalize are
left out.) Each image of a batch draws its own operations and signs.
"""

from __future__ import annotations

import math

import torch

from bigtrain_lab.augment import geometric as geo
from bigtrain_lab.augment import photometric as photo
from bigtrain_lab.augment.transforms import Transform

__all__ = ["OPERATIONS", "RandAugment", "apply_operation"]

#: name -> (maximum magnitude, signed)
OPERATIONS: dict[str, tuple[float, bool]] = {
    "identity": (0.0, False),
    "shear_x": (0.3, True),
    "shear_y": (0.3, True),
    "translate_x": (150 / 331, True),
    "translate_y": (150 / 331, True),
    "rotate": (30.0, True),
    "brightness": (0.9, True),
    "color": (0.9, True),
    "contrast": (0.9, True),
    "posterize": (4.0, False),
    "solarize": (1.0, False),
    "autocontrast": (0.0, False),
}


def apply_operation(x: torch.Tensor, name: str, magnitude: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Apply operation ``name`` with per-image (signed) ``magnitude`` ``(N,)`` to a float batch."""
    h, w = x.shape[-2:]
    zero = torch.zeros_like(magnitude)
    if name == "identity":
        return x
    if name == "shear_x":
        return geo.affine_batch(x, shear=torch.rad2deg(torch.atan(magnitude)), fill=fill)
    if name == "shear_y":  # shear along y = transpose, shear along x, transpose back
        out = geo.affine_batch(x.transpose(-1, -2), shear=torch.rad2deg(torch.atan(magnitude)), fill=fill)
        return out.transpose(-1, -2)
    if name == "translate_x":
        return geo.affine_batch(x, translate=((magnitude * w).round(), zero), fill=fill)
    if name == "translate_y":
        return geo.affine_batch(x, translate=(zero, (magnitude * h).round()), fill=fill)
    if name == "rotate":
        return geo.affine_batch(x, angle=magnitude, fill=fill)
    if name == "brightness":
        return photo.adjust_brightness(x, 1 + magnitude)
    if name == "color":
        return photo.adjust_saturation(x, 1 + magnitude)
    if name == "contrast":
        return photo.adjust_contrast(x, 1 + magnitude)
    if name == "posterize":
        return photo.posterize(x, 8 - magnitude.round())
    if name == "solarize":
        return photo.solarize(x, 1 - magnitude)
    if name == "autocontrast":
        return photo.autocontrast(x)
    raise ValueError(f"unknown operation {name!r}; known: {sorted(OPERATIONS)}")


class RandAugment(Transform):
    """``num_ops`` random operations per image at magnitude bin ``magnitude`` (0 .. bins - 1)."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31,
                 operations: tuple[str, ...] | None = None, fill: float = 0.0):
        if num_ops < 0 or not 0 <= magnitude < num_magnitude_bins:
            raise ValueError(f"need num_ops >= 0 and 0 <= magnitude < {num_magnitude_bins}")
        ops = tuple(operations or OPERATIONS)
        unknown = set(ops) - set(OPERATIONS)
        if unknown:
            raise ValueError(f"unknown operations {sorted(unknown)}; known: {sorted(OPERATIONS)}")
        self.num_ops, self.magnitude, self.num_magnitude_bins = num_ops, magnitude, num_magnitude_bins
        self.operations, self.fill = ops, fill

    def strength(self, name: str) -> float:
        """The unsigned magnitude of operation ``name`` at this policy's bin."""
        top, _ = OPERATIONS[name]
        if name == "posterize":  # torchvision: 8 - (arange(bins) / ((bins - 1) / 4)).round()
            return float(round(self.magnitude / ((self.num_magnitude_bins - 1) / 4)))
        return top * self.magnitude / max(self.num_magnitude_bins - 1, 1) if not math.isclose(top, 0) else 0.0

    def apply_batch(self, x, generator):
        n = len(x)
        for _ in range(self.num_ops):
            which = torch.randint(0, len(self.operations), (n,), generator=generator)
            sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).double()
            out = x.clone()
            for k, name in enumerate(self.operations):
                chosen = which == k
                if not bool(chosen.any()):
                    continue
                signed = OPERATIONS[name][1]
                mag = self.strength(name) * (sign[chosen] if signed else torch.ones(int(chosen.sum()),
                                                                                     dtype=torch.float64))
                idx = chosen.nonzero().squeeze(1).to(x.device)
                out[idx] = apply_operation(x[idx], name, mag.to(x.device), self.fill)
            x = out
        return x
