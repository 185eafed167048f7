"""Search strategies compared at a fixed budget on one real task (lesson 11, hyperparameter search).

The task (:class:`DigitsTask`): an MLP 64-width-10 with dropout, trained with SGD (momentum 0.9, batch 64,
constant learning rate) on scikit-learn's digits, scored by validation accuracy after each epoch; four
hyperparameters (:data:`SPACE`): learning rate and weight decay on log scales, width (log-int), dropout.
A trial trains ``max_epochs`` epochs (about 30 ms on one CPU thread), so whole searches repeat over seeds.

The strategies (:data:`STRATEGIES`) are optuna's: ``grid`` (GridSampler over the largest full grid that fits
the budget), ``random`` (RandomSampler), ``tpe`` (TPESampler, Bayesian optimisation), ``halving``
(RandomSampler + SuccessiveHalvingPruner) and ``hyperband`` (TPESampler + HyperbandPruner). Every run gets the
same compute: ``n_trials * max_epochs`` epochs; a pruned trial costs the epochs it trained.
:func:`successive_halving_search` is the from-scratch successive halving (rungs from
:func:`bigtrain_lab.hpo.successive_halving`) the lesson checks against optuna's pruner.

:func:`race` runs strategies over seeds and returns JSON-ready best-so-far curves; :func:`race_figure_data` turns
them into what the HPO race widget draws (mean and +-1 std band per strategy up to a budget).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bigtrain_lab.hpo.budgets import Rung, sample_log_uniform

__all__ = ["MLP", "SGD", "SPACE", "STRATEGIES", "DigitsTask", "Param", "TrialRecord", "best_so_far",
           "distinct_completed", "grid_values", "low_effective_dimension", "param_importances", "race",
           "race_figure_data", "race_records", "run_strategy", "selection_optimism", "share_in_range",
           "successive_halving_search", "suggest"]


@dataclass(frozen=True)
class Param:
    """One hyperparameter: a range, on a log scale or not, integer or float."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False


#: The search space of the lesson's task.
SPACE: tuple[Param, ...] = (Param("lr", 1e-5, 1.0, log=True), Param("weight_decay", 1e-6, 1e-1, log=True),
                            Param("width", 16, 256, log=True, integer=True), Param("dropout", 0.0, 0.5))

