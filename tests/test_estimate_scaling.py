"""Scaling laws: the fit recovers a known law, the compute optimum, Chinchilla's numbers, a reproducible grid point."""

import math

import numpy as np
import pytest
import torch

from bigtrain_lab.data import load_text_corpus
from bigtrain_lab.estimate.scaling import (
    CHINCHILLA,
    CHINCHILLA_TOKENS_PER_PARAM,
    EPOCH_REFIT,
    GridPoint,
    ScalingLaw,
    compute_optimal,
    fit_scaling_law,
    predict_loss,
    tokens_per_parameter,
    train_grid,
    train_point,
)

SMALL_GRID = {"alpha": (0.2, 0.8), "beta": (0.2, 0.8), "e": (0.0, 1.0), "a": (2.0, 8.0), "b": (2.0, 8.0)}


def synthetic_points(law, noise, seed=0):
    rng = np.random.default_rng(seed)
    return [GridPoint(int(n), int(d), float(law.loss(n, d) * math.exp(rng.normal(0, noise))))
            for n in np.geomspace(1e7, 1e10, 6) for d in np.geomspace(1e9, 1e12, 6)]


@pytest.mark.parametrize("noise", [0.0, 0.002])
def test_fit_recovers_a_known_law(noise):
    truth = ScalingLaw(E=1.8, A=500.0, B=900.0, alpha=0.36, beta=0.31)
    fit = fit_scaling_law(synthetic_points(truth, noise), init_grid=SMALL_GRID)
    tol = 0.02 if noise == 0 else 0.10
    assert fit.law.alpha == pytest.approx(truth.alpha, rel=tol)
    assert fit.law.beta == pytest.approx(truth.beta, rel=tol)
    fitted_e = fit.law.E
    assert fitted_e == pytest.approx(truth.E, rel=tol / 2)
    assert fit.rms_residual < max(3 * noise, 1e-4)
    assert len(fit.residuals) == 36 and fit.n_agree >= 1 and fit.n_starts == 32
    # predictions (what a fit is for) agree more closely than the individual coefficients
    n, d = np.geomspace(1e7, 1e10, 5), np.geomspace(1e9, 1e12, 5)
    assert np.allclose(fit.law.loss(n, d), truth.loss(n, d), rtol=0.01)


def test_fit_on_chinchilla_points_gives_chinchilla_back():
    fit = fit_scaling_law(synthetic_points(CHINCHILLA, 0.0))  # the default initialisation grid
    for name in ("E", "alpha", "beta"):
        assert getattr(fit.law, name) == pytest.approx(getattr(CHINCHILLA, name), rel=0.02)


@pytest.mark.parametrize("flops", [1e15, 1e20, 5.76e23, 1e26])
@pytest.mark.parametrize("law", [CHINCHILLA, EPOCH_REFIT, ScalingLaw(1.0, 50.0, 80.0, 0.5, 0.4)])
def test_compute_optimal_is_on_budget_and_beats_neighbours(law, flops):
    n_opt, d_opt = compute_optimal(law, flops)
    assert 6 * n_opt * d_opt == pytest.approx(flops, rel=1e-12)
    best = law.loss(n_opt, d_opt)
    for factor in (0.5, 0.8, 0.95, 1.05, 1.25, 2.0):  # same budget, parameters traded for tokens
        n = n_opt * factor
        assert law.loss(n, flops / (6 * n)) > best
    # and a brute-force search over the budget line lands on the same N
    grid = np.geomspace(n_opt / 100, n_opt * 100, 20001)
    assert grid[np.argmin(law.loss(grid, flops / (6 * grid)))] == pytest.approx(n_opt, rel=1e-3)


def test_chinchilla_numbers():
    assert (CHINCHILLA.E, CHINCHILLA.A, CHINCHILLA.B, CHINCHILLA.alpha, CHINCHILLA.beta) == (
        1.69, 406.4, 410.7, 0.34, 0.28)
    gopher_budget = 5.76e23
    # the paper's approaches 1 and 2: 70B on 1.4T tokens, 20 tokens per parameter; the Epoch refit agrees
    n, d = compute_optimal(EPOCH_REFIT, gopher_budget)
    assert n == pytest.approx(70e9, rel=0.1) and d == pytest.approx(1.4e12, rel=0.1)
    assert tokens_per_parameter(EPOCH_REFIT, gopher_budget) == pytest.approx(CHINCHILLA_TOKENS_PER_PARAM, rel=0.1)
    # eq. 10's rounded coefficients (approach 3) put the optimum at a smaller model on more data (~32B, ~3T):
    # same order as 70B / 1.4T, the disagreement Besiroglu et al. (2024) point out
    n, d = compute_optimal(CHINCHILLA, gopher_budget)
    assert 25e9 < n < 70e9 and 1.4e12 < d < 4e12
    chinchilla_budget = 6 * 70e9 * 1.4e12
    assert chinchilla_budget == pytest.approx(gopher_budget, rel=0.03)
    # Chinchilla (70B, 1.4T) beats Gopher (280B, 300B tokens) at a similar budget under the law
    assert CHINCHILLA.loss(70e9, 1.4e12) < CHINCHILLA.loss(280e9, 300e9)


