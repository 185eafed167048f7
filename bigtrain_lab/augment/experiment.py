"""The augmentation experiments of the data lesson: the digits CNN trained on a small subset with and
without augmentation, test accuracy over several seeds; and colour jitter against colour shifts at test time
(digits drawn in colour, a CNN trained with and without jitter, accuracy and changed predictions under shifted
hue and brightness)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bigtrain_lab.augment.transforms import Transform
from bigtrain_lab.fit import accuracy, fit_classifier

__all__ = ["INK", "ShiftResult", "augmentation_experiment", "colour_cnn", "colour_shift_experiment", "colourize",
           "digits_as_images", "small_subset", "train_digits_cnn"]

#: the colour (RGB in [0, 1]) in which :func:`colourize` draws the digits: an orange
INK = (1.0, 0.45, 0.1)


def digits_as_images(X: np.ndarray) -> torch.Tensor:
    """sklearn digits rows ``(N, 64)`` with values 0..16 as a float batch ``(N, 1, 8, 8)`` in [0, 1]."""
    return torch.tensor(np.asarray(X) / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)


def small_subset(y: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` random examples of every class."""
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                                   for c in np.unique(y)]))


def colourize(x: torch.Tensor, ink: Sequence[float] = INK) -> torch.Tensor:
    """Grey digits ``(N, 1, H, W)`` in [0, 1] as RGB ``(N, 3, H, W)``: the digit drawn in ``ink`` on black."""
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"expected grey images (N, 1, H, W), got {tuple(x.shape)}")
    return x * torch.as_tensor(ink, dtype=x.dtype).view(1, 3, 1, 1)


def colour_cnn(num_classes: int = 10) -> nn.Module:
    """The lesson's digits CNN (``bigtrain_lab.models.CNN``) behind a learned 1x1 convolution that mixes the
    three colour channels into one: input ``(N, 3, 8, 8)``."""
    from bigtrain_lab.models import CNN

    return nn.Sequential(nn.Conv2d(3, 1, kernel_size=1), CNN(num_classes))


def train_digits_cnn(x: torch.Tensor, y: torch.Tensor, *, transform: Transform | None = None,
                     batch_transform: Callable | None = None, steps: int = 300, batch_size: int = 64,
                     lr: float = 3e-3, seed: int = 0,
                     model: Callable[[], nn.Module] | None = None) -> torch.nn.Module:
    """Train ``bigtrain_lab.models.CNN`` (or ``model()``, e.g. :func:`colour_cnn`) with Adam on random batches
    (``fit_classifier``); every batch is freshly augmented by ``transform`` (per image) and then by
    ``batch_transform`` (``(x, y, generator) -> (x, soft_y)``, e.g. MixUp)."""
    from bigtrain_lab.models import CNN

    def augment(xb: torch.Tensor, yb: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if transform is not None:
            xb = transform(xb, g)
        return batch_transform(xb, yb, g) if batch_transform is not None else (xb, yb)

    torch.manual_seed(seed)
    net = CNN(10) if model is None else model()
    fit_classifier(net, x, y, steps=steps, batch_size=min(batch_size, len(x)), sampling="random",
                   transform=augment, optimizer=torch.optim.Adam(net.parameters(), lr=lr), seed=seed)
    return net.eval()


def augmentation_experiment(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                            y_test: torch.Tensor, configs: Mapping[str, dict], seeds: Sequence[int], *,
                            steps: int = 300, progress: bool = True) -> dict[str, list[float]]:
    """Test accuracy per seed for each named config (keyword arguments of :func:`train_digits_cnn`)."""
    from tqdm.auto import tqdm

    results: dict[str, list[float]] = {name: [] for name in configs}
    runs = [(name, s) for s in seeds for name in configs]
    for name, seed in tqdm(runs, desc="CNN runs", disable=not progress):
        model = train_digits_cnn(x_train, y_train, steps=steps, seed=seed, **configs[name])
        results[name].append(accuracy(model, x_test, y_test))
    return results


@dataclass(frozen=True)
class ShiftResult:
    """One model (config, seed) of :func:`colour_shift_experiment`, measured on the test split."""

    config: str
    seed: int
    accuracy: float  # on the unshifted test images
    shifted_accuracy: dict[str, float]  # shift name -> accuracy on the shifted test images
    changed: dict[str, float]  # shift name -> fraction of test images whose predicted class the shift changes


def colour_shift_experiment(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                            shifted: Mapping[str, torch.Tensor], configs: Mapping[str, dict], seeds: Sequence[int], *,
                            steps: int = 300, progress: bool = True) -> list[ShiftResult]:
    """Train :func:`colour_cnn` for each named config (keyword arguments of :func:`train_digits_cnn`, e.g. a
    ``ColorJitter`` transform) and seed; measure accuracy on ``x_test`` and on each shifted copy of it
    (``shifted``: name -> images, same order as ``x_test``), and how many predictions each shift changes."""
    from tqdm.auto import tqdm

    results = []
    runs = [(name, s) for s in seeds for name in configs]
    for name, seed in tqdm(runs, desc="CNN runs", disable=not progress):
        model = train_digits_cnn(x_train, y_train, steps=steps, seed=seed, model=colour_cnn, **configs[name])
        with torch.no_grad():
            clean = model(x_test).argmax(1)
            preds = {shift: model(x).argmax(1) for shift, x in shifted.items()}
        results.append(ShiftResult(
            name, seed, float((clean == y_test).float().mean()),
            {shift: float((p == y_test).float().mean()) for shift, p in preds.items()},
            {shift: float((p != clean).float().mean()) for shift, p in preds.items()}))
    return results
