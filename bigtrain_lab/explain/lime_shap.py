"""Local explanations of one prediction: Shapley values and LIME, written out and through the libraries.

Written out, to be read (and checked against the libraries by the unit tests):

- ``exact_shapley(f, x, baseline)``: Shapley values by enumerating every subset of features, an absent
  feature taking its ``baseline`` value. Equal to ``shap.explainers.Exact`` with that single-row
  background; they sum to ``f(x) - f(baseline)`` (efficiency).
- ``local_linear_lime(f, x, ...)``: LIME for a regression function: Gaussian perturbations around ``x``,
  an exponential kernel on the distance, a weighted ridge fit; the coefficients are the explanation.

Through the libraries (what a practitioner calls): ``lime_tabular_weights`` and ``lime_image_weights``
(package ``lime``), ``tree_shap``, ``exact_shap``, ``permutation_shap`` and ``gradient_shap``
(package ``shap``). Every function returns plain NumPy arrays with one value per feature (or pixel).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from unittest import mock

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.linear_model import Ridge

__all__ = [
    "LIME_PERTURBATION_SCALE",
    "exact_shap",
    "exact_shapley",
    "gradient_shap",
    "grid_segmentation",
    "lime_image_weights",
    "lime_kernel",
    "lime_tabular_weights",
    "local_linear_lime",
    "permutation_shap",
    "shapley_by_permutations",
    "tree_shap",
]

#: Standard deviation of LIME's Gaussian perturbations, per feature, in the units of ``x``. The
#: ``lime`` library draws N(0, 1) in *standardised* units (scaled by each training column's std), so
#: this minimal version expects features already on a unit scale (standardise them first).
LIME_PERTURBATION_SCALE = 1.0

RowFunction = Callable[[np.ndarray], np.ndarray]


def _as_row(value: ArrayLike, name: str) -> np.ndarray:
    row = np.asarray(value, dtype=np.float64)
    if row.ndim != 1 or row.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of features, got shape {row.shape}")
    if not np.isfinite(row).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return row


def _evaluate(f: RowFunction, rows: np.ndarray) -> np.ndarray:
    out = np.asarray(f(rows), dtype=np.float64)
    if out.shape != (len(rows),):
        raise ValueError(f"f must map an (n, d) array to shape (n,), got {out.shape} for n={len(rows)}")
    return out


# ---- Shapley values -------------------------------------------------------------------------------

MAX_EXACT_FEATURES = 20


def exact_shapley(f: RowFunction, x: ArrayLike, baseline: ArrayLike) -> np.ndarray:
    """Exact Shapley values of ``f`` at ``x``, an absent feature taking its ``baseline`` value.

    phi_i = sum over subsets S of the other features of |S|! (d - |S| - 1)! / d! * (v(S + i) - v(S)),
    where v(S) = f(row with the features in S from x and the others from baseline). All 2**d coalitions
    are evaluated in one call of ``f``. Properties: sum(phi) = f(x) - f(baseline) (efficiency); a feature
    with x_i == baseline_i, or that f ignores, gets 0.

    Parameters
    ----------
    f : callable
        Maps an ``(n, d)`` float array to ``(n,)`` outputs (e.g. one class's probability).
    x, baseline : array-like of shape (d,)
        The row explained and the reference row. d <= 20 (2**d evaluations).

    Returns
    -------
    np.ndarray of shape (d,)
    """
    x, baseline = _as_row(x, "x"), _as_row(baseline, "baseline")
    if x.shape != baseline.shape:
        raise ValueError(f"x and baseline differ in shape: {x.shape} != {baseline.shape}")
    d = x.size
    if d > MAX_EXACT_FEATURES:
        raise ValueError(f"exact Shapley values need 2**d evaluations; d={d} > {MAX_EXACT_FEATURES}: "
                         "use permutation_shap (sampling) instead")
    masks = ((np.arange(2**d)[:, None] >> np.arange(d)) & 1).astype(bool)  # row m: coalition m's bits
    values = _evaluate(f, np.where(masks, x, baseline))
    sizes = masks.sum(axis=1)
    # weight of a coalition S (not containing i) of size s: s! (d - s - 1)! / d!
    weight = np.array([math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d) for s in range(d)])
    phi = np.zeros(d)
    for i in range(d):
        without = np.flatnonzero(~masks[:, i])
        phi[i] = np.sum(weight[sizes[without]] * (values[without | (1 << i)] - values[without]))
    return phi


def exact_shap(f: RowFunction, x: ArrayLike, background: ArrayLike) -> np.ndarray:
    """Shapley values from ``shap.explainers.Exact`` with an ``Independent`` masker on ``background``.

    With a single background row this is ``exact_shapley(f, x, background[0])``; with several rows an
    absent feature is averaged over them (interventional SHAP). Returns shape (d,).
    """
    import shap

    x = _as_row(x, "x")
    background = np.atleast_2d(np.asarray(background, dtype=np.float64))
    masker = shap.maskers.Independent(background, max_samples=len(background))
    explanation = shap.explainers.Exact(f, masker)(x[None, :], silent=True)
    return np.asarray(explanation.values[0], dtype=np.float64)


def permutation_shap(f: RowFunction, X: ArrayLike, background: ArrayLike, *, max_evals: int = 500,
                     seed: int = 0) -> np.ndarray:
    """Shapley values estimated by ``shap.explainers.Permutation`` (antithetic permutations).

    Returns shape (n, d) for the rows of ``X``. ``max_evals`` (>= 2 d + 1) bounds the calls per row.
    """
    import shap

    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    background = np.atleast_2d(np.asarray(background, dtype=np.float64))
    explainer = shap.explainers.Permutation(f, shap.maskers.Independent(background, len(background)),
                                            seed=seed)
    return np.asarray(explainer(X, max_evals=max_evals, silent=True).values, dtype=np.float64)


def tree_shap(model, X: ArrayLike, *, class_index: int | None = 1) -> np.ndarray:
    """TreeSHAP (``shap.TreeExplainer``, path-dependent) of a fitted tree ensemble on the rows of ``X``.

    For a classifier whose explanation has one column per class, ``class_index`` picks the class (its
    probability for a random forest, its log-odds margin for gradient boosting). Returns (n, d).
    """
    import shap

    values = shap.TreeExplainer(model)(np.atleast_2d(np.asarray(X, dtype=np.float64))).values
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3:
        if class_index is None:
            raise ValueError("the explanation has one column per class: pass class_index")
        values = values[:, :, class_index]
    return values


def gradient_shap(model: torch.nn.Module, X: torch.Tensor, background: torch.Tensor, target: int, *,
                  nsamples: int = 200, seed: int = 0) -> np.ndarray:
    """Expected gradients (``shap.GradientExplainer``) of output ``target`` of a torch model.

    An integrated-gradients average over baselines drawn from ``background`` and random points on the
    path; sums to ``f(x) - E[f(background)]`` in expectation. Returns an array of ``X``'s shape.
    """
    import shap

    model.eval()
    explainer = shap.GradientExplainer(model, background)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = explainer.shap_values(X, nsamples=nsamples, rseed=seed)
    values = np.asarray(values)
    # shap returns (..., n_outputs): the last axis indexes the model's outputs
    return values[..., target]


# ---- LIME -----------------------------------------------------------------------------------------


def lime_kernel(distances: np.ndarray, kernel_width: float) -> np.ndarray:
    """LIME's default similarity kernel: sqrt(exp(-d**2 / width**2)) = exp(-d**2 / (2 width**2))."""
    return np.sqrt(np.exp(-(distances**2) / kernel_width**2))


def local_linear_lime(f: RowFunction, x: ArrayLike, *, num_samples: int = 5000,
                      kernel_width: float | None = None, seed: int = 0, alpha: float = 1.0,
                      return_intercept: bool = False) -> np.ndarray | tuple[np.ndarray, float]:
    """A minimal LIME for a regression function ``f``: the coefficients of a local weighted linear fit.

    1. Draw ``num_samples`` points z = x + e, e ~ N(0, LIME_PERTURBATION_SCALE**2 I) (unit scale: the
       features should be standardised), the first one being x itself (as ``lime`` does).
    2. Weight each by ``lime_kernel(||z - x||, kernel_width)``; the default width is 0.75 sqrt(d),
       ``lime``'s default.
    3. Fit ``Ridge(alpha)`` of f(z) on (z - x) with those sample weights; return its coefficients (and
       the intercept, the local model's value at x, with ``return_intercept``).

    On a linear f the coefficients are its own (up to the tiny ridge shrinkage); on a smooth f they
    approach its gradient at x as the kernel narrows.
    """
    x = _as_row(x, "x")
    d = x.size
    if not isinstance(num_samples, int | np.integer) or num_samples < d + 2:
        raise ValueError(f"num_samples must be an integer >= d + 2 = {d + 2}, got {num_samples!r}")
    width = 0.75 * math.sqrt(d) if kernel_width is None else float(kernel_width)
    if not width > 0:
        raise ValueError(f"kernel_width must be > 0, got {kernel_width!r}")
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0.0, LIME_PERTURBATION_SCALE, size=(int(num_samples), d))
    offsets[0] = 0.0
    y = _evaluate(f, x + offsets)
    weights = lime_kernel(np.linalg.norm(offsets, axis=1), width)
    fit = Ridge(alpha=alpha).fit(offsets, y, sample_weight=weights)
    coef = np.asarray(fit.coef_, dtype=np.float64)
    return (coef, float(fit.intercept_)) if return_intercept else coef


