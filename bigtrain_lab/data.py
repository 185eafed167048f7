"""Offline data for the lessons: nothing here touches the network.

Three kinds of data are served:

* Tabular sets, split into train / validation / test: scikit-learn's bundled ``digits``,
  ``breast_cancer``, ``wine`` and ``iris``, and procedurally generated sets (``moons``, ``circles``,
  ``blobs``, ``classification``, ``imbalanced``, ``regression``, ``friedman1``). See
  :func:`load_dataset` and :func:`available_datasets`.
* scikit-learn's two bundled photographs (:func:`load_sample_photos`).
* A character-level corpus for language models built from the ``.py`` sources of the running Python's
  standard library (:func:`load_text_corpus`), with nanoGPT-style random batches.
"""

from __future__ import annotations

import difflib
import functools
import math
import numbers
import os
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn import datasets as skdatasets
from sklearn.model_selection import train_test_split

__all__ = [
    "CORPUS_EXCLUDED_DIRS",
    "CharCorpus",
    "Dataset",
    "available_datasets",
    "load_dataset",
    "load_sample_photos",
    "load_text_corpus",
    "make_imbalanced",
]

# --------------------------------------------------------------------------------------------------
# Tabular data sets
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A data set split three ways, as returned by :func:`load_dataset`.

    Attributes
    ----------
    X_train, X_val, X_test : np.ndarray
        float64 arrays of shape ``(n_samples, n_features)``; ``X_val`` / ``X_test`` have zero rows when
        the matching size was 0.
    y_train, y_val, y_test : np.ndarray
        int64 class labels (classification) or float64 targets (regression), shape ``(n_samples,)``.
    feature_names : list of str
        One name per column of ``X``.
    target_names : list of str
        One name per class (``target_names[k]`` names label ``k``); empty for regression.
    task : str
        ``"classification"`` or ``"regression"``.
    name : str
        The name given to :func:`load_dataset`.
    description : str
        One line: what the data is and how it was made.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)
    task: str = "classification"
    name: str = ""
    description: str = ""

    @property
    def n_features(self) -> int:
        """Number of columns of ``X``."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (``len(target_names)``); 0 for regression."""
        return len(self.target_names)

    def as_tensors(self) -> tuple[torch.Tensor, ...]:
        """The six arrays as torch tensors.

        Returns
        -------
        tuple of torch.Tensor
            ``(X_train, y_train, X_val, y_val, X_test, y_test)``: ``X`` as float32, ``y`` as int64 for
            classification and float32 for regression. The tensors are copies.
        """
        y_dtype = torch.int64 if self.task == "classification" else torch.float32
        out = []
        for X, y in ((self.X_train, self.y_train), (self.X_val, self.y_val), (self.X_test, self.y_test)):
            out.append(torch.tensor(X, dtype=torch.float32))
            out.append(torch.tensor(y, dtype=y_dtype))
        return tuple(out)

    def __repr__(self) -> str:
        classes = f", n_classes={self.n_classes}" if self.task == "classification" else ""
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, n_features={self.n_features}{classes}, "
            f"train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)})"
        )


# (loader, one-line description) for scikit-learn's bundled sets.
_BUNDLED: dict[str, tuple[Callable[..., Any], str]] = {
    "digits": (
        skdatasets.load_digits,
        "8x8 grayscale images of handwritten digits (pixel intensities 0-16), 10 classes; UCI, bundled "
        "with scikit-learn",
    ),
    "breast_cancer": (
        skdatasets.load_breast_cancer,
        "Wisconsin diagnostic breast cancer: 30 features of cell nuclei, malignant vs benign; UCI, "
        "bundled with scikit-learn",
    ),
    "wine": (
        skdatasets.load_wine,
        "chemical analysis of wines from 3 cultivars, 13 features; UCI, bundled with scikit-learn",
    ),
    "iris": (
        skdatasets.load_iris,
        "Fisher's iris flowers: 4 measurements, 3 species; bundled with scikit-learn",
    ),
}


