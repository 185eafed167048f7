"""Scaling laws: train a grid of TinyGPTs, fit ``L(N, D) = E + A / N^alpha + B / D^beta``, find the compute optimum.

* ``train_grid(sizes, token_budgets)`` trains one TinyGPT (character level, ``bigtrain_lab.data.load_text_corpus``)
  per (size, token budget) with ``bigtrain_lab.llm.training.train_lm``: AdamW, warmup then cosine decay that ends
  at *that run's own* budget (Hoffmann et al. 2022's correction to Kaplan et al. 2020, who read losses of shorter
  budgets off one long run whose schedule had not ended, which made small data look worse than it is). Every run
  is evaluated on the same fixed validation batches (mean cross-entropy, nats per character).
  ``n_params`` is ``TinyGPT.num_parameters()``: all but the position embeddings (the tied token embedding,
  which is also the output layer, is kept).
* ``fit_scaling_law(points)``: Hoffmann et al. 2022's approach 3 -- minimise the Huber loss (delta 1e-3) of
  ``log L_pred - log L_obs`` with ``L_pred = exp(LSE(a - alpha log N, b - beta log D, e))``
  (``A = e^a, B = e^b, E = e^e``) by L-BFGS from a grid of starting points, keep the best.
* ``compute_optimal(law, flops)``: the ``(N, D)`` that minimise ``L`` with ``6 N D = C``:
  ``N_opt = G (C / 6)^(beta / (alpha + beta))``, ``D_opt = G^-1 (C / 6)^(alpha / (alpha + beta))``,
  ``G = (alpha A / (beta B))^(1 / (alpha + beta))`` (Hoffmann et al. 2022, eq. 4).
* ``CHINCHILLA``: the paper's fit (eq. 10): ``E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28``. Its
  optimum for Gopher's 5.76e23 FLOPs is about 32B parameters on 3T tokens (~90 tokens per parameter), not the
  70B / 1.4T (20 per parameter) of the paper's approaches 1 and 2 that Chinchilla was trained at;
  ``EPOCH_REFIT`` (Besiroglu et al. 2024, *Chinchilla scaling: a replication attempt*) refits the same form
  to the paper's data and lands on ~20 tokens per parameter (``CHINCHILLA_TOKENS_PER_PARAM``).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Real
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bigtrain_lab.estimate.formulas import training_flops

__all__ = ["CHINCHILLA", "CHINCHILLA_TOKENS_PER_PARAM", "EPOCH_REFIT", "GridPoint", "ScalingFit", "ScalingLaw",
           "compute_optimal", "fit_scaling_law", "load_grid", "predict_loss", "tokens_per_parameter", "train_grid",
           "train_point"]

#: Chinchilla's rule of thumb: 70B parameters on 1.4T tokens (approaches 1 and 2 of Hoffmann et al. 2022).
CHINCHILLA_TOKENS_PER_PARAM = 20.0


@dataclass(frozen=True)
class ScalingLaw:
    """``L(N, D) = E + A / N^alpha + B / D^beta`` (loss in nats per token)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"ScalingLaw.{name} must be a positive finite number, got {value!r}")

    def loss(self, n_params: Any, n_tokens: Any) -> Any:
        """``E + A / N^alpha + B / D^beta`` (numbers or numpy arrays)."""
        return predict_loss(self, n_params, n_tokens)

    def __str__(self) -> str:
        return (f"L(N, D) = {self.E:.3g} + {self.A:.4g} / N^{self.alpha:.3f} + {self.B:.4g} / D^{self.beta:.3f}")


#: Hoffmann et al. 2022 (*Training compute-optimal large language models*), eq. 10.
CHINCHILLA = ScalingLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
#: Besiroglu et al. 2024 (*Chinchilla scaling: a replication attempt*): the same form refitted to the paper's data.
EPOCH_REFIT = ScalingLaw(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)


