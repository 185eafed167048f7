"""Plausible WRONG implementations of the ``hpo.*`` exercises (each must be rejected by ``check``), and
several different CORRECT ones (each must be accepted)."""

import math

import numpy as np

# ---- hpo.successive_halving -----------------------------------------------------------------------


def _validate(n_configs, min_budget, max_budget, eta):
    if n_configs < 1 or min_budget <= 0 or max_budget < min_budget or eta <= 1:
        raise ValueError("bad arguments")


def _s(min_budget, max_budget, eta):
    s = 0
    while min_budget * eta ** (s + 1) <= max_budget * (1 + 1e-9):
        s += 1
    return s


def sh_log_shortcut(n_configs, min_budget, max_budget, eta):
    # s = int(log(R) / log(eta)): one short when the log ratio lands just under an integer (243, 3)
    _validate(n_configs, min_budget, max_budget, eta)
    s = int(math.log(max_budget / min_budget) / math.log(eta))
    rungs = [(n_configs // eta**i, min_budget * eta**i) for i in range(s + 1)]
    return [r for r in rungs if r[0] > 0]


def sh_ceil(n_configs, min_budget, max_budget, eta):
    # ceil instead of floor (sklearn's halving search rounds the candidates up)
    _validate(n_configs, min_budget, max_budget, eta)
    rungs = []
    for i in range(_s(min_budget, max_budget, eta) + 1):
        n = math.ceil(n_configs / eta**i)
        if n == 0:
            break
        rungs.append((n, min_budget * eta**i))
    return rungs


def sh_budget_not_multiplied(n_configs, min_budget, max_budget, eta):
    # the budget grows by eta each rung in the paper; here it grows linearly
    _validate(n_configs, min_budget, max_budget, eta)
    rungs = []
    for i in range(_s(min_budget, max_budget, eta) + 1):
        n = int(n_configs // eta**i)
        if n == 0:
            break
        rungs.append((n, min_budget * (1 + i * (eta - 1))))
    return rungs


def sh_until_one_config(n_configs, min_budget, max_budget, eta):
    # halves until one configuration is left, ignoring max_budget
    _validate(n_configs, min_budget, max_budget, eta)
    rungs, i = [], 0
    while n_configs // eta**i >= 1:
        rungs.append((int(n_configs // eta**i), min_budget * eta**i))
        i += 1
    return rungs


def sh_strict_float(n_configs, min_budget, max_budget, eta):
    # compares min_budget * eta**s <= max_budget exactly: 0.1 * 3**2 = 0.9000000000000001 > 0.9
    _validate(n_configs, min_budget, max_budget, eta)
    s = 0
    while min_budget * eta ** (s + 1) <= max_budget:
        s += 1
    rungs = [(int(n_configs // eta**i), min_budget * eta**i) for i in range(s + 1)]
    return [r for r in rungs if r[0] > 0]


def sh_keeps_zero_rungs(n_configs, min_budget, max_budget, eta):
    _validate(n_configs, min_budget, max_budget, eta)
    return [(int(n_configs // eta**i), min_budget * eta**i) for i in range(_s(min_budget, max_budget, eta) + 1)]


def sh_no_count_check(n_configs, min_budget, max_budget, eta):
    # validates the budgets and eta but not n_configs: 0 configurations give an empty list, not an error
    if min_budget <= 0 or max_budget < min_budget or eta <= 1:
        raise ValueError("bad budgets or eta")
    rungs = [(int(n_configs // eta**i), min_budget * eta**i) for i in range(_s(min_budget, max_budget, eta) + 1)]
    return [r for r in rungs if r[0] > 0]


HALVING_WRONG = [sh_log_shortcut, sh_ceil, sh_budget_not_multiplied, sh_until_one_config, sh_strict_float,
                 sh_keeps_zero_rungs, sh_no_count_check]


def sh_loop(n_configs, min_budget, max_budget, eta):
    _validate(n_configs, min_budget, max_budget, eta)
    rungs, n, budget = [], n_configs, min_budget
    while budget <= max_budget * (1 + 1e-9) and n >= 1:
        rungs.append((n, budget))
        n, budget = math.floor(n_configs / eta ** len(rungs) + 1e-9), min_budget * eta ** len(rungs)
    return rungs


def sh_log_with_epsilon(n_configs, min_budget, max_budget, eta):
    _validate(n_configs, min_budget, max_budget, eta)
    s = math.floor(math.log(max_budget / min_budget) / math.log(eta) + 1e-9)
    out = []
    for i in range(s + 1):
        n = math.floor(n_configs * eta ** (-i) + 1e-9)
        if n < 1:
            break
        out.append((n, float(min_budget * eta**i)))
    return out


def sh_package(n_configs, min_budget, max_budget, eta):
    from bigtrain_lab.hpo import successive_halving
    return successive_halving(n_configs, min_budget, max_budget, eta)


HALVING_RIGHT = [sh_loop, sh_log_with_epsilon, sh_package]


# ---- hpo.sample_log_uniform -----------------------------------------------------------------------


def _check_args(low, high, n):
    if low <= 0 or high <= low or n < 0:
        raise ValueError("bad arguments")


def slu_uniform(low, high, n, rng):
    _check_args(low, high, n)
    return rng.uniform(low, high, size=n)


def slu_log10_with_exp(low, high, n, rng):
    _check_args(low, high, n)
    return np.exp(rng.uniform(np.log10(low), np.log10(high), size=n))


def slu_ln_with_power_of_ten(low, high, n, rng):
    _check_args(low, high, n)
    return 10 ** rng.uniform(np.log(low), np.log(high), size=n)


def slu_global_random(low, high, n, rng):
    # np.random's global state: the rng handed in is ignored, so its seed does not reproduce the draws
    _check_args(low, high, n)
    return np.exp(np.random.uniform(np.log(low), np.log(high), size=n))


def slu_fixed_seed_inside(low, high, n, rng):
    # a new generator with a fixed seed: every call returns the same draws
    _check_args(low, high, n)
    return np.exp(np.random.default_rng(0).uniform(np.log(low), np.log(high), size=n))


def slu_geomspace(low, high, n, rng):
    # a log-spaced grid is not a random search
    _check_args(low, high, n)
    return np.geomspace(low, high, n)


def slu_no_validation(low, high, n, rng):
    with np.errstate(all="ignore"):
        return np.exp(rng.uniform(np.log(low), np.log(high), size=max(n, 0)))


def slu_log_normal(low, high, n, rng):
    # a log-normal centred in the range, clipped: right range, wrong distribution
    _check_args(low, high, n)
    lo, hi = np.log(low), np.log(high)
    return np.exp(np.clip(rng.normal((lo + hi) / 2, (hi - lo) / 4, size=n), lo, hi))


LOG_UNIFORM_WRONG = [slu_uniform, slu_log10_with_exp, slu_ln_with_power_of_ten, slu_global_random,
                     slu_fixed_seed_inside, slu_geomspace, slu_no_validation, slu_log_normal]


def slu_power(low, high, n, rng):
    _check_args(low, high, n)
    return low * (high / low) ** rng.random(n)


def slu_log10(low, high, n, rng):
    _check_args(low, high, n)
    return np.clip(10.0 ** rng.uniform(math.log10(low), math.log10(high), size=n), low, high)


def slu_package(low, high, n, rng):
    from bigtrain_lab.hpo import sample_log_uniform
    return sample_log_uniform(low, high, n, rng)


LOG_UNIFORM_RIGHT = [slu_power, slu_log10, slu_package]


WRONG = {"hpo.successive_halving": HALVING_WRONG, "hpo.sample_log_uniform": LOG_UNIFORM_WRONG}
RIGHT = {"hpo.successive_halving": HALVING_RIGHT, "hpo.sample_log_uniform": LOG_UNIFORM_RIGHT}