def make_imbalanced(
    n_samples: int = 2000,
    ratio: float = 20,
    seed: int = 0,
    *,
    n_features: int = 20,
    n_informative: int = 5,
    n_redundant: int = 2,
    class_sep: float = 1.0,
    flip_y: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A binary classification set with a rare positive class (``make_classification`` underneath).

    Parameters
    ----------
    n_samples : int, default=2000
        Number of rows.
    ratio : float, default=20
        Negatives per positive: 20 means 1:20, i.e. a positive rate of ``1 / 21`` (about 4.8 %).
        Must be >= 1.
    seed : int, default=0
        ``random_state`` of the generator.
    n_features, n_informative, n_redundant, class_sep, flip_y
        Passed to :func:`sklearn.datasets.make_classification`; ``flip_y=0`` keeps the ratio exact.

    Returns
    -------
    X : np.ndarray of shape (n_samples, n_features), float64
    y : np.ndarray of shape (n_samples,), int64, with 1 the minority (positive) class.
    """
    _check_n_samples(n_samples)
    if not isinstance(ratio, numbers.Real) or isinstance(ratio, bool) or not np.isfinite(ratio) or ratio < 1:
        raise ValueError(f"ratio must be a real number >= 1 (negatives per positive), got {ratio!r}")
    _check_seed(seed)
    X, y = skdatasets.make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=n_redundant,
        n_classes=2,
        weights=[ratio / (1.0 + ratio)],
        class_sep=class_sep,
        flip_y=flip_y,
        random_state=int(seed),
    )
    return np.ascontiguousarray(X, dtype=np.float64), y.astype(np.int64)


@dataclass(frozen=True)
class _Generated:
    """How to make one generated set: the generator, its defaults (= accepted kwargs) and a blurb."""

    make: Callable[..., tuple[np.ndarray, np.ndarray]]
    defaults: dict[str, Any]
    task: str
    blurb: str
    target_names: Callable[[np.ndarray], list[str]] | None = None


def _class_names(y: np.ndarray) -> list[str]:
    return [f"class_{k}" for k in range(int(y.max()) + 1)] if len(y) else []


_GENERATED: dict[str, _Generated] = {
    "moons": _Generated(
        skdatasets.make_moons, {"n_samples": 1000, "noise": 0.2}, "classification",
        "two interleaving half-circles in 2-D, 2 classes",
    ),
    "circles": _Generated(
        skdatasets.make_circles, {"n_samples": 1000, "noise": 0.1, "factor": 0.5}, "classification",
        "a small circle inside a large one in 2-D, 2 classes",
    ),
    "blobs": _Generated(
        skdatasets.make_blobs,
        {"n_samples": 1000, "n_features": 2, "centers": 3, "cluster_std": 1.0},
        "classification",
        "isotropic Gaussian blobs, one class per blob",
    ),
    "classification": _Generated(
        skdatasets.make_classification,
        {
            "n_samples": 1000, "n_features": 20, "n_informative": 5, "n_redundant": 2, "n_classes": 2,
            "n_clusters_per_class": 2, "class_sep": 1.0, "flip_y": 0.01,
        },
        "classification",
        "Gaussian clusters on hypercube vertices with informative, redundant and noise features",
    ),
    "imbalanced": _Generated(
        lambda *, random_state, **kw: make_imbalanced(seed=random_state, **kw),
        {
            "n_samples": 2000, "ratio": 20, "n_features": 20, "n_informative": 5, "n_redundant": 2,
            "class_sep": 1.0, "flip_y": 0.0,
        },
        "classification",
        "binary classification with a rare positive class (ratio negatives per positive)",
        lambda y: ["negative", "positive"],
    ),
    "regression": _Generated(
        skdatasets.make_regression,
        {"n_samples": 1000, "n_features": 10, "n_informative": 5, "noise": 10.0, "bias": 0.0},
        "regression",
        "random linear regression with Gaussian noise",
    ),
    "friedman1": _Generated(
        skdatasets.make_friedman1, {"n_samples": 1000, "n_features": 10, "noise": 1.0}, "regression",
        "Friedman #1: y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise, x ~ U[0, 1]",
    ),
}

_TASKS = ("classification", "regression")


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted.

    Returns
    -------
    list of str
        The bundled scikit-learn sets and the generated ones.
    """
    return sorted([*_BUNDLED, *_GENERATED])


def _check_seed(seed: Any) -> None:
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")


def _check_n_samples(n_samples: Any) -> None:
    if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")


def _check_fraction(name: str, value: Any) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1), got {value!r}")
    return float(value)