@dataclass(frozen=True)
class GridPoint:
    """One trained run: ``n_params`` (TinyGPT.num_parameters()), ``n_tokens`` trained on, validation ``loss``
    (nats per token); the shape ``(n_layer, n_head, n_embd)``, the steps and the wall seconds where known."""

    n_params: int
    n_tokens: int
    loss: float
    shape: tuple[int, int, int] | None = None
    steps: int | None = None
    seconds: float | None = None

    @property
    def flops(self) -> float:
        """``6 N D`` (``formulas.training_flops``)."""
        return training_flops(self.n_params, self.n_tokens)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["shape"] = list(self.shape) if self.shape is not None else None
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> GridPoint:
        shape = raw.get("shape")
        return cls(n_params=int(raw["n_params"]), n_tokens=int(raw["n_tokens"]), loss=float(raw["loss"]),
                   shape=tuple(shape) if shape is not None else None, steps=raw.get("steps"),
                   seconds=raw.get("seconds"))


@dataclass(frozen=True)
class ScalingFit:
    """What ``fit_scaling_law`` found: the ``law``, each point's ``residuals`` (``log L_pred - log L_obs``),
    the Huber ``objective`` at the optimum and how many starting points reached it (within 1e-9)."""

    law: ScalingLaw
    residuals: np.ndarray = field(repr=False)
    objective: float
    n_starts: int
    n_agree: int

    @property
    def rms_residual(self) -> float:
        """Root-mean-square of the log residuals (0.01 ~ 1 % relative error in the loss)."""
        return float(np.sqrt(np.mean(self.residuals ** 2)))

    @property
    def max_abs_residual(self) -> float:
        return float(np.max(np.abs(self.residuals)))


# ---- the law ------------------------------------------------------------------------------------------------

def _check_law(law: object) -> ScalingLaw:
    if not isinstance(law, ScalingLaw):
        raise TypeError(f"law must be a ScalingLaw (e.g. CHINCHILLA or fit_scaling_law(points).law), got "
                        f"{type(law).__name__}")
    return law


def _positive_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return arr


def predict_loss(law: ScalingLaw, n_params: Any, n_tokens: Any) -> Any:
    """``law.E + law.A / N^alpha + law.B / D^beta``; a float for scalars, an array for arrays."""
    law = _check_law(law)
    n = _positive_array("n_params", n_params)
    d = _positive_array("n_tokens", n_tokens)
    out = law.E + law.A / n ** law.alpha + law.B / d ** law.beta
    return float(out) if np.ndim(out) == 0 else out


def compute_optimal(law: ScalingLaw, flops: float) -> tuple[float, float]:
    """``(N_opt, D_opt)`` minimising ``law`` subject to ``6 N D = flops``.

    ``N_opt = G (C/6)^(beta/(alpha+beta))``, ``G = (alpha A / (beta B))^(1/(alpha+beta))``, ``D_opt = C / (6 N_opt)``.
    """
    law = _check_law(law)
    if isinstance(flops, bool) or not isinstance(flops, Real) or not math.isfinite(flops) or flops <= 0:
        raise ValueError(f"flops must be a positive finite number, got {flops!r}")
    a, b = law.alpha, law.beta
    g = (a * law.A / (b * law.B)) ** (1.0 / (a + b))
    n_opt = g * (flops / 6.0) ** (b / (a + b))
    return n_opt, flops / (6.0 * n_opt)


def tokens_per_parameter(law: ScalingLaw, flops: float) -> float:
    """``D_opt / N_opt`` at ``flops``: constant only when ``alpha == beta``."""
    n_opt, d_opt = compute_optimal(law, flops)
    return d_opt / n_opt


# ---- the fit ------------------------------------------------------------------------------------------------

#: starting points of the L-BFGS runs, 243 of them (Hoffmann et al. 2022 use a finer grid over wider ranges:
#: alpha, beta in 0..2, e in -1..1, a, b in 0..25)
DEFAULT_INIT_GRID: dict[str, tuple[float, ...]] = {
    "alpha": (0.2, 0.6, 1.2), "beta": (0.2, 0.6, 1.2), "e": (-1.0, 0.0, 1.0), "a": (0.0, 5.0, 10.0),
    "b": (0.0, 5.0, 10.0)}


def _objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray,
               delta: float) -> tuple[float, np.ndarray]:
    a, b, e, alpha, beta = theta
    u = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
    top = u.max(axis=0)
    w = np.exp(u - top)
    total = w.sum(axis=0)
    r = top + np.log(total) - log_l
    w /= total
    small = np.abs(r) <= delta
    huber = np.where(small, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta))
    dr = np.where(small, r, delta * np.sign(r))
    grad = np.array([(dr * w[0]).sum(), (dr * w[1]).sum(), (dr * w[2]).sum(),
                     -(dr * w[0] * log_n).sum(), -(dr * w[1] * log_d).sum()])
    return float(huber.sum()), grad


