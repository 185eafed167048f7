"""The augmentation experiment of the data lesson: the digits CNN trained on a small subset with and
without augmentation, test accuracy over several seeds."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from bigtrain_lab.augment.transforms import Transform
from bigtrain_lab.fit import accuracy, fit_classifier

__all__ = ["augmentation_experiment", "digits_as_images", "small_subset", "train_digits_cnn"]


def digits_as_images(X: np.ndarray) -> torch.Tensor:
    """sklearn digits rows ``(N, 64)`` with values 0..16 as a float batch ``(N, 1, 8, 8)`` in [0, 1]."""
    return torch.tensor(np.asarray(X) / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)


def small_subset(y: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` random examples of every class."""
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                                   for c in np.unique(y)]))


def train_digits_cnn(x: torch.Tensor, y: torch.Tensor, *, transform: Transform | None = None,
                     batch_transform: Callable | None = None, steps: int = 300, batch_size: int = 64,
                     lr: float = 3e-3, seed: int = 0) -> torch.nn.Module:
    """Train ``bigtrain_lab.models.CNN`` with Adam on random batches (``fit_classifier``); every batch is
    freshly augmented by ``transform`` (per image) and then by ``batch_transform``
    (``(x, y, generator) -> (x, soft_y)``, e.g. MixUp)."""
    from bigtrain_lab.models import CNN

    def augment(xb: torch.Tensor, yb: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if transform is not None:
            xb = transform(xb, g)
        return batch_transform(xb, yb, g) if batch_transform is not None else (xb, yb)

    torch.manual_seed(seed)
    model = CNN(10)
    fit_classifier(model, x, y, steps=steps, batch_size=min(batch_size, len(x)), sampling="random",
                   transform=augment, optimizer=torch.optim.Adam(model.parameters(), lr=lr), seed=seed)
    return model.eval()


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