def _unknown_name_error(name: str) -> ValueError:
    names = available_datasets()
    close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"Unknown dataset {name!r}.{hint} Available datasets: {', '.join(names)}.")


def _make_raw(name: str, seed: int, kwargs: dict[str, Any]):
    """(X, y, feature_names, target_names, task, description) before splitting."""
    if name in _BUNDLED:
        if kwargs:
            raise ValueError(
                f"Dataset {name!r} is bundled with scikit-learn and takes no generator arguments, "
                f"got {sorted(kwargs)}."
            )
        loader, blurb = _BUNDLED[name]
        bunch = loader()
        X = np.ascontiguousarray(bunch.data, dtype=np.float64)
        y = np.asarray(bunch.target).astype(np.int64)
        feature_names = [str(f) for f in bunch.feature_names]
        target_names = [str(t) for t in bunch.target_names]
        description = (
            f"{name}: {blurb} ({X.shape[0]} samples, {X.shape[1]} features, {len(target_names)} classes)"
        )
        return X, y, feature_names, target_names, "classification", description

    spec = _GENERATED[name]
    unknown = set(kwargs) - set(spec.defaults)
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {sorted(unknown)} for dataset {name!r}; it accepts "
            f"{sorted(spec.defaults)}."
        )
    params = {**spec.defaults, **kwargs}
    _check_n_samples(params["n_samples"])
    if "noise" in params and (
        not isinstance(params["noise"], numbers.Real) or isinstance(params["noise"], bool)
        or not params["noise"] >= 0
    ):
        raise ValueError(f"noise must be a non-negative real number, got {params['noise']!r}")
    X, y = spec.make(random_state=seed, **params)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if spec.task == "classification":
        y = np.asarray(y).astype(np.int64)
        target_names = spec.target_names(y) if spec.target_names else _class_names(y)
    else:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        target_names = []
    feature_names = [f"x{j}" for j in range(X.shape[1])]
    maker = "make_imbalanced" if name == "imbalanced" else spec.make.__name__
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    description = f"{name}: {spec.blurb}; generated by {maker}({args}, random_state={seed})"
    return X, y, feature_names, target_names, spec.task, description


