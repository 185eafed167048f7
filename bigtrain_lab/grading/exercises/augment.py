"""Exercises of the augmentation lesson.

``augment.rotate`` is checked against ``scipy.ndimage.rotate(image, degrees, reshape=False, order=1,
cval=0.0)`` (bilinear, about the centre ``((H - 1) / 2, (W - 1) / 2)``, counter-clockwise as displayed).
Two border conventions are both correct and accepted: scipy's ``mode="grid-constant"`` blends the outermost
pixels with the fill over the one-pixel ring just outside the image (what ``torch.grid_sample`` with zero
padding does), ``mode="constant"`` cuts to the fill there. So pixels whose source point lies inside the
image (by more than 1e-6) must match to 1e-6; pixels whose source lies within one pixel outside (or within
1e-6 of the edge, where rounding of cos / sin decides) may take any value between the fill (0) and the
blended value (+- 1e-6); everything farther out must be 0.

``augment.mixup`` is checked against the definition ``lam * x + (1 - lam) * x[perm]`` (same for labels).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import ndimage

from bigtrain_lab.grading.exercises.optim import tensor_tuple
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe

ROTATE_TOL = 1e-6


class RotationReference(np.ndarray):
    """The expected rotation (scipy, grid-constant) carrying the constant-mode bound and a band mask."""


def _band(shape: tuple[int, ...], degrees: float) -> np.ndarray:
    """Pixels whose source point lies in the one-pixel ring outside the image (or within 1e-6 of its
    edge, where rounding decides inside or outside)."""
    h, w = shape[:2]
    t = np.deg2rad(degrees)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    xs = np.cos(t) * (xx - cx) - np.sin(t) * (yy - cy) + cx
    ys = np.sin(t) * (xx - cx) + np.cos(t) * (yy - cy) + cy
    eps = 1e-6
    near_edge = (xs < eps) | (xs > w - 1 - eps) | (ys < eps) | (ys > h - 1 - eps)
    return near_edge if len(shape) == 2 else np.repeat(near_edge[..., None], shape[2], axis=2)


def _rotate(image: np.ndarray, degrees: float) -> RotationReference:
    kw = {"reshape": False, "order": 1, "cval": 0.0, "axes": (1, 0)}
    blended = ndimage.rotate(image, degrees, mode="grid-constant", **kw)
    cut = ndimage.rotate(image, degrees, mode="constant", **kw)
    band = _band(np.shape(image), degrees)
    out = np.asarray(blended).view(RotationReference)
    # accepted range per pixel: exact inside; between the fill (0) and either convention in the band
    out.lo = np.where(band, np.minimum(np.minimum(blended, cut), 0.0), blended) - ROTATE_TOL  # type: ignore
    out.hi = np.where(band, np.maximum(np.maximum(blended, cut), 0.0), blended) + ROTATE_TOL  # type: ignore
    return out


def _compare_rotation(got: Any, expected: RotationReference) -> str | None:
    shape = expected.shape
    if not isinstance(got, np.ndarray):
        return f"expected a numpy array of shape {shape}, got {type(got).__name__}: {describe(got, 80)}"
    if got.shape != shape:
        return f"the output has shape {got.shape}; it must keep the input's shape {shape} (no reshape)"
    if not np.issubdtype(got.dtype, np.floating):
        return f"return a floating-point array (got dtype {got.dtype}): rounding loses the interpolation"
    if np.isnan(got).any():
        return "the output contains NaN"
    blended = np.asarray(expected)
    bad = (got < expected.lo) | (got > expected.hi)  # type: ignore[attr-defined]
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return (f"{int(bad.sum())} of {bad.size} values differ; first at index {idx}: expected "
                f"{float(blended[idx]):.6g}, got {float(got[idx]):.6g} (max |error| "
                f"{float(np.max(np.abs(got - blended))):.3g})")
    return None


def _image(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.random(shape)


def _rotate_cases(rng: np.random.Generator) -> list[Case]:
    from sklearn.datasets import load_digits

    digit = load_digits().images[int(rng.integers(0, 1797))] / 16.0
    spot = np.zeros((9, 9))
    spot[1, 4] = 1.0  # a single bright pixel above the centre: shows the direction of rotation
    cases = [
        Case("0 degrees: unchanged", (_image(rng, 6, 6), 0.0)),
        Case("a point above the centre, 90 degrees (counter-clockwise: it goes to the left)", (spot, 90.0)),
        Case("a digit (8x8), 15 degrees", (digit, 15.0)),
        Case("a digit, -30 degrees (clockwise)", (digit, -30.0)),
        Case("180 degrees", (_image(rng, 7, 7), 180.0)),
        Case("non-square (5 x 9), 90 degrees: the corners fall outside", (_image(rng, 5, 9), 90.0)),
        Case("non-square (10 x 6), 33 degrees", (_image(rng, 10, 6), 33.0)),
        Case("even size (8 x 8): centre between pixels, 45 degrees", (_image(rng, 8, 8), 45.0)),
        Case("RGB image (12 x 10 x 3), 20 degrees: each channel alike", (_image(rng, 12, 10, 3), 20.0)),
        Case("angle above 360 (370 = 10)", (_image(rng, 6, 7), 370.0)),
        Case("fractional angle 0.5", (_image(rng, 9, 9), 0.5)),
        Case("a 1 x 1 image", (np.array([[0.7]]), 30.0)),
    ]
    for i in range(8):
        h, w = (int(v) for v in rng.integers(3, 24, 2))
        shape = (h, w, 3) if i % 3 == 0 else (h, w)
        angle = float(np.round(rng.uniform(-180, 180), 2))
        cases.append(Case(f"random #{i + 1} ({shape}, {angle} degrees)", (_image(rng, *shape), angle)))
    return cases


register(Exercise(
    id="augment.rotate",
    reference=_rotate,
    make_cases=_rotate_cases,
    compare=_compare_rotation,
    hint="For every OUTPUT pixel (x = column, y = row) take coordinates relative to the centre "
         "cx = (W - 1) / 2, cy = (H - 1) / 2, apply the INVERSE rotation to find where it comes from: "
         "xs = cos(t) (x - cx) - sin(t) (y - cy) + cx, ys = sin(t) (x - cx) + cos(t) (y - cy) + cy "
         "(t in radians; counter-clockwise on screen as rows go down), then interpolate bilinearly from the "
         "4 neighbours of (ys, xs); sources outside the image give 0. Keep the shape (H x W or H x W x C).",
    section="geometric-transforms",
))


def _mixup(x, y_onehot, lam, perm):
    return lam * x + (1 - lam) * x[perm], lam * y_onehot + (1 - lam) * y_onehot[perm]


def _batch(rng: np.random.Generator, n: int, shape: tuple[int, ...], k: int, dtype=torch.float32):
    x = torch.tensor(rng.normal(size=(n, *shape)), dtype=dtype)
    y = torch.nn.functional.one_hot(torch.tensor(rng.integers(0, k, n)), k).to(dtype)
    return x, y


def _mixup_cases(rng: np.random.Generator) -> list[Case]:
    def perm(n):
        return torch.tensor(rng.permutation(n))

    x, y = _batch(rng, 4, (1, 8, 8), 10)
    cases = [
        Case("images (4, 1, 8, 8), lam 0.7", (x, y, 0.7, perm(4))),
        Case("lam = 1: the batch itself", (x, y, 1.0, perm(4))),
        Case("lam = 0: the permuted batch", (x, y, 0.0, perm(4))),
        Case("identity permutation: mixing with itself changes nothing", (x, y, 0.3, torch.arange(4))),
        Case("reversed permutation (not its own inverse for odd n)", (*_batch(rng, 5, (3,), 3), 0.25,
                                                                      torch.tensor([4, 0, 1, 2, 3]))),
        Case("a batch of one", (*_batch(rng, 1, (2, 2), 2), 0.6, torch.tensor([0]))),
        Case("soft (label-smoothed) targets", (x, y * 0.9 + 0.01, 0.4, perm(4))),
        Case("float64 batch", (*_batch(rng, 6, (3, 4, 4), 5, torch.float64), 0.55, perm(6))),
    ]
    for i in range(8):
        n, k = int(rng.integers(2, 33)), int(rng.integers(2, 11))
        lam = float(rng.beta(0.4, 0.4))
        cases.append(Case(f"random #{i + 1} (n={n}, {k} classes, lam={lam:.3f})",
                          (*_batch(rng, n, (1, 6, 6), k), lam, perm(n))))
    return cases


register(Exercise(
    id="augment.mixup",
    reference=_mixup,
    make_cases=_mixup_cases,
    compare=tensor_tuple(("x_mixed", "y_mixed"), steps=8),  # lam * a + (1 - lam) * b: a few roundings
    hint="x_mixed = lam * x + (1 - lam) * x[perm] and y_mixed = lam * y_onehot + (1 - lam) * y_onehot[perm]: "
         "the SAME lam and the SAME perm for images and labels, partner = x[perm] (index with perm, not "
         "with its inverse), and do not modify x or y_onehot in place.",
    section="mixup-and-cutmix",
))
