"""bigtrain_lab.hpo.search: the NumPy MLP against torch, the strategies' budgets (optuna's samplers and pruners),
from-scratch successive halving, best-so-far curves, the race's figure data and the lesson's measurements."""

import math

import numpy as np
import pytest
import torch

from bigtrain_lab.hpo import (
    MLP,
    SGD,
    SPACE,
    STRATEGIES,
    DigitsTask,
    Param,
    TrialRecord,
    best_so_far,
    distinct_completed,
    grid_values,
    low_effective_dimension,
    param_importances,
    race,
    race_figure_data,
    race_records,
    run_strategy,
    selection_optimism,
    share_in_range,
    successive_halving,
    successive_halving_search,
)


@pytest.fixture(scope="module")
def task():
    return DigitsTask(max_epochs=3)


def test_numpy_mlp_and_sgd_take_the_same_steps_as_torch():
    rng = np.random.default_rng(0)
    net = MLP.init(64, 32, 10, rng)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with torch.no_grad():
        for layer, (w, b) in zip((model[0], model[2]), ((net.w1, net.b1), (net.w2, net.b2)), strict=True):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    sgd = SGD(net.params(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(4):
        x = rng.standard_normal((16, 64)).astype(np.float32)
        y = rng.integers(0, 10, 16)
        sgd.step(net.grads(x, y))
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for ours, theirs in zip(net.params(), [model[0].weight, model[0].bias, model[2].weight, model[2].bias],
                            strict=True):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(net.logits(x), model(torch.from_numpy(x)).detach().numpy(), atol=1e-4)


def test_dropout_scales_the_kept_units_like_nn_dropout():
    rng = np.random.default_rng(1)
    net = MLP.init(4, 2000, 3, rng)
    x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 3, 8)
    g0 = net.grads(x, y)
    g = np.mean([net.grads(x, y, dropout=0.5, rng=rng)[3] for _ in range(400)], axis=0)
    np.testing.assert_allclose(g, g0[3], atol=0.02)  # inverted dropout: unbiased in expectation


def test_the_task_learns_and_a_bad_learning_rate_does_not(task):
    good = list(task.epochs({"lr": 0.1, "weight_decay": 1e-4, "width": 64, "dropout": 0.0}, seed=0))
    bad = list(task.epochs({"lr": 1e-5, "weight_decay": 1e-4, "width": 64, "dropout": 0.0}, seed=0))
    assert len(good) == task.max_epochs and good[-1][0] > 0.85 > 0.5 > bad[-1][0]
    assert good == list(task.epochs({"lr": 0.1, "weight_decay": 1e-4, "width": 64, "dropout": 0.0}, seed=0))


def test_grid_values_are_bin_centres_on_the_right_scale():
    assert grid_values(Param("lr", 1e-4, 1.0, log=True), 2) == [1e-3, 0.1]
    assert grid_values(Param("d", 0.0, 0.6), 3) == pytest.approx([0.1, 0.3, 0.5])
    assert grid_values(Param("w", 16, 256, log=True, integer=True), 2) == [32, 128]


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_spends_at_most_its_epochs(task, strategy):
    records = run_strategy(task, strategy, n_trials=8, seed=0)
    budget = 8 * task.max_epochs
    assert records[-1].spent <= budget
    assert [r.spent for r in records] == sorted(r.spent for r in records)
    assert sum(r.epochs for r in records) == records[-1].spent
    if strategy == "grid":  # 4 parameters, 8 trials: a 1-point grid (1 ** 4 <= 8 < 2 ** 4)
        assert len(records) == 1 and not records[0].pruned
    else:
        assert records[-1].spent == budget
    if strategy in ("halving", "hyperband"):
        assert {r.epochs for r in records[:-1] if r.pruned} <= {1}  # max_epochs 3, eta 3: one rung below the top
        assert len(records) > 8
    else:
        assert not any(r.pruned for r in records)


@pytest.mark.parametrize("strategy", ["tpe", "hyperband"])
def test_a_search_is_repeatable_and_the_seed_matters(task, strategy):
    a = run_strategy(task, strategy, n_trials=4, seed=3)
    assert a == run_strategy(task, strategy, n_trials=4, seed=3)
    if strategy == "hyperband":  # its brackets too: optuna picks them by crc32(study name + trial number)
        runs = [run_strategy(task, strategy, n_trials=8, seed=0) for _ in range(4)]
        assert all(run == runs[0] for run in runs)
    assert a != run_strategy(task, strategy, n_trials=4, seed=4)


def test_unknown_strategy(task):
    with pytest.raises(ValueError, match="unknown strategy"):
        run_strategy(task, "anneal", n_trials=2, seed=0)


def test_from_scratch_successive_halving_follows_the_rungs_and_resumes(task):
    rungs = successive_halving(9, 1, 3, 3)
    records, table = successive_halving_search(task, rungs, seed=0)
    assert [(row["configs"], row["epochs_each"]) for row in table] == [(9, 1), (3, 3)]
    assert [row["epochs_spent"] for row in table] == [9, 3 * 2]  # the 3 survivors train 2 more epochs each
    assert len(records) == 9 and sum(not r.pruned for r in records) == 3
    assert all(r.epochs == 3 for r in records if not r.pruned) and all(r.epochs == 1 for r in records if r.pruned)
    survivors = min(r.val for r in records if not r.pruned and r.epochs == 3)
    assert table[1]["best_val"] == max(r.val for r in records if not r.pruned) >= survivors


def test_best_so_far_counts_only_finished_trials():
    r = [TrialRecord({}, 0.9, 0.9, 1, True, 1), TrialRecord({}, 0.5, 0.5, 3, False, 4),
         TrialRecord({}, 0.7, 0.6, 3, False, 7)]
    out = best_so_far(r, [1, 4, 6, 7])
    assert math.isnan(out[0]) and out[1:] == [0.5, 0.5, 0.7]


def _results(strategies=("random", "tpe"), n=5, seeds=3):
    rng = np.random.default_rng(0)
    out = {"n_trials": n, "max_epochs": 9, "seeds": list(range(seeds)), "budgets": list(range(1, n + 1)),
           "strategies": {}}
    for s in strategies:
        curves = np.maximum.accumulate(rng.uniform(0.5, 1.0, (seeds, n)), axis=1).tolist()
        curves[0][0] = float("nan")
        out["strategies"][s] = {"curves": curves, "final": [c[-1] for c in curves]}
    return out


def test_race_figure_data_is_the_mean_and_std_over_seeds():
    res = _results()
    d = race_figure_data(res, ["tpe"], 4)
    curves = np.array(res["strategies"]["tpe"]["curves"])
    assert d["x"] == [1, 2, 3, 4] and list(d["series"]) == ["tpe"]
    np.testing.assert_allclose(d["series"]["tpe"]["mean"][1:], curves[:, 1:4].mean(0))
    np.testing.assert_allclose(d["series"]["tpe"]["high"][1:], curves[:, 1:4].mean(0) + curves[:, 1:4].std(0))
    assert d["series"]["tpe"]["mean"][0] == pytest.approx(np.nanmean(curves[:, 0]))
    assert d["at_budget"]["tpe"]["mean"] == pytest.approx(curves[:, 3].mean())
    assert d["at_budget"]["tpe"]["per_seed"] == pytest.approx(curves[:, 3].tolist())
    res["strategies"]["tpe"]["curves"][1][0] = res["strategies"]["tpe"]["curves"][2][0] = float("nan")
    assert race_figure_data(res, ["tpe"], 2)["series"]["tpe"]["mean"][0] is None  # no seed had finished a trial
    with pytest.raises(ValueError, match="unknown strategies"):
        race_figure_data(res, ["bohb"], 2)
    with pytest.raises(ValueError, match="budget"):
        race_figure_data(res, ["tpe"], 6)


def test_race_records_curves_per_seed(task):
    res = race(task, ["random", "halving"], n_trials=3, seeds=[0, 1])
    for entry in res["strategies"].values():
        assert len(entry["curves"]) == 2 and all(len(c) == 3 for c in entry["curves"])
        assert entry["final"] == [c[-1] for c in entry["curves"]]
        assert entry["mean"] == pytest.approx(np.mean(entry["final"]))
    assert race_figure_data(res, ["random", "halving"], 3)["seeds"] == 2


def test_random_search_tries_more_values_of_the_parameter_that_matters():
    bb = low_effective_dimension(500, dims=2, n_trials=9, seed=0)
    assert (bb["grid_distinct_x0"], bb["random_distinct_x0"]) == (3, 9)
    assert bb["random_mean"] > bb["grid_mean"]
    with pytest.raises(ValueError, match="perfect"):
        low_effective_dimension(10, dims=2, n_trials=10)


def test_importance_finds_the_one_parameter_that_matters():
    rng = np.random.default_rng(0)
    records = []
    for _ in range(40):
        p = {"lr": float(10 ** rng.uniform(-5, 0)), "weight_decay": float(10 ** rng.uniform(-6, -1)),
             "width": int(rng.integers(16, 257)), "dropout": float(rng.uniform(0, 0.5))}
        records.append(TrialRecord(p, -abs(math.log10(p["lr"]) + 1.5), 0.0, 9, False, 9))
    assert next(iter(param_importances(records, seed=0))) == "lr"


def test_selection_optimism_is_zero_without_noise_and_positive_with_it():
    rng = np.random.default_rng(0)
    quality = rng.uniform(0.8, 0.9, 60)
    same = [TrialRecord({}, q, q, 9, False, 9) for q in quality]
    assert selection_optimism(same, [1, 10])[10]["optimism"] == pytest.approx(0.0)
    noisy = [TrialRecord({}, q + rng.normal(0, 0.02), q + rng.normal(0, 0.02), 9, False, 9) for q in quality]
    o = selection_optimism(noisy, [1, 30], seed=0)
    assert o[30]["optimism"] > 0.01 > abs(o[1]["optimism"])
    with pytest.raises(ValueError, match="outside"):
        selection_optimism(noisy, [61])


def test_share_in_range_and_the_space():
    assert share_in_range(np.array([0.5, 0.05, 5e-3]), 0.01, 0.1) == pytest.approx(1 / 3)
    assert [p.name for p in SPACE] == ["lr", "weight_decay", "width", "dropout"]


def test_distinct_completed_drops_pruned_and_repeated_configurations():
    a, b = {"lr": 0.1, "dropout": 0.0}, {"lr": 0.01, "dropout": 0.2}
    records = [TrialRecord(a, 0.9, 0.9, 9, False, 9), TrialRecord(dict(reversed(a.items())), 0.8, 0.8, 9, False, 18),
               TrialRecord(b, 0.5, 0.5, 1, True, 19), TrialRecord(b, 0.7, 0.7, 9, False, 28)]
    kept = distinct_completed(records)
    assert [(r.params, r.val) for r in kept] == [(a, 0.9), (b, 0.7)]


def test_race_records_rebuilds_the_trials_of_the_named_strategies(task):
    results = race(task, ["random", "tpe"], n_trials=2, seeds=range(2))
    assert race_records(results, ["tpe"]) == [r for seed in range(2) for r in run_strategy(task, "tpe", n_trials=2, seed=seed)]
    assert len(race_records(results)) == len(race_records(results, ["random"])) + len(race_records(results, ["tpe"]))
