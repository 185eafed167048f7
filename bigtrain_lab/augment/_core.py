"""Image conversion shared by every transform: any image -> a float batch ``(N, C, H, W)`` and back.

Accepted images:

* ``np.ndarray`` of shape ``(H, W)`` or ``(H, W, C)`` (C = 1, 3 or 4); ``uint8`` (0..255) or float
  (expected in [0, 1] for the photometric transforms);
* ``PIL.Image.Image`` (modes ``L``, ``RGB``, ``RGBA``);
* ``torch.Tensor`` of shape ``(H, W)``, ``(C, H, W)`` or a batch ``(N, C, H, W)``; ``uint8`` or float, on any
  device (the transforms run where the tensor lives, so the same code runs on a GPU).

Every transform returns the kind it was given: same type, shape, dtype (and device for tensors).
``uint8`` values are scaled to [0, 1] for the computation and rounded back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

ImageLike = np.ndarray | Image.Image | torch.Tensor
Restore = Callable[[torch.Tensor], Any]

__all__ = ["ImageLike", "draw_uniform", "to_batch"]


def _from_numpy(array: np.ndarray) -> tuple[torch.Tensor, Restore]:
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.floating) or array.dtype == np.uint8):
        raise TypeError(f"images must be uint8 or floating point arrays, got dtype {array.dtype}")
    if array.ndim == 2:
        chw = torch.from_numpy(np.array(array))[None]
    elif array.ndim == 3 and array.shape[2] in (1, 3, 4):
        chw = torch.from_numpy(np.array(array)).permute(2, 0, 1)
    else:
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C) with C in 1, 3, 4; got {array.shape}")
    dtype, ndim = array.dtype, array.ndim
    batch = chw[None].to(torch.float32) / 255.0 if dtype == np.uint8 else chw[None].clone()

    def restore(out: torch.Tensor) -> np.ndarray:
        out = out[0].detach().cpu()
        if dtype == np.uint8:
            out = (out * 255.0).round().clamp(0, 255).to(torch.uint8)
        hwc = out.permute(1, 2, 0).numpy()
        result = hwc[..., 0] if ndim == 2 else hwc
        return np.ascontiguousarray(result.astype(dtype, copy=False))

    return batch, restore


def _from_tensor(tensor: torch.Tensor) -> tuple[torch.Tensor, Restore]:
    if tensor.dtype == torch.bool or not (tensor.is_floating_point() or tensor.dtype == torch.uint8):
        raise TypeError(f"images must be uint8 or floating point tensors, got dtype {tensor.dtype}")
    shape, dtype = tensor.shape, tensor.dtype
    if tensor.dim() == 2:
        batch = tensor[None, None]
    elif tensor.dim() == 3:
        batch = tensor[None]
    elif tensor.dim() == 4:
        batch = tensor
    else:
        raise ValueError(f"expected a tensor (H, W), (C, H, W) or (N, C, H, W); got shape {tuple(shape)}")
    batch = batch.to(torch.float32) / 255.0 if dtype == torch.uint8 else batch.clone()

    def restore(out: torch.Tensor) -> torch.Tensor:
        if dtype == torch.uint8:
            out = (out * 255.0).round().clamp(0, 255).to(torch.uint8)
        return out[0, 0] if len(shape) == 2 else out[0] if len(shape) == 3 else out

    return batch, restore


def to_batch(image: ImageLike) -> tuple[torch.Tensor, Restore]:
    """``image`` as a float batch ``(N, C, H, W)`` (a copy) and a function mapping a result back.

    ``restore(batch)`` returns the original kind of image (type, dtype, layout, device).
    """
    if isinstance(image, torch.Tensor):
        return _from_tensor(image)
    if isinstance(image, Image.Image):
        mode = image.mode
        if mode not in ("L", "RGB", "RGBA"):
            raise ValueError(f"PIL images of mode L, RGB or RGBA are supported, got mode {mode!r}")
        batch, restore_array = _from_numpy(np.asarray(image))
        return batch, lambda out: Image.fromarray(restore_array(out), mode=mode)
    if isinstance(image, np.ndarray):
        return _from_numpy(image)
    raise TypeError(f"expected a numpy array, a PIL image or a torch tensor, got {type(image).__name__}")


def draw_uniform(low: float, high: float, n: int, generator: torch.Generator | None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` floats uniform in [low, high), drawn on the CPU from ``generator`` (reproducible on any device)."""
    values = low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)
    return values.to(device)


def per_sample(value: float | torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    """A scalar or an ``(n,)`` tensor of per-image parameters as an ``(n,)`` tensor on ``like``'s device."""
    t = torch.as_tensor(value, dtype=torch.float64, device=like.device)
    if t.dim() == 0:
        return t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"a per-image parameter must be a scalar or have shape ({n},), got {tuple(t.shape)}")
    return t