def test_bad_inputs():
    with pytest.raises(ValueError, match="positive"):
        ScalingLaw(E=-1, A=1, B=1, alpha=0.3, beta=0.3)
    with pytest.raises(ValueError, match="flops"):
        compute_optimal(CHINCHILLA, 0)
    with pytest.raises(TypeError, match="ScalingLaw"):
        compute_optimal((1.69, 406.4, 410.7, 0.34, 0.28), 1e20)
    with pytest.raises(ValueError, match="n_params"):
        predict_loss(CHINCHILLA, -5, 1e9)
    with pytest.raises(ValueError, match="at least 5 points"):
        fit_scaling_law(synthetic_points(CHINCHILLA, 0)[:3])
    with pytest.raises(ValueError, match="two model sizes"):
        fit_scaling_law([GridPoint(1000, d, 3.0 - d / 1e6) for d in range(1000, 7000, 1000)])
    with pytest.raises(TypeError, match="GridPoint"):
        fit_scaling_law([(1, 2, 3)] * 6)
    with pytest.raises(ValueError, match="n_layer, n_head, n_embd"):
        train_grid([(1, 2)], [2048], progress=False)
    with pytest.raises(ValueError, match="divisible"):
        train_grid([(1, 3, 32)], [2048], progress=False)
    with pytest.raises(ValueError, match="token budget"):
        train_grid([(1, 2, 32)], [10], progress=False)


def test_grid_point_json_round_trip():
    p = GridPoint(19872, 153600, 2.81, shape=(1, 2, 32), steps=150, seconds=1.2)
    assert GridPoint.from_json(p.to_json()) == p
    assert p.flops == 6 * 19872 * 153600


@pytest.fixture(scope="module")
def corpus():
    return load_text_corpus(max_chars=400_000)


def test_train_point_is_reproducible_and_the_schedule_ends_at_each_budget(corpus):
    torch.set_num_threads(1)
    kw = dict(corpus=corpus, block_size=16, batch_size=4, eval_batches=2, seed=3)
    a = train_point((1, 2, 16), 30 * 64, **kw)
    b = train_point((1, 2, 16), 30 * 64, **kw)
    assert a.loss == b.loss and a.steps == 30 and a.n_tokens == 30 * 64
    assert a.shape == (1, 2, 16) and a.n_params > 0
    c = train_point((1, 2, 16), 30 * 64, **{**kw, "seed": 4})
    assert c.loss != a.loss
    points = train_grid([(1, 2, 16), (2, 2, 16)], [10 * 64, 30 * 64], progress=False, **kw)
    assert [(p.shape, p.steps) for p in points] == [((1, 2, 16), 10), ((1, 2, 16), 30), ((2, 2, 16), 10),
                                                    ((2, 2, 16), 30)]
    assert points[1].loss == a.loss  # the grid's run is the same run
    assert points[2].n_params > points[0].n_params


def test_each_run_decays_to_the_end_of_its_own_budget(corpus, monkeypatch):
    """The Chinchilla correction: every run's cosine reaches its minimum at its own last step."""
    import bigtrain_lab.llm.training as training

    seen = []
    real = training.train_lm

    def spy(model, get_batch, steps, **kwargs):
        run = real(model, get_batch, steps, **kwargs)
        seen.append((steps, run.lrs))
        return run

    monkeypatch.setattr(training, "train_lm", spy)
    train_grid([(1, 2, 16)], [10 * 64, 40 * 64], corpus=corpus, block_size=16, batch_size=4, eval_batches=1,
               progress=False)
    for steps, lrs in seen:
        assert len(lrs) == steps
        assert lrs == pytest.approx([training.cosine_with_warmup(i, steps=steps, warmup=max(1, steps // 10), lr=3e-3)
                                     for i in range(steps)])
        assert lrs[-1] == min(lrs[steps // 10:]) and lrs[-1] < 0.13 * max(lrs)  # decayed by its own last step
    assert [steps for steps, _ in seen] == [10, 40]


def test_load_grid_keeps_losses_and_drops_loaded_seconds(tmp_path):
    import json

    from bigtrain_lab.estimate.scaling import load_grid

    p = GridPoint(19872, 153600, 2.81, shape=(1, 2, 32), steps=150, seconds=1.2)
    path = tmp_path / "grid.json"
    for loaded, seconds in ((False, 1.2), (True, None)):
        path.write_text(json.dumps({"points": [p.to_json()], "conditions": {"loaded": loaded, "cores": 2}}))
        points, document = load_grid(path)
        assert points == [GridPoint(19872, 153600, 2.81, (1, 2, 32), 150, seconds)]
        assert document["conditions"]["loaded"] is loaded
    path.write_text("{}")
    with pytest.raises(ValueError, match="scaling_grid.py"):
        load_grid(path)


def test_the_cached_grid_is_what_the_code_produces(root):
    """bench/results/scaling_grid.json: its smallest run, re-trained, gives the cached loss."""
    from bigtrain_lab.estimate.scaling import load_grid

    torch.set_num_threads(1)
    points, document = load_grid(root / "bench" / "results" / "scaling_grid.json")
    setup = document["setup"]
    assert len(points) == len(setup["sizes"]) * len(setup["token_budgets"])
    assert all(p.loss > 0 and p.n_params > 0 for p in points)
    cached = min(points, key=lambda p: (p.n_params, p.n_tokens))
    again = train_point(cached.shape, cached.n_tokens, block_size=setup["block_size"],
                        batch_size=setup["batch_size"], lr=setup["lr"], seed=setup["seed"],
                        eval_batches=setup["eval_batches"])
    assert again.n_params == cached.n_params and again.n_tokens == cached.n_tokens
    assert again.loss == pytest.approx(cached.loss, rel=1e-4)
