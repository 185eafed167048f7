"""Preprocessing fitted on the training split only: scaling, missing values, outliers, denoising, and
scikit-learn ``Pipeline`` / ``ColumnTransformer``; plus the leakage experiments of the data lesson.

Rule: every statistic (mean, std, min, max, median, quantiles, selected features, vocabulary) is
computed on the training split and then applied unchanged to validation / test / production data. Putting
the steps in a ``Pipeline`` makes cross-validation refit them inside every fold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

__all__ = ["add_missing", "clip_outliers", "iqr_bounds", "make_tabular_pipeline", "min_max_scale",
           "psnr", "scaler_leakage", "selection_leakage", "standardize"]


def _two_d(a: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {a.shape}")
    return a


def standardize(train: ArrayLike, test: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """z-scores with the mean and population std (ddof=0) of ``train``; a constant column is divided
    by 1 (so it becomes 0 in train), as ``StandardScaler`` does."""
    train, test = _two_d(train, "train"), _two_d(test, "test")
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0), 1.0, std)
    return (train - mean) / std, (test - mean) / std


def min_max_scale(train: ArrayLike, test: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Normalisation to [0, 1] with the min and max of ``train`` (test values may fall outside)."""
    train, test = _two_d(train, "train"), _two_d(test, "test")
    lo, hi = train.min(axis=0), train.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (train - lo) / span, (test - lo) / span


def iqr_bounds(train: ArrayLike, k: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Tukey's fences per column: ``[Q1 - k IQR, Q3 + k IQR]`` computed on ``train``."""
    q1, q3 = np.percentile(_two_d(train, "train"), [25, 75], axis=0)
    return q1 - k * (q3 - q1), q3 + k * (q3 - q1)


def clip_outliers(train: ArrayLike, test: ArrayLike, k: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Clip (winsorize) both splits to the training split's Tukey fences."""
    lo, hi = iqr_bounds(train, k)
    return np.clip(_two_d(train, "train"), lo, hi), np.clip(_two_d(test, "test"), lo, hi)


def add_missing(X: ArrayLike, fraction: float, *, seed: int = 0, columns: Sequence[int] | None = None
                ) -> np.ndarray:
    """A copy of ``X`` with ``fraction`` of the entries of ``columns`` (default: all) set to NaN,
    completely at random."""
    X = _two_d(X, "X").copy()
    rng = np.random.default_rng(seed)
    cols = np.arange(X.shape[1]) if columns is None else np.asarray(columns)
    mask = rng.random((X.shape[0], len(cols))) < fraction
    sub = X[:, cols]
    sub[mask] = np.nan
    X[:, cols] = sub
    return X


def make_tabular_pipeline(numeric: Sequence[int], categorical: Sequence[int],
                          model: BaseEstimator | None = None) -> Pipeline:
    """``ColumnTransformer``: numeric columns -> median imputation (+ missing indicator) and
    standardization; categorical columns -> most-frequent imputation and one-hot (unknown categories at
    test time are ignored); then ``model`` (default logistic regression). Fit it on the training split."""
    numeric_steps = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    categorical_steps = make_pipeline(SimpleImputer(strategy="most_frequent"),
                                      OneHotEncoder(handle_unknown="ignore"))
    columns = ColumnTransformer([("numeric", numeric_steps, list(numeric)),
                                 ("categorical", categorical_steps, list(categorical))])
    return Pipeline([("columns", columns), ("model", model or LogisticRegression(max_iter=2000))])


def _cv(seed: int, folds: int, train_size: float | None = None) -> StratifiedKFold | StratifiedShuffleSplit:
    if train_size is None:
        return StratifiedKFold(folds, shuffle=True, random_state=seed)
    return StratifiedShuffleSplit(folds, train_size=train_size, random_state=seed)


def scaler_leakage(X: np.ndarray, y: np.ndarray, seeds: Sequence[int], *, folds: int = 5,
                   train_size: float | None = None, model: Callable[[], BaseEstimator] = lambda: LogisticRegression(max_iter=5000)
                   ) -> dict[str, np.ndarray]:
    """Cross-validated accuracy with the scaler fitted on ALL rows before splitting ("leaky") and inside
    each fold by a ``Pipeline`` ("pipeline"), one value per seed (a different fold split each).
    ``train_size`` (a fraction) replaces k-fold by ``folds`` random splits with that much training data."""
    leaky, proper = [], []
    X_all_scaled = StandardScaler().fit_transform(X)
    for seed in seeds:
        leaky.append(cross_val_score(model(), X_all_scaled, y, cv=_cv(seed, folds, train_size)).mean())
        proper.append(cross_val_score(make_pipeline(StandardScaler(), model()), X, y,
                                     cv=_cv(seed, folds, train_size)).mean())
    return {"leaky": np.array(leaky), "pipeline": np.array(proper)}


def selection_leakage(n_samples: int = 100, n_features: int = 2000, k: int = 20, *, seed: int = 0,
                      folds: int = 5) -> dict[str, float]:
    """The same bug with a step that looks at the labels: pure-noise features and random labels, so the
    true accuracy is 0.5. Selecting the ``k`` best features on all rows before cross-validation reports
    far more; selecting inside each fold (a ``Pipeline``) reports about 0.5."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    y = rng.integers(0, 2, n_samples)
    X_sel = SelectKBest(f_classif, k=k).fit_transform(X, y)
    leaky = cross_val_score(LogisticRegression(), X_sel, y, cv=_cv(seed, folds)).mean()
    proper = cross_val_score(make_pipeline(SelectKBest(f_classif, k=k), LogisticRegression()), X, y,
                             cv=_cv(seed, folds)).mean()
    return {"leaky": float(leaky), "pipeline": float(proper)}


def psnr(reference: ArrayLike, image: ArrayLike, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(range^2 / MSE)`` (higher is closer)."""
    mse = float(np.mean((np.asarray(reference, float) - np.asarray(image, float)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(data_range**2 / mse)