#: strategy -> (sampler, pruner) it runs with (see :func:`run_strategy`).
STRATEGIES: dict[str, str] = {
    "grid": "GridSampler over the largest full grid that fits the budget",
    "random": "RandomSampler",
    "tpe": "TPESampler (Bayesian optimisation, tree-structured Parzen estimator)",
    "halving": "RandomSampler + SuccessiveHalvingPruner (asynchronous successive halving)",
    "hyperband": "TPESampler + HyperbandPruner",
}


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a search: its parameters, the validation and test accuracy after its last epoch, the
    epochs it trained, whether it was stopped early (``pruned``: its scores are of a shorter training and do
    not compete), and the epochs the whole search had spent when it ended (``spent``)."""

    params: dict[str, float]
    val: float
    test: float
    epochs: int
    pruned: bool
    spent: int


# ---- the task ----------------------------------------------------------------------------------------------


class DigitsTask:
    """Digits (1797 images, 8x8) split 60/20/20 into train / validation / test (``data_seed``), standardised
    with the training statistics; :meth:`epochs` trains one configuration and yields its scores per epoch.

    The MLP is written in NumPy (float32, manual backward pass): the same computation as
    ``nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Dropout(p), nn.Linear(width, 10))`` with
    ``torch.optim.SGD(lr, momentum=0.9, weight_decay)`` and cross-entropy (``tests/test_hpo_search.py`` checks
    the updates against torch), several times faster than torch's autograd at this size, where every step is
    mostly overhead: a trial of 9 epochs takes a few tens of milliseconds, so whole searches repeat over seeds."""

    def __init__(self, *, max_epochs: int = 9, batch_size: int = 128, data_seed: int = 0) -> None:
        from bigtrain_lab.data import load_dataset

        ds = load_dataset("digits", seed=data_seed, val_size=0.2, test_size=0.2)
        mean, std = ds.X_train.mean(0), ds.X_train.std(0) + 1e-6

        def t(x: np.ndarray) -> np.ndarray:
            return ((x - mean) / std).astype(np.float32)

        self.X_train, self.X_val, self.X_test = t(ds.X_train), t(ds.X_val), t(ds.X_test)
        self.y_train, self.y_val, self.y_test = (np.asarray(y, dtype=np.int64)
                                                 for y in (ds.y_train, ds.y_val, ds.y_test))
        self.max_epochs, self.batch_size = int(max_epochs), int(batch_size)

    def epochs(self, params: Mapping[str, float], seed: int) -> Iterator[tuple[float, float]]:
        """Train ``params`` (lr, weight_decay, width, dropout) from an init seeded by ``seed``; after each
        epoch (up to ``max_epochs``) yield (validation accuracy, test accuracy). A diverged run scores as its
        NaN logits predict (about chance)."""
        rng = np.random.default_rng(seed)
        net = MLP.init(self.X_train.shape[1], int(params["width"]), 10, rng)
        sgd = SGD(net.params(), lr=float(params["lr"]), momentum=0.9, weight_decay=float(params["weight_decay"]))
        n, p = len(self.y_train), float(params["dropout"])
        for _ in range(self.max_epochs):
            order = rng.permutation(n)
            for start in range(0, n, self.batch_size):
                idx = order[start:start + self.batch_size]
                sgd.step(net.grads(self.X_train[idx], self.y_train[idx], dropout=p, rng=rng))
            yield (float(np.mean(net.predict(self.X_val) == self.y_val)),
                   float(np.mean(net.predict(self.X_test) == self.y_test)))


@dataclass
class MLP:
    """Linear - ReLU - Dropout - Linear in NumPy (weights ``(out, in)`` as in ``nn.Linear``)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    @classmethod
    def init(cls, n_in: int, width: int, n_out: int, rng: np.random.Generator) -> MLP:
        """``nn.Linear``'s default init: weights and biases uniform in +-1/sqrt(fan_in)."""
        def u(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
            bound = 1 / math.sqrt(fan_in)
            return rng.uniform(-bound, bound, shape).astype(np.float32)

        return cls(u((width, n_in), n_in), u((width,), n_in), u((n_out, width), width), u((n_out,), width))

    def params(self) -> list[np.ndarray]:
        return [self.w1, self.b1, self.w2, self.b2]

    def logits(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.maximum(x @ self.w1.T + self.b1, 0) @ self.w2.T + self.b2

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(1)

    def grads(self, x: np.ndarray, y: np.ndarray, *, dropout: float = 0.0,
              rng: np.random.Generator | None = None) -> list[np.ndarray]:
        """Gradients of the mean cross-entropy on (x, y), with inverted dropout (kept units scaled by
        1/(1-p), as ``nn.Dropout`` in training mode), in the order of :meth:`params`."""
        with np.errstate(all="ignore"):
            h = x @ self.w1.T + self.b1
            a = np.maximum(h, 0)
            if dropout > 0:
                mask = (rng.random(a.shape, dtype=np.float32) >= dropout) / np.float32(1 - dropout)
                a = a * mask
            z = a @ self.w2.T + self.b2
            z = z - z.max(1, keepdims=True)
            prob = np.exp(z)
            prob /= prob.sum(1, keepdims=True)
            prob[np.arange(len(y)), y] -= 1
            dz = prob / np.float32(len(y))
            da = dz @ self.w2
            if dropout > 0:
                da *= mask
            dh = da * (h > 0)
            return [dh.T @ x, dh.sum(0), dz.T @ a, dz.sum(0)]


class SGD:
    """``torch.optim.SGD``'s update (dampening 0, not Nesterov): ``g += weight_decay * p``;
    ``buf = g`` at the first step, then ``buf = momentum * buf + g``; ``p -= lr * buf`` (in place)."""

    def __init__(self, params: list[np.ndarray], *, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        self.params, self.lr, self.momentum, self.weight_decay = params, lr, momentum, weight_decay
        self.bufs: list[np.ndarray | None] = [None] * len(params)

    def step(self, grads: list[np.ndarray]) -> None:
        with np.errstate(all="ignore"):
            for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
                if self.weight_decay:
                    g = g + np.float32(self.weight_decay) * p
                if self.momentum:
                    if self.bufs[i] is None:
                        self.bufs[i] = g.copy()
                    else:
                        self.bufs[i] *= np.float32(self.momentum)
                        self.bufs[i] += g
                    g = self.bufs[i]
                p -= np.float32(self.lr) * g


# ---- sampling --------------------------------------------------------------------------------------------


def suggest(trial: Any, space: Sequence[Param] = SPACE) -> dict[str, float]:
    """The parameters of an optuna ``trial`` drawn from ``space`` (``suggest_float`` / ``suggest_int`` with
    ``log=`` as each :class:`Param` says)."""
    out: dict[str, float] = {}
    for p in space:
        if p.integer:
            out[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
        else:
            out[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
    return out


def grid_values(param: Param, k: int) -> list[float]:
    """``k`` grid values for ``param``: the centres of ``k`` equal bins of its range (on a log scale when
    ``param.log``), the ends left out (they are rarely good), rounded for an integer.

    >>> grid_values(Param("lr", 1e-4, 1.0, log=True), 2)
    [0.001, 0.1]
    >>> grid_values(Param("dropout", 0.0, 0.6), 3)
    [0.1, 0.3, 0.5]
    """
    lo, hi = (math.log10(param.low), math.log10(param.high)) if param.log else (param.low, param.high)
    centres = [lo + (hi - lo) * (i + 0.5) / k for i in range(k)]
    values = [10 ** c if param.log else c for c in centres]
    if param.integer:
        return sorted({int(round(v)) for v in values})
    return [float(f"{v:.6g}") for v in values]


def _grid_space(space: Sequence[Param], n_trials: int) -> dict[str, list[float]]:
    k = max(1, int(math.floor(n_trials ** (1 / len(space)) + 1e-9)))
    return {p.name: grid_values(p, k) for p in space}


def share_in_range(samples: np.ndarray, low: float, high: float) -> float:
    """The share of ``samples`` in ``[low, high]``.

    >>> share_in_range(np.array([1e-4, 1e-2, 0.05, 0.5]), 1e-2, 1e-1)
    0.5
    """
    s = np.asarray(samples, dtype=float)
    return float(np.mean((s >= low) & (s <= high))) if s.size else float("nan")


# ---- one search ------------------------------------------------------------------------------------------


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def run_strategy(task: DigitsTask, strategy: str, *, n_trials: int, seed: int,
                 space: Sequence[Param] = SPACE, eta: int = 3) -> list[TrialRecord]:
    """One search with ``strategy`` (a key of :data:`STRATEGIES`), seeded by ``seed``, spending at most
    ``n_trials * task.max_epochs`` epochs. ``grid`` runs the largest full grid with at most ``n_trials``
    points, in the order GridSampler(seed) draws them; ``halving`` / ``hyperband`` report the validation
    accuracy every epoch (step = epoch, ``min_resource=1``, ``reduction_factor=eta``; a trial at its last
    epoch is not asked, being trained in full) and start trials until the epochs are spent (the last one
    stops, pruned, when they run out)."""
    optuna = _optuna()
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    budget = n_trials * task.max_epochs
    pruner: Any = optuna.pruners.NopPruner()
    if strategy == "grid":
        sampler: Any = optuna.samplers.GridSampler(_grid_space(space, n_trials), seed=seed)
    elif strategy in ("random", "halving"):
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    if strategy == "halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=eta)
    elif strategy == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=task.max_epochs, reduction_factor=eta)
    # a fixed name: HyperbandPruner assigns trials to brackets by crc32(study_name + trial number), and the
    # default name is a fresh UUID, which would make a seeded Hyperband run unrepeatable
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner,
                                study_name=f"{strategy}-seed{seed}")
    records: list[TrialRecord] = []
    spent = 0

    def objective(trial: Any) -> float:
        nonlocal spent
        params = suggest(trial, space)
        val = test = float("nan")
        epochs = 0
        for epochs, (val, test) in enumerate(task.epochs(params, seed * 100_003 + trial.number), start=1):
            spent += 1
            trial.report(val, epochs)
            if epochs == task.max_epochs:  # trained in full: nothing left to save by pruning it
                break
            if spent >= budget or trial.should_prune():
                records.append(TrialRecord(params, val, test, epochs, True, spent))
                raise optuna.TrialPruned()
        records.append(TrialRecord(params, val, test, epochs, False, spent))
        return val

    max_trials = len(list(_product_size(_grid_space(space, n_trials)))) if strategy == "grid" else None
    while spent < budget and (max_trials is None or len(records) < max_trials):
        study.optimize(objective, n_trials=1)
    return records


def _product_size(grid: Mapping[str, list[float]]) -> range:
    return range(math.prod(len(v) for v in grid.values()))


def successive_halving_search(task: DigitsTask, rungs: Sequence[Rung], *, seed: int,
                              space: Sequence[Param] = SPACE) -> tuple[list[TrialRecord], list[dict[str, Any]]]:
    """Successive halving from scratch: draw ``rungs[0].n_configs`` random configurations (log-uniform where
    the space says so, :func:`bigtrain_lab.hpo.sample_log_uniform`), train each to ``rungs[0].budget`` epochs,
    keep the best ``rungs[1].n_configs`` by validation accuracy and train them on (resumed, not restarted) to
    ``rungs[1].budget``, and so on. Returns the records (the survivors of the last rung are not pruned) and a
    table per rung: configurations, epochs each, epochs spent by the rung, best validation accuracy."""
    rng = np.random.default_rng(seed)
    n0 = rungs[0].n_configs
    columns = {}
    for p in space:
        x = sample_log_uniform(p.low, p.high, n0, rng) if p.log else rng.uniform(p.low, p.high, n0)
        columns[p.name] = np.round(x).astype(int).tolist() if p.integer else x.tolist()
    configs = [{name: columns[name][i] for name in columns} for i in range(n0)]
    runs = [task.epochs(c, seed * 100_003 + i) for i, c in enumerate(configs)]
    trained = [0] * n0
    scores: list[tuple[float, float]] = [(float("nan"), float("nan"))] * n0
    alive = list(range(n0))
    spent = 0
    table, records = [], []
    for k, rung in enumerate(rungs):
        alive = sorted(alive, key=lambda i: -scores[i][0])[:rung.n_configs] if k else alive
        rung_spent = 0
        for i in alive:
            while trained[i] < int(rung.budget):
                scores[i] = next(runs[i])
                trained[i] += 1
                rung_spent += 1
        spent += rung_spent
        last = k == len(rungs) - 1
        ranked = sorted(alive, key=lambda i: -scores[i][0])
        keep = set(ranked[:rungs[k + 1].n_configs]) if not last else set(alive)
        for i in ranked:
            if last or i not in keep:
                records.append(TrialRecord(configs[i], scores[i][0], scores[i][1], trained[i], not last, spent))
        table.append({"rung": k, "configs": len(alive), "epochs_each": int(rung.budget), "epochs_spent": rung_spent,
                      "best_val": max(scores[i][0] for i in alive)})
    return records, table


# ---- best-so-far, races ------------------------------------------------------------------------------------


def best_so_far(records: Sequence[TrialRecord], budgets: Sequence[float]) -> list[float]:
    """For each budget (epochs), the best validation accuracy among the trials that had finished all their
    epochs (not pruned) once the search had spent at most that many epochs; NaN before the first one.

    >>> r = [TrialRecord({}, 0.5, 0.5, 2, False, 2), TrialRecord({}, 0.9, 0.8, 1, True, 3),
    ...      TrialRecord({}, 0.7, 0.6, 2, False, 5)]
    >>> best_so_far(r, [1, 2, 4, 5, 9])
    [nan, 0.5, 0.5, 0.7, 0.7]
    """
    out = []
    for b in budgets:
        done = [r.val for r in records if not r.pruned and r.spent <= b]
        out.append(max(done) if done else float("nan"))
    return out


def _selected(records: Sequence[TrialRecord]) -> TrialRecord:
    done = [r for r in records if not r.pruned]
    return max(done, key=lambda r: r.val)


def race(task: DigitsTask, strategies: Sequence[str], *, n_trials: int, seeds: Sequence[int],
         progress: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Every strategy once per seed at ``n_trials`` trials' worth of epochs. JSON-ready: ``budgets`` (in
    full-trial equivalents 1..n_trials, i.e. ``max_epochs`` epochs each) and per strategy the best-so-far
    ``curves`` (one list per seed), the ``final`` best validation accuracy per seed, the selected trial's
    ``test`` accuracy, the trials started and the ``records`` (as dicts) of every run.
    ``progress``: wraps the list of (strategy, seed) runs (e.g. ``tqdm``)."""
    jobs = [(s, seed) for s in strategies for seed in seeds]
    out: dict[str, Any] = {"n_trials": int(n_trials), "max_epochs": task.max_epochs, "seeds": [int(s) for s in seeds],
                           "budgets": list(range(1, n_trials + 1)), "strategies": {}}
    epochs_at = [b * task.max_epochs for b in out["budgets"]]
    for strategy, seed in (progress(jobs) if progress else jobs):
        records = run_strategy(task, strategy, n_trials=n_trials, seed=seed)
        entry = out["strategies"].setdefault(strategy, {"curves": [], "final": [], "test": [], "trials": [],
                                                        "records": []})
        curve = best_so_far(records, epochs_at)
        best = _selected(records)
        entry["curves"].append(curve)
        entry["final"].append(curve[-1])
        entry["test"].append(best.test)
        entry["trials"].append(len(records))
        entry["records"].append([asdict(r) for r in records])
    for entry in out["strategies"].values():
        entry["mean"], entry["std"] = float(np.mean(entry["final"])), float(np.std(entry["final"]))
    return out


def race_figure_data(results: Mapping[str, Any], strategies: Sequence[str], budget: int) -> dict[str, Any]:
    """What the race widget draws: for each of ``strategies`` (in ``results["strategies"]``, from :func:`race`
    or ``bench/results/hpo.json``), the mean best-so-far and a +-1 std band over seeds at budgets 1..``budget``
    (full-trial equivalents; None where no trial had finished yet), and the best at ``budget``: mean, std and the per-seed values.
    ``ValueError`` for an unknown strategy or a budget outside 1..n_trials."""
    known = results["strategies"]
    unknown = [s for s in strategies if s not in known]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; recorded: {sorted(known)}")
    n = len(results["budgets"])
    if not 1 <= int(budget) <= n:
        raise ValueError(f"budget must be in 1..{n}, got {budget}")
    x = list(results["budgets"][:int(budget)])
    series, at_budget = {}, {}
    for s in strategies:
        curves = np.array(known[s]["curves"], dtype=float)[:, :int(budget)]
        with np.errstate(all="ignore"):
            filled = np.where(np.isnan(curves), np.nan, curves)
            ok = ~np.isnan(filled).all(axis=0)
            mean = np.full(len(x), np.nan)
            std = np.full(len(x), np.nan)
            mean[ok] = np.nanmean(filled[:, ok], axis=0)
            std[ok] = np.nanstd(filled[:, ok], axis=0)
        series[s] = {"mean": _none_for_nan(mean), "low": _none_for_nan(mean - std), "high": _none_for_nan(mean + std)}
        last = curves[:, -1]
        at_budget[s] = {"mean": float(np.nanmean(last)), "std": float(np.nanstd(last)), "per_seed": last.tolist()}
    return {"x": x, "series": series, "at_budget": at_budget, "seeds": len(results["seeds"]),
            "max_epochs": results["max_epochs"]}


def _none_for_nan(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values]


# ---- what the lesson measures besides the race -----------------------------------------------------------


def low_effective_dimension(n_draws: int, *, dims: int = 2, n_trials: int = 9, width: float = 0.08,
                            seed: int = 0) -> dict[str, Any]:
    """Bergstra & Bengio (2012) on a synthetic objective where only the first of ``dims`` parameters in [0, 1]
    matters: ``f(x) = exp(-((x0 - c) / width)**2)`` with its peak ``c`` drawn uniformly per draw. Over
    ``n_draws`` draws: the best of a full grid (``n_trials ** (1/dims)`` bin centres per axis) vs the best of
    ``n_trials`` uniform random points; and how many distinct values of ``x0`` each tried."""
    rng = np.random.default_rng(seed)
    k = int(round(n_trials ** (1 / dims)))
    if k ** dims != n_trials:
        raise ValueError(f"n_trials must be a perfect {dims}-th power for a full grid, got {n_trials}")
    axis = (np.arange(k) + 0.5) / k
    grid_x0 = np.repeat(axis, k ** (dims - 1))  # the grid's first coordinates (each repeated)
    grid_best, random_best = [], []
    for _ in range(n_draws):
        c = rng.uniform()
        grid_best.append(float(np.exp(-((grid_x0 - c) / width) ** 2).max()))
        random_x0 = rng.uniform(size=(n_trials, dims))[:, 0]
        random_best.append(float(np.exp(-((random_x0 - c) / width) ** 2).max()))
    return {"grid_best": grid_best, "random_best": random_best, "grid_mean": float(np.mean(grid_best)),
            "random_mean": float(np.mean(random_best)), "grid_distinct_x0": len(set(grid_x0.tolist())),
            "random_distinct_x0": n_trials, "random_wins": float(np.mean(np.array(random_best) > np.array(grid_best)))}


def race_records(results: Mapping[str, Any], strategies: Sequence[str] | None = None) -> list[TrialRecord]:
    """Every trial of a ``race`` result (of ``strategies``, default all), as ``TrialRecord`` s, run by run."""
    entries = results["strategies"]
    names = entries if strategies is None else strategies
    return [TrialRecord(**r) for name in names for run in entries[name]["records"] for r in run]


def distinct_completed(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The completed (not pruned) trials, each configuration once (the first record kept): a pool for fitting
    importances. Duplicates are common: TPE's startup trials are the random sampler's with the same seed, and
    a duplicated point weighs twice in the forest."""
    seen: set[tuple[tuple[str, float], ...]] = set()
    out = []
    for r in records:
        key = tuple(sorted(r.params.items()))
        if not r.pruned and key not in seen:
            seen.add(key)
            out.append(r)
    return out


def param_importances(records: Sequence[TrialRecord], *, space: Sequence[Param] = SPACE,
                      seed: int = 0) -> dict[str, float]:
    """fANOVA importances (optuna.importance.FanovaImportanceEvaluator, seeded) of the completed trials'
    validation accuracy: the share of its variance each parameter explains, largest first."""
    optuna = _optuna()
    dists = {p.name: (optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log) if p.integer
                      else optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)) for p in space}
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(params=dict(r.params), distributions=dists, value=r.val)
                      for r in records if not r.pruned])
    return dict(optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)))


def selection_optimism(records: Sequence[TrialRecord], sizes: Sequence[int], *, draws: int = 500,
                       seed: int = 0) -> dict[int, dict[str, float]]:
    """The optimism of picking the best of ``n`` trials by validation accuracy: over ``draws`` random subsets
    of size ``n`` of the completed ``records``, the mean best validation accuracy, the mean test accuracy of
    that same trial, and their difference (``optimism``), for each ``n`` in ``sizes``."""
    done = [r for r in records if not r.pruned]
    val = np.array([r.val for r in done])
    test = np.array([r.test for r in done])
    rng = np.random.default_rng(seed)
    out = {}
    for n in sizes:
        if not 1 <= n <= len(done):
            raise ValueError(f"size {n} outside 1..{len(done)} (completed trials)")
        picks = [rng.choice(len(done), size=n, replace=False) for _ in range(draws)]
        best = np.array([p[np.argmax(val[p])] for p in picks])
        out[int(n)] = {"val": float(val[best].mean()), "test": float(test[best].mean()),
                       "optimism": float((val[best] - test[best]).mean())}
    return out