def lime_tabular_weights(predict_proba: Callable[[np.ndarray], np.ndarray], X_train: ArrayLike,
                         x: ArrayLike, *, class_index: int = 1, num_samples: int = 1000, seed: int = 0,
                         kernel_width: float | None = None, discretize: bool = False) -> np.ndarray:
    """LIME weights of every feature (``lime.lime_tabular``) for one row and one class.

    ``predict_proba`` must return class *probabilities* of shape (n, n_classes) (hard labels make LIME
    raise). ``feature_selection="none"`` keeps all features, so the result has one weight per feature,
    in the standardised units LIME works in (per standard deviation of the training column). With
    ``discretize=False`` the perturbations are drawn around ``x`` (``sample_around_instance``).
    """
    from lime.lime_tabular import LimeTabularExplainer

    X_train = np.asarray(X_train, dtype=np.float64)
    x = _as_row(x, "x")
    if X_train.ndim != 2 or X_train.shape[1] != x.size:
        raise ValueError(f"X_train must have shape (n, {x.size}), got {X_train.shape}")
    explainer = LimeTabularExplainer(X_train, mode="classification", feature_selection="none",
                                     discretize_continuous=discretize, sample_around_instance=not discretize,
                                     kernel_width=kernel_width, random_state=seed)
    explanation = explainer.explain_instance(x, predict_proba, labels=(class_index,),
                                             num_features=x.size, num_samples=num_samples)
    weights = np.zeros(x.size)
    for feature, weight in explanation.as_map()[class_index]:
        weights[feature] = weight
    return weights