def _split_indices(
    y: np.ndarray, seed: int, val_size: float, test_size: float, stratify: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of train, val and test.

    Split sizes are counted up front (``ceil(fraction * n)``, as scikit-learn rounds a test fraction), so
    floating-point error in ``val_size / (1 - test_size)`` cannot move a sample between splits.
    """
    n = len(y)
    n_test = math.ceil(test_size * n - 1e-9) if test_size > 0 else 0
    n_val = math.ceil(val_size * n - 1e-9) if val_size > 0 else 0
    if n - n_test - n_val < 1:
        raise ValueError(f"{n_test} test and {n_val} validation samples leave no training data")
    idx = np.arange(n)
    strat = y if stratify else None
    if n_test:
        rest, test = train_test_split(idx, test_size=n_test, stratify=strat, random_state=seed)
    else:
        rest, test = idx, idx[:0]
    if n_val:
        train, val = train_test_split(
            rest, test_size=n_val, stratify=None if strat is None else strat[rest], random_state=seed
        )
    else:
        train, val = rest, rest[:0]
    return train, val, test


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    val_size: float = 0.15,
    test_size: float = 0.15,
    stratify: bool = True,
    **generator_kwargs: Any,
) -> Dataset:
    """Load (or generate) a data set offline and split it into train / validation / test.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets`: ``"digits"``, ``"breast_cancer"``, ``"wine"``, ``"iris"``
        (scikit-learn's bundled copies) or a generated set: ``"moons"``, ``"circles"``, ``"blobs"``,
        ``"classification"``, ``"imbalanced"``, ``"regression"``, ``"friedman1"``. Case-insensitive;
        ``-`` may stand for ``_``.
    seed : int, default=0
        Seeds both the generator (for generated sets) and the splits: same seed, same arrays.
    val_size, test_size : float, default=0.15
        Fractions of all samples in the validation and test splits, each in [0, 1) with a sum below 1.
        0 gives empty arrays with the right number of columns.
    stratify : bool, default=True
        Keep class proportions equal across splits (classification only; ignored for regression).
    **generator_kwargs
        Generated sets only, e.g. ``n_samples`` (default 1000; 2000 for ``"imbalanced"``), ``noise``
        (``moons``, ``circles``, ``regression``, ``friedman1``), ``ratio`` (``imbalanced``, default 20
        meaning 1:20), ``n_features``, ``centers``, ... An unknown argument raises ``ValueError`` listing
        the accepted ones.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown name (with the closest match suggested), unknown generator argument, or a bad seed, size
        or sample count.

    Examples
    --------
    >>> ds = load_dataset("moons", noise=0.3, seed=1)
    >>> ds.X_train.shape
    (700, 2)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key not in _BUNDLED and key not in _GENERATED:
        raise _unknown_name_error(name)
    _check_seed(seed)
    seed = int(seed)
    val_size = _check_fraction("val_size", val_size)
    test_size = _check_fraction("test_size", test_size)
    if val_size + test_size >= 1.0:
        raise ValueError(
            f"val_size + test_size must be below 1 to leave training data, got "
            f"val_size={val_size!r} + test_size={test_size!r} = {val_size + test_size!r}"
        )

    X, y, feature_names, target_names, task, description = _make_raw(key, seed, generator_kwargs)
    use_strat = bool(stratify) and task == "classification"
    try:
        train, val, test = _split_indices(y, seed, val_size, test_size, use_strat)
    except ValueError as exc:
        raise ValueError(
            f"Cannot split dataset {key!r} ({len(y)} samples) with val_size={val_size!r}, "
            f"test_size={test_size!r}, stratify={use_strat!r}: {exc}"
        ) from exc
    return Dataset(
        X_train=X[train], y_train=y[train],
        X_val=X[val], y_val=y[val],
        X_test=X[test], y_test=y[test],
        feature_names=feature_names,
        target_names=target_names,
        task=task,
        name=key,
        description=description,
    )


# --------------------------------------------------------------------------------------------------
# Photos
# --------------------------------------------------------------------------------------------------


def load_sample_photos() -> dict[str, np.ndarray]:
    """scikit-learn's two bundled photographs.

    Returns
    -------
    dict of str to np.ndarray
        ``{"china": ..., "flower": ...}``, each a uint8 array of shape ``(height, width, 3)`` (RGB);
        fresh copies on every call.
    """
    bunch = skdatasets.load_sample_images()
    return {
        Path(path).stem: np.array(image, dtype=np.uint8)
        for path, image in zip(bunch.filenames, bunch.images, strict=True)
    }


# --------------------------------------------------------------------------------------------------
# Character corpus from the standard library's sources
# --------------------------------------------------------------------------------------------------

#: Directory names skipped at any depth when building the corpus: installed third-party packages
#: (``site-packages``, ``dist-packages``), bytecode caches (``__pycache__``), the standard library's own
#: test suites (``test``, ``tests``: e.g. ``Lib/test``, ``unittest/test``, ``ctypes/test``), the IDLE
#: editor (``idlelib``) and the 2to3 translator (``lib2to3``, which also holds test fixtures with
#: deliberately broken code).
CORPUS_EXCLUDED_DIRS: frozenset[str] = frozenset(
    {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idlelib", "lib2to3"}
)


def _corpus_files(root: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """``(relative POSIX path, path)`` of every ``.py`` file under ``root``, sorted by relative path."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):  # does not follow symlinked directories
        dirnames[:] = [d for d in dirnames if d not in CORPUS_EXCLUDED_DIRS]
        for filename in filenames:
            if filename.endswith(".py"):
                path = Path(dirpath, filename)
                found.append((path.relative_to(root).as_posix(), path))
    found.sort(key=lambda item: item[0])
    return found


@functools.lru_cache(maxsize=4)
def _build_corpus_text(root: str) -> tuple[str, int]:
    """The concatenated corpus under ``root`` and the number of files in it (cached per root).

    Each file is read as UTF-8 (universal newlines); files that do not decode are skipped. Every file is
    preceded by a line ``# ---- <relative path> ----`` and ends with a newline (one is added if missing).
    """
    parts: list[str] = []
    n_files = 0
    for rel, path in _corpus_files(root):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(f"# ---- {rel} ----\n")
        parts.append(text if text.endswith("\n") or not text else text + "\n")
        n_files += 1
    return "".join(parts), n_files


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


@functools.lru_cache(maxsize=4)
def _encode_corpus(root: str) -> tuple[np.ndarray, tuple[str, ...], int]:
    """Token ids (read-only uint16), sorted vocabulary and file count of the corpus under ``root``."""
    text, n_files = _build_corpus_text(root)
    ids, vocab = _encode_with_vocab(text)
    ids.setflags(write=False)
    return ids, vocab, n_files


def _encode_with_vocab(text: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Token ids (uint16) of ``text`` under its own sorted vocabulary, and that vocabulary."""
    cps = _codepoints(text)
    if cps.size == 0:
        return np.zeros(0, dtype=np.uint16), ()
    present = np.flatnonzero(np.bincount(cps))
    if len(present) > 2**16:
        raise ValueError(f"the text has {len(present)} distinct characters, more than uint16 ids allow")
    table = np.zeros(int(present[-1]) + 1, dtype=np.uint16)
    table[present] = np.arange(len(present), dtype=np.uint16)
    return table[cps], tuple(chr(c) for c in present)


@dataclass(frozen=True, eq=False, repr=False)
class CharCorpus:
    """A character-level corpus split into contiguous train / validation token ids.

    Attributes
    ----------
    train, val : np.ndarray
        uint16 token ids; ``val`` follows ``train`` in the text (no overlap, no shuffling).
    vocab : list of str
        The sorted distinct characters; token id ``i`` is ``vocab[i]``.
    n_files : int
        Number of source files in the corpus.
    stoi, itos : dict
        Character -> id and id -> character.
    """

    train: np.ndarray
    val: np.ndarray
    vocab: list[str]
    n_files: int = 0
    stoi: dict[str, int] = field(init=False)
    itos: dict[int, str] = field(init=False)

    def __post_init__(self) -> None:
        vocab = list(self.vocab)
        object.__setattr__(self, "vocab", vocab)
        object.__setattr__(self, "stoi", {ch: i for i, ch in enumerate(vocab)})
        object.__setattr__(self, "itos", dict(enumerate(vocab)))
        cps = np.array([ord(ch) for ch in vocab], dtype="<u4")
        lookup = np.full(int(cps.max()) + 1 if len(cps) else 0, -1, dtype=np.int64)
        lookup[cps] = np.arange(len(vocab))
        object.__setattr__(self, "_cps", cps)
        object.__setattr__(self, "_lookup", lookup)

    @property
    def vocab_size(self) -> int:
        """Number of distinct characters (token ids run from 0 to ``vocab_size - 1``)."""
        return len(self.vocab)

    def __len__(self) -> int:
        """Total number of characters (train + val)."""
        return len(self.train) + len(self.val)

    def __repr__(self) -> str:
        return (
            f"CharCorpus(n_files={self.n_files}, chars={len(self)}, vocab_size={self.vocab_size}, "
            f"train={len(self.train)}, val={len(self.val)})"
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``.

        Parameters
        ----------
        text : str

        Returns
        -------
        list of int

        Raises
        ------
        ValueError
            If a character is not in the vocabulary (the first such one is named).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        cps = _codepoints(text)
        ids = np.full(len(cps), -1, dtype=np.int64)
        known = cps < len(self._lookup)
        ids[known] = self._lookup[cps[known]]
        bad = np.flatnonzero(ids < 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"character {text[i]!r} (U+{ord(text[i]):04X}) at position {i} is not in the "
                f"vocabulary of {self.vocab_size} characters"
            )
        return ids.tolist()

    def decode(self, ids: Sequence[int] | np.ndarray | torch.Tensor) -> str:
        """Text of a 1-D sequence of token ids (list, numpy array or torch tensor).

        Raises
        ------
        ValueError
            If ``ids`` is not 1-D integers or an id is outside ``[0, vocab_size)``.
        """
        if isinstance(ids, torch.Tensor):
            ids = ids.detach().cpu().numpy()
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {arr.shape}")
        if arr.size == 0:
            return ""
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
        out_of_range = np.flatnonzero((arr < 0) | (arr >= self.vocab_size))
        if out_of_range.size:
            i = int(out_of_range[0])
            raise ValueError(f"token id {int(arr[i])} at position {i} is outside [0, {self.vocab_size})")
        return self._cps[arr].tobytes().decode("utf-32-le")

    def get_batch(
        self,
        split: str,
        batch_size: int,
        block_size: int,
        *,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch of windows for next-character prediction (as in nanoGPT).

        Parameters
        ----------
        split : {"train", "val"}
        batch_size : int
            Number of windows.
        block_size : int
            Context length; the split must hold at least ``block_size + 1`` tokens.
        generator : torch.Generator, optional
            A CPU generator for reproducible draws (default: torch's global one).
        device : str or torch.device, default="cpu"

        Returns
        -------
        x, y : torch.Tensor
            int64 of shape ``(batch_size, block_size)``: ``x[b] = split[i:i + block_size]`` for a random
            start ``i`` and ``y[b] = split[i + 1:i + block_size + 1]`` (``x`` shifted by one).
        """
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        for arg, value in (("batch_size", batch_size), ("block_size", block_size)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        data = self.train if split == "train" else self.val
        if len(data) <= block_size:
            raise ValueError(
                f"block_size={block_size} needs at least block_size + 1 = {block_size + 1} tokens, but "
                f"the {split!r} split has {len(data)}"
            )
        starts = torch.randint(len(data) - block_size, (int(batch_size),), generator=generator).numpy()
        windows = data[starts[:, None] + np.arange(int(block_size) + 1)].astype(np.int64)
        x = torch.from_numpy(np.ascontiguousarray(windows[:, :-1]))
        y = torch.from_numpy(np.ascontiguousarray(windows[:, 1:]))
        device = torch.device(device)
        if device.type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x.to(device), y.to(device)


def _check_corpus_args(max_chars: Any, val_fraction: Any) -> None:
    if max_chars is not None and (
        not isinstance(max_chars, numbers.Integral) or isinstance(max_chars, bool) or max_chars < 1
    ):
        raise ValueError(f"max_chars must be a positive integer or None, got {max_chars!r}")
    _check_fraction("val_fraction", val_fraction)


def _split_corpus(
    ids: np.ndarray, vocab: Sequence[str], n_files: int, max_chars: int | None, val_fraction: float
) -> CharCorpus:
    if max_chars is not None:
        ids = ids[: int(max_chars)]
    n_train = int(len(ids) * (1.0 - float(val_fraction)))
    return CharCorpus(train=ids[:n_train], val=ids[n_train:], vocab=list(vocab), n_files=n_files)


def load_text_corpus(*, max_chars: int | None = None, val_fraction: float = 0.1) -> CharCorpus:
    """A character-level corpus made of the running Python's standard library sources.

    The ``.py`` files under ``sysconfig.get_paths()["stdlib"]`` are taken in sorted order of their
    relative POSIX paths, skipping any directory named in :data:`CORPUS_EXCLUDED_DIRS`
    (``site-packages``, ``dist-packages``, ``__pycache__``, ``test``, ``tests``, ``idlelib``,
    ``lib2to3``) and any file that is not valid UTF-8. Each file is preceded by a line
    ``# ---- <relative path> ----``. The text (a few MB; it depends on the Python version) is built once
    per process and cached.

    Parameters
    ----------
    max_chars : int, optional
        Keep only the first ``max_chars`` characters (before the split). The vocabulary is always that of
        the whole text, so token ids do not depend on ``max_chars``.
    val_fraction : float, default=0.1
        The last ``val_fraction`` of the characters form the validation split; the first part is train.
        Contiguous, not shuffled, so no training window overlaps a validation window.

    Returns
    -------
    CharCorpus

    Examples
    --------
    >>> corpus = load_text_corpus(max_chars=100_000)
    >>> x, y = corpus.get_batch("train", batch_size=4, block_size=8)
    >>> x.shape
    torch.Size([4, 8])
    """
    _check_corpus_args(max_chars, val_fraction)
    ids, vocab, n_files = _encode_corpus(str(Path(sysconfig.get_paths()["stdlib"]).resolve()))
    return _split_corpus(ids, vocab, n_files, max_chars, val_fraction)
