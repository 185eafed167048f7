"""Exercises of the hyperparameter-search topic (lesson 11). The references are ``bigtrain_lab.hpo``'s
functions (``tests/test_hpo_budgets.py`` checks them against Li et al.'s table and scipy):

- ``hpo.successive_halving``: the rungs ``(n_i, r_i) = (floor(n eta**-i), min_budget eta**i)``,
  ``i = 0..s``, ``s`` the largest integer with ``min_budget eta**s <= max_budget``, stopping before a rung
  with no configuration (Li et al. 2018, Hyperband's inner loop). Cases include the ones where the
  floating-point shortcut ``int(log(R) / log(eta))`` is one short (R = 243, eta = 3; R = 1000, eta = 10)
  and where ``min_budget * eta**s`` lands a rounding error above ``max_budget`` (0.1 * 3, 1.1 * 3**4).
- ``hpo.sample_log_uniform``: sampled, so no two right answers agree digit for digit; a runner draws from
  the candidate and checks the distribution with a Kolmogorov-Smirnov statistic against the log-uniform
  CDF ``log(x / low) / log(high / low)``: ``sqrt(n) * D <= 3.0`` (a right answer exceeds it with
  probability about 3e-8 per case; a uniform draw on [low, high] over a decade or more, or
  ``exp(uniform(log10 low, log10 high))``, exceeds it many times over), the range, the shape and dtype, that
  the same seed gives the same draws (two generators seeded alike) and that the draws come from ``rng``
  (a second call on the same generator gives new ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bigtrain_lab.grading.compare import as_real
from bigtrain_lab.grading.draws import SeededRng, ks_uniform, stream_problem
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe
from bigtrain_lab.hpo import sample_log_uniform, successive_halving

# ---- hpo.successive_halving -----------------------------------------------------------------------


def _rungs_compare(got: Any, expected: list) -> str | None:
    what = "a list of (n_configs, budget) pairs, one per rung"
    if isinstance(got, np.ndarray) and got.ndim == 2 and got.shape[1:] == (2,):
        got = got.tolist()
    if not isinstance(got, list | tuple):
        return f"expected {what}, got {type(got).__name__}: {describe(got, 80)}"
    exp_text = ", ".join(f"({n}, {r:g})" for n, r in expected)
    if len(got) != len(expected):
        return f"expected {len(expected)} rungs [{exp_text}], got {len(got)}: {describe(got, 160)}"
    for i, (pair, (n_exp, r_exp)) in enumerate(zip(got, expected, strict=True)):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            return f"rung {i}: expected a pair (n_configs, budget), got {describe(pair, 80)}"
        try:
            n, r = as_real(pair[0], "a count for n_configs"), as_real(pair[1], "a number for the budget")
        except Exception as e:  # noqa: BLE001 - WrongKind with its message
            return f"rung {i}: {e}"
        if math.isnan(n) or n != int(n):
            return f"rung {i}: n_configs should be a whole number, got {n!r}"
        if int(n) != n_exp:
            return f"rung {i}: expected {n_exp} configurations, got {int(n)} (all rungs: [{exp_text}])"
        if not math.isclose(r, r_exp, rel_tol=1e-9, abs_tol=1e-12):
            return f"rung {i}: expected budget {r_exp!r}, got {r!r} (all rungs: [{exp_text}])"
    return None


def _halving_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("Li et al.'s bracket s = 4: 81 configurations, budgets 1..81, eta = 3", (81, 1, 81, 3)),
        Case("the paper's bracket s = 3: 34 configurations from budget 3", (34, 3, 81, 3)),
        Case("the paper's bracket s = 2", (15, 9, 81, 3)),
        Case("min_budget == max_budget: a single rung", (5, 81, 81, 3)),
        Case("floor(n / eta**i), not round or ceil: 100 configurations", (100, 1, 81, 3)),
        Case("eta = 2, 16 configurations", (16, 1, 16, 2)),
        Case("stop before a rung with 0 configurations (10 configurations, budgets up to 100)", (10, 1, 100, 2)),
        Case("max_budget not a power of eta: the last rung's budget stays below it", (20, 2, 100, 3)),
        Case("R = 243 = 3**5: log(243) / log(3) is 4.999999999999999 in floating point", (243, 1, 243, 3)),
        Case("R = 1000 = 10**3: log(1000) / log(10) is 2.9999999999999996", (1000, 1, 1000, 10)),
        Case("budgets 1.1 .. 89.1: 1.1 * 3**4 is 89.10000000000001 in floating point", (81, 1.1, 89.1, 3)),
        Case("budgets 0.1 .. 0.3: 0.1 * 3 is 0.30000000000000004 in floating point", (9, 0.1, 0.3, 3)),
        Case("half-epoch budgets", (27, 0.5, 13.5, 3)),
        Case("a non-integer eta (2.5)", (50, 1, 50, 2.5)),
        Case("one configuration", (1, 1, 100, 3)),
        Case("n_configs = 0: ValueError", (0, 1, 81, 3), raises=ValueError),
        Case("min_budget = 0: ValueError", (9, 0, 81, 3), raises=ValueError),
        Case("a negative min_budget: ValueError", (9, -1, 81, 3), raises=ValueError),
        Case("max_budget < min_budget: ValueError", (9, 10, 5, 3), raises=ValueError),
        Case("eta = 1 never halves: ValueError", (9, 1, 81, 1), raises=ValueError),
        Case("eta = 0.5: ValueError", (9, 1, 81, 0.5), raises=ValueError),
    ]
    for i in range(5):
        eta = int(rng.choice([2, 3, 4]))
        min_budget = float(rng.choice([1, 2, 5, 0.5, 0.25]))
        s = int(rng.integers(0, 6))
        max_budget = round(min_budget * eta**s * float(rng.choice([1.0, rng.uniform(1.05, 0.95 * eta)])), 3)
        n = int(rng.integers(1, 400))
        cases.append(Case(f"random #{i + 1} (n={n}, budgets {min_budget:g}..{max_budget:g}, eta={eta})",
                          (n, min_budget, max_budget, eta)))
    return cases


register(Exercise(
    id="hpo.successive_halving",
    reference=successive_halving,
    make_cases=_halving_cases,
    compare=_rungs_compare,
    hint="ValueError for n_configs < 1, min_budget <= 0, max_budget < min_budget or eta <= 1. s = the largest "
         "integer with min_budget * eta**s <= max_budget: count it up in a loop with a tiny relative slack "
         "(max_budget * (1 + 1e-9)), because int(log(R) / log(eta)) is one short for R = 243, eta = 3 and "
         "0.1 * 3 > 0.3 in floating point. Then for i = 0..s: n_i = n_configs // eta**i (floor), "
         "budget r_i = min_budget * eta**i; stop before a rung with n_i == 0. Return [(n_i, r_i), ...].",
    section="successive-halving",
))


# ---- hpo.sample_log_uniform -----------------------------------------------------------------------

#: sqrt(n) * D above this rejects: P(Kolmogorov > 3.0) is about 3e-8 for a right answer.
KS_LIMIT = 3.0
KS_MIN_N = 100  # fewer draws: the distribution is not tested, only range, shape and the generator


@dataclass(frozen=True)
class Sampled:
    """What the runner saw of the draws; ``problem`` is the first thing wrong, or ''."""

    problem: str
    ks: float  # sqrt(n) * the KS statistic against the log-uniform CDF (nan when not tested)
    n: int

    def __repr__(self) -> str:
        if self.problem:
            return self.problem
        ks = "" if math.isnan(self.ks) else f", sqrt(n) * KS distance to log-uniform = {self.ks:.2f}"
        return f"{self.n} draws in range, reproducible with the same seed{ks}"


def _draws_problem(x: Any, low: float, high: float, n: int) -> str:
    if not isinstance(x, np.ndarray):
        return f"returned {type(x).__name__} ({describe(x, 60)}): return a NumPy array"
    if x.shape != (n,):
        return f"returned shape {x.shape}, expected ({n},)"
    if x.dtype.kind != "f":
        return f"returned dtype {x.dtype}: the draws are real numbers (float64)"
    if n and not np.isfinite(x).all():
        return "returned NaN or infinite values"
    slack = 1e-12  # exp(log(low)) may round a hair below low
    if n and (x.min() < low * (1 - slack) or x.max() > high * (1 + slack)):
        return f"draws outside [{low:g}, {high:g}]: min {x.min():.6g}, max {x.max():.6g}"
    return ""


def ks_log_uniform(x: np.ndarray, low: float, high: float) -> float:
    """``sqrt(n) * sup |F_n - F|`` for the log-uniform CDF ``F(x) = log(x / low) / log(high / low)``."""
    return ks_uniform(np.log(x / low) / math.log(high / low))


def run_sampler(fn: Any, low: float, high: float, n: int, rng: np.random.Generator, *,
                twins: tuple[np.random.Generator, np.random.Generator]) -> Sampled:
    """Draw ``fn(low, high, n, rng)`` twice from ``rng`` and once from each of two generators seeded alike."""
    x = fn(low, high, n, rng)
    if problem := _draws_problem(x, low, high, n):
        return Sampled(problem, math.nan, n)
    again = fn(low, high, n, rng)
    a, b = fn(low, high, n, twins[0]), fn(low, high, n, twins[1])
    for other in (again, a, b):
        if problem := _draws_problem(other, low, high, n):
            return Sampled(problem, math.nan, n)
    if problem := stream_problem(x, again, a, b, same=np.array_equal, what="draws", example="rng.uniform",
                                 global_state="np.random's global state", repeat_possible=n < 2):
        return Sampled(problem, math.nan, n)
    ks = ks_log_uniform(x, low, high) if n >= KS_MIN_N else math.nan
    return Sampled("", ks, n)


def _sampled_compare(got: Any, expected: Sampled) -> str | None:
    if not isinstance(got, Sampled):
        return f"unexpected result {describe(got, 80)}"
    if got.problem:
        return got.problem
    if got.ks > KS_LIMIT:
        return (f"the draws are not log-uniform: sqrt(n) * KS distance to the log-uniform CDF is {got.ks:.1f} "
                f"(a right answer stays below {KS_LIMIT:g}); is it uniform on [low, high], or log10 mixed "
                "with exp?")
    return None


def _sampler_cases(rng: np.random.Generator) -> list[Case]:
    def case(label: str, low: float, high: float, n: int, **kw: Any) -> Case:
        seed, twin = (int(s) for s in rng.integers(2**31, size=2))
        return Case(label, (low, high, n, SeededRng(seed)), {"twins": (SeededRng(twin), SeededRng(twin))}, **kw)

    cases = [
        case("a learning-rate range, 1e-5 .. 1e-1 (four decades)", 1e-5, 1e-1, 4000),
        case("weight decay 1e-6 .. 1e-2", 1e-6, 1e-2, 4000),
        case("1 .. 1000 (a uniform draw puts 90 % above 100)", 1.0, 1000.0, 4000),
        case("one decade, 0.1 .. 1", 0.1, 1.0, 4000),
        case("a narrow range, 2 .. 3 (close to uniform)", 2.0, 3.0, 2000),
        case("above 1 and far apart, 10 .. 1e6", 10.0, 1e6, 4000),
        case("a single draw", 1e-3, 1e-1, 1),
        case("n = 0: an empty array", 1e-3, 1e-1, 0),
        case("low = 0 (log 0 = -inf): ValueError", 0.0, 1.0, 10, raises=ValueError),
        case("a negative low: ValueError", -1e-3, 1.0, 10, raises=ValueError),
        case("high == low: ValueError", 0.1, 0.1, 10, raises=ValueError),
        case("high < low: ValueError", 1.0, 0.1, 10, raises=ValueError),
        case("n < 0: ValueError", 1e-3, 1.0, -1, raises=ValueError),
    ]
    for i in range(4):
        low = float(10 ** rng.uniform(-8, 1))
        high = float(low * 10 ** rng.uniform(1, 6))
        cases.append(case(f"random #{i + 1} ({low:.3g} .. {high:.3g})", low, high, 3000))
    return cases


register(Exercise(
    id="hpo.sample_log_uniform",
    reference=sample_log_uniform,
    make_cases=_sampler_cases,
    compare=_sampled_compare,
    run=run_sampler,
    hint="ValueError for low <= 0, high <= low or n < 0. Draw u = rng.uniform(np.log(low), np.log(high), "
         "size=n) -- natural log both ways, or log10 with 10**u, never log10 with exp -- and return np.exp(u) "
         "(float64, shape (n,)). Draw from the rng you are given (same seed -> same draws; a second call "
         "continues its stream), not from np.random or a new default_rng. Every decade gets the same share.",
    section="log-scale",
))