def _points_arrays(points: Iterable[GridPoint]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    points = list(points)
    if not all(isinstance(p, GridPoint) for p in points):
        raise TypeError("points must be GridPoint objects")
    if len(points) < 5:
        raise ValueError(f"fitting 5 parameters needs at least 5 points, got {len(points)}")
    n = _positive_array("n_params", [p.n_params for p in points])
    d = _positive_array("n_tokens", [p.n_tokens for p in points])
    loss = _positive_array("loss", [p.loss for p in points])
    if len(np.unique(n)) < 2 or len(np.unique(d)) < 2:
        raise ValueError("the points need at least two model sizes and two token counts")
    return np.log(n), np.log(d), np.log(loss)


def fit_scaling_law(points: Sequence[GridPoint], *, delta: float = 1e-3,
                    init_grid: Mapping[str, Sequence[float]] | None = None) -> ScalingFit:
    """Fit ``L(N, D) = E + A / N^alpha + B / D^beta`` to ``points`` (Hoffmann et al. 2022, approach 3).

    Minimises ``sum Huber_delta(LSE(a - alpha log N, b - beta log D, e) - log L)`` with L-BFGS-B
    (``alpha, beta`` kept in [0, 4]) from every start of ``init_grid`` (keys ``a, b, e, alpha, beta``; default
    ``DEFAULT_INIT_GRID``) and keeps the best.
    """
    from scipy.optimize import minimize

    log_n, log_d, log_l = _points_arrays(points)
    if isinstance(delta, bool) or not isinstance(delta, Real) or not delta > 0:
        raise ValueError(f"delta must be a positive number, got {delta!r}")
    grid = dict(DEFAULT_INIT_GRID if init_grid is None else init_grid)
    if set(grid) != set(DEFAULT_INIT_GRID) or any(len(v) == 0 for v in grid.values()):
        raise ValueError(f"init_grid needs non-empty values for exactly {sorted(DEFAULT_INIT_GRID)}")
    bounds = [(None, None), (None, None), (None, None), (0.0, 4.0), (0.0, 4.0)]
    results = []
    for a, b, e, alpha, beta in itertools.product(grid["a"], grid["b"], grid["e"], grid["alpha"], grid["beta"]):
        res = minimize(_objective, np.array([a, b, e, alpha, beta], dtype=float), jac=True, method="L-BFGS-B",
                       args=(log_n, log_d, log_l, float(delta)), bounds=bounds)
        if np.isfinite(res.fun):
            results.append((float(res.fun), res.x))
    if not results:
        raise RuntimeError("no L-BFGS start converged to a finite objective")
    best, theta = min(results, key=lambda r: r[0])
    a, b, e, alpha, beta = (float(v) for v in theta)
    # a zero exponent would make the term a constant folded into E: keep the law valid (positive)
    law = ScalingLaw(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=max(alpha, 1e-9), beta=max(beta, 1e-9))
    residuals = np.log(law.loss(np.exp(log_n), np.exp(log_d))) - log_l
    n_agree = sum(1 for f, _ in results if f <= best + 1e-9)
    return ScalingFit(law=law, residuals=residuals, objective=best, n_starts=len(results), n_agree=n_agree)


# ---- the grid -----------------------------------------------------------------------------------------------

def _shape(size: Any) -> tuple[int, int, int]:
    if isinstance(size, Mapping):
        try:
            size = (size["n_layer"], size["n_head"], size["n_embd"])
        except KeyError as exc:
            raise ValueError(f"a size dict needs n_layer, n_head and n_embd, got {dict(size)!r}") from exc
    if (not isinstance(size, Sequence) or len(size) != 3
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size)):
        raise ValueError(f"a size is (n_layer, n_head, n_embd), three positive integers, got {size!r}")
    if size[2] % size[1]:
        raise ValueError(f"n_embd ({size[2]}) must be divisible by n_head ({size[1]}) in size {size!r}")
    return tuple(size)


def _steps(n_tokens: Any, tokens_per_step: int) -> int:
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, Real) or not n_tokens >= tokens_per_step:
        raise ValueError(f"a token budget must be a number >= one step's {tokens_per_step} tokens, got {n_tokens!r}")
    return int(round(n_tokens / tokens_per_step))