def grid_segmentation(shape: tuple[int, int], block: int = 1) -> np.ndarray:
    """Segment ids of a ``block`` x ``block`` grid over an image of ``shape`` (for LIME on tiny images:
    its default superpixel algorithm, quickshift, is meant for photographs)."""
    rows, cols = np.indices(shape)
    n_cols = -(-shape[1] // block)
    return (rows // block) * n_cols + cols // block


def lime_image_weights(predict_proba: Callable[[np.ndarray], np.ndarray], image: ArrayLike, *, label: int,
                       num_samples: int = 500, seed: int = 0, block: int = 1,
                       hide_color: float = 0.0) -> np.ndarray:
    """LIME (``lime.lime_image``) weight of every pixel of a grayscale ``image`` (H, W) for ``label``.

    Segments are a ``block`` x ``block`` grid; a hidden segment is set to ``hide_color``.
    ``predict_proba`` receives RGB batches (n, H, W, 3) (LIME converts gray to RGB) and must return
    probabilities (n, n_classes). Returns an (H, W) map: each pixel carries its segment's weight.
    """
    from lime.lime_image import LimeImageExplainer

    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image must be a 2-D grayscale array, got shape {image.shape}")
    segments = grid_segmentation(image.shape, block)
    # lime draws a progress bar per call; one explanation takes milliseconds here, so silence it
    with mock.patch("lime.lime_image.tqdm", lambda iterable, **_: iterable):
        explanation = LimeImageExplainer(random_state=seed).explain_instance(
            image, predict_proba, labels=(label,), top_labels=None, hide_color=hide_color,
            num_features=int(segments.max()) + 1, num_samples=num_samples, batch_size=num_samples,
            segmentation_fn=lambda _img: segments, random_seed=seed)
    weights = dict(explanation.local_exp[label])
    return np.vectorize(lambda s: weights.get(int(s), 0.0))(segments).astype(np.float64)


def shapley_by_permutations(f: RowFunction, x: ArrayLike, baseline: ArrayLike) -> np.ndarray:
    """Shapley values as the average marginal contribution over all d! orders (for tiny d; the
    definition a learner can check ``exact_shapley`` against)."""
    x, baseline = _as_row(x, "x"), _as_row(baseline, "baseline")
    d = x.size
    phi = np.zeros(d)
    orders = list(itertools.permutations(range(d)))
    for order in orders:
        row = baseline.copy()
        previous = _evaluate(f, row[None, :])[0]
        for i in order:
            row[i] = x[i]
            current = _evaluate(f, row[None, :])[0]
            phi[i] += current - previous
            previous = current
    return phi / len(orders)
