"""Plausible WRONG implementations of the augmentation exercises (each must be rejected by ``check``),
and several different CORRECT ones (each must be accepted)."""

import math

import numpy as np
import torch
from scipy import ndimage

# ---- augment.rotate -------------------------------------------------------------------------------


def _bilinear(image, ys, xs):
    """Sample ``image`` at float coordinates, 0 outside [0, n-1] (scipy's mode="constant")."""
    img = np.asarray(image, dtype=float)
    h, w = img.shape[:2]
    inside = (ys >= 0) & (ys <= h - 1) & (xs >= 0) & (xs <= w - 1)
    y0 = np.clip(np.floor(ys).astype(int), 0, max(h - 2, 0))
    x0 = np.clip(np.floor(xs).astype(int), 0, max(w - 2, 0))
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = ys - y0, xs - x0
    if img.ndim == 3:
        fy, fx, inside = fy[..., None], fx[..., None], inside[..., None]
    out = (img[y0, x0] * (1 - fy) * (1 - fx) + img[y0, x1] * (1 - fy) * fx
           + img[y1, x0] * fy * (1 - fx) + img[y1, x1] * fy * fx)
    return np.where(inside, out, 0.0)


def _source(shape, degrees, sign=1.0, centre=None):
    h, w = shape[:2]
    t = math.radians(sign * degrees)
    cy, cx = ((h - 1) / 2, (w - 1) / 2) if centre is None else centre
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    xs = math.cos(t) * (xx - cx) - math.sin(t) * (yy - cy) + cx
    ys = math.sin(t) * (xx - cx) + math.cos(t) * (yy - cy) + cy
    return ys, xs


def rot_clockwise(image, degrees):
    return _bilinear(image, *_source(image.shape, degrees, sign=-1.0))


def rot_about_corner(image, degrees):
    return _bilinear(image, *_source(image.shape, degrees, centre=(0.0, 0.0)))


def rot_centre_h_over_2(image, degrees):
    # centre at (H/2, W/2) instead of ((H-1)/2, (W-1)/2): off by half a pixel
    return _bilinear(image, *_source(image.shape, degrees, centre=(image.shape[0] / 2, image.shape[1] / 2)))


def rot_nearest(image, degrees):
    return ndimage.rotate(image, degrees, reshape=False, order=0, mode="constant", cval=0.0)


def rot_reshape(image, degrees):
    # scipy's default reshape=True grows the canvas to hold the whole rotated image
    return ndimage.rotate(image, degrees, order=1, mode="constant", cval=0.0)


def rot_radians(image, degrees):
    return ndimage.rotate(image, math.radians(degrees), reshape=False, order=1, mode="constant")


def rot_edge_fill(image, degrees):
    # fills with the nearest edge pixel instead of 0
    return ndimage.rotate(image, degrees, reshape=False, order=1, mode="nearest")


def rot_uint8(image, degrees):
    out = ndimage.rotate(image, degrees, reshape=False, order=1, mode="constant")
    return (out * 255).round().astype(np.uint8)


ROTATE_WRONG = [rot_clockwise, rot_about_corner, rot_centre_h_over_2, rot_nearest, rot_reshape, rot_radians,
                rot_edge_fill, rot_uint8]


def rot_numpy_bilinear(image, degrees):
    return _bilinear(image, *_source(image.shape, degrees))


def rot_scipy_constant(image, degrees):
    return ndimage.rotate(image, degrees, reshape=False, order=1, mode="constant", cval=0.0)


def rot_torch_grid_sample(image, degrees):
    from bigtrain_lab.augment import rotate
    return rotate(np.asarray(image, dtype=np.float64), degrees)


ROTATE_RIGHT = [rot_numpy_bilinear, rot_scipy_constant, rot_torch_grid_sample]

# ---- augment.mixup --------------------------------------------------------------------------------


def mix_lam_swapped(x, y, lam, perm):
    return (1 - lam) * x + lam * x[perm], (1 - lam) * y + lam * y[perm]


def mix_labels_unmixed(x, y, lam, perm):
    return lam * x + (1 - lam) * x[perm], y.clone()


def mix_hard_labels(x, y, lam, perm):
    # keeps the label of the dominant image only
    y_out = y.clone() if lam >= 0.5 else y[perm].clone()
    return lam * x + (1 - lam) * x[perm], y_out


def mix_inverse_perm(x, y, lam, perm):
    inv = torch.argsort(perm)
    return lam * x + (1 - lam) * x[inv], lam * y + (1 - lam) * y[inv]


def mix_in_place(x, y, lam, perm):
    partner_x, partner_y = x[perm].clone(), y[perm].clone()
    x.mul_(lam).add_((1 - lam) * partner_x)
    y.mul_(lam).add_((1 - lam) * partner_y)
    return x, y


def mix_x_and_labels_different_perm(x, y, lam, perm):
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y.flip(0)


MIXUP_WRONG = [mix_lam_swapped, mix_labels_unmixed, mix_hard_labels, mix_inverse_perm, mix_in_place,
               mix_x_and_labels_different_perm]


def mix_direct(x, y, lam, perm):
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]


def mix_lerp(x, y, lam, perm):
    # torch.lerp(a, b, w) = a + w * (b - a): start at the partner, move lam of the way to x
    return torch.lerp(x[perm], x, lam), torch.lerp(y[perm], y, lam)


def mix_package(x, y, lam, perm):
    from bigtrain_lab.augment import mixup
    return mixup(x, y, lam, perm)


MIXUP_RIGHT = [mix_direct, mix_lerp, mix_package]

WRONG = {"augment.rotate": ROTATE_WRONG, "augment.mixup": MIXUP_WRONG}
RIGHT = {"augment.rotate": ROTATE_RIGHT, "augment.mixup": MIXUP_RIGHT}