def train_point(size: Any, n_tokens: int, *, corpus: Any = None, block_size: int = 64, batch_size: int = 16,
                lr: float = 3e-3, seed: int = 0, eval_batches: int = 16, progress: bool | str = False) -> GridPoint:
    """Train one TinyGPT of ``size = (n_layer, n_head, n_embd)`` on ``n_tokens`` tokens (rounded to whole steps
    of ``batch_size * block_size``), warmup + cosine to the end of this budget; return its ``GridPoint``.

    Same ``seed`` -> same initial weights, same batches, same loss (on the same machine and torch).
    """
    from bigtrain_lab.data import load_text_corpus
    from bigtrain_lab.llm.training import train_lm
    from bigtrain_lab.models import GPTConfig, TinyGPT
    from bigtrain_lab.reproducibility import seed_everything
    from bigtrain_lab.train import corpus_batches

    shape = _shape(size)
    steps = _steps(n_tokens, batch_size * block_size)
    corpus = load_text_corpus() if corpus is None else corpus
    seed_everything(seed)
    model = TinyGPT(GPTConfig(vocab_size=corpus.vocab_size, block_size=block_size, n_layer=shape[0],
                              n_head=shape[1], n_embd=shape[2]))
    batches = corpus_batches(corpus, block_size, batch_size, seed=seed)
    start = time.perf_counter()
    run = train_lm(model, batches, steps, lr=lr, eval_batches=eval_batches, progress=progress)
    return GridPoint(n_params=model.num_parameters(), n_tokens=run.tokens, loss=float(run.val_loss), shape=shape,
                     steps=steps, seconds=round(time.perf_counter() - start, 2))


def train_grid(sizes: Sequence[Any], token_budgets: Sequence[int], *, corpus: Any = None, block_size: int = 64,
               batch_size: int = 16, lr: float = 3e-3, seed: int = 0, eval_batches: int = 16,
               progress: bool = True) -> list[GridPoint]:
    """One ``train_point`` per (size, token budget), all with the same seed, batches and validation batches.

    ``sizes``: ``(n_layer, n_head, n_embd)`` tuples (or dicts); ``token_budgets``: tokens per run. Each run's
    learning-rate schedule ends at its own budget. Returns the points in (size, budget) order.
    """
    from bigtrain_lab.data import load_text_corpus

    shapes = [_shape(s) for s in sizes]
    if not shapes or not token_budgets:
        raise ValueError("sizes and token_budgets must not be empty")
    for n_tokens in token_budgets:
        _steps(n_tokens, batch_size * block_size)
    corpus = load_text_corpus() if corpus is None else corpus
    jobs = list(itertools.product(shapes, token_budgets))
    # the bar advances by steps, so that its time estimate is fair to runs of different lengths
    total = sum(_steps(t, batch_size * block_size) for _, t in jobs)
    points = []
    with tqdm(total=total, desc="scaling grid (steps)", disable=not progress) as bar:
        for shape, n_tokens in jobs:
            bar.set_postfix(shape=str(shape), tokens=f"{n_tokens:.3g}")
            with torch.random.fork_rng():
                point = train_point(shape, n_tokens, corpus=corpus, block_size=block_size, batch_size=batch_size,
                                    lr=lr, seed=seed, eval_batches=eval_batches)
            points.append(point)
            bar.update(point.steps)
    return points


def load_grid(path: str | os.PathLike) -> tuple[list[GridPoint], dict[str, Any]]:
    """The points a grid bench saved at ``path`` (``{"points": [...], "conditions": {...}, ...}``) and the whole
    document. A loss depends on the seed and the code, not on the machine's load, so the points are read even
    from a run marked loaded; their wall seconds are then dropped (``None``): only timings are load-sensitive."""
    from bigtrain_lab.bench_results import is_loaded

    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    if not isinstance(document, dict) or not isinstance(document.get("points"), list):
        raise ValueError(f"{os.fspath(path)} holds no grid points: run `python bench/scaling_grid.py` to make it")
    conditions = document.get("conditions")
    loaded = not isinstance(conditions, dict) or is_loaded(conditions)
    points = [GridPoint.from_json(raw) for raw in document["points"]]
    if loaded:
        points = [GridPoint(p.n_params, p.n_tokens, p.loss, p.shape, p.steps, None) for p in points]
    return points, document
