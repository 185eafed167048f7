"""The privacy accountant: what (noise_multiplier, sample_rate, steps) of DP-SGD cost in (epsilon, delta).

A thin, checked layer over opacus's accountants. Both take the whole training run -- ``steps`` Poisson-sampled
steps at rate ``sample_rate`` (q = expected batch / N), each adding Gaussian noise of std
``noise_multiplier`` x the clipping norm -- and return the epsilon that run guarantees at a given delta:

* ``"rdp"``: Renyi-DP of the subsampled Gaussian mechanism (Mironov 2017; Mironov, Talwar, Zhang 2019),
  converted to (epsilon, delta); an upper bound, the usual one to report.
* ``"prv"``: the privacy-loss random variable accountant (Gopi, Lee, Wutschitz 2021), a numerical composition
  that is tighter: a smaller epsilon for the same run.

delta: the probability with which the guarantee may fail outright. It must be well below 1/N (a mechanism
that publishes one random record in full is (0, 1/N)-DP); 1e-5 is the customary choice for N up to ~1e5.

>>> round(epsilon(1.0, 0.05, 100, delta=1e-5), 2)
4.04
>>> epsilon(0.0, 0.05, 100, delta=1e-5)  # no noise, no privacy
inf
"""

from __future__ import annotations

import math
import warnings

# opacus is imported where it is used: importing it costs about a second, and every process that loads the
# grader's exercises (a learner's kernel included) imports this package for dpsgd and mechanisms.

__all__ = ["ACCOUNTANTS", "DEFAULT_DELTA", "epsilon", "noise_multiplier_for"]

ACCOUNTANTS = ("rdp", "prv")
DEFAULT_DELTA = 1e-5


def _check(sample_rate: float, steps: int, delta: float, accountant: str) -> None:
    if not (isinstance(sample_rate, (int, float)) and 0 < sample_rate <= 1):
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not (isinstance(delta, (int, float)) and 0 < delta < 1):
        raise ValueError(f"delta must be in (0, 1) (with delta = 0 the Gaussian mechanism has epsilon = inf), "
                         f"got {delta!r}")
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")


def epsilon(noise_multiplier: float, sample_rate: float, steps: int, *, delta: float = DEFAULT_DELTA,
            accountant: str = "rdp") -> float:
    """The epsilon at ``delta`` of ``steps`` DP-SGD steps with this noise multiplier and Poisson sample rate
    (opacus's ``RDPAccountant`` or ``PRVAccountant``); ``inf`` when ``noise_multiplier`` is 0."""
    _check(sample_rate, steps, delta, accountant)
    if not (isinstance(noise_multiplier, (int, float)) and math.isfinite(noise_multiplier) and noise_multiplier >= 0):
        raise ValueError(f"noise_multiplier must be a finite number >= 0, got {noise_multiplier!r}")
    if noise_multiplier == 0:
        return math.inf
    from opacus.accountants import PRVAccountant, RDPAccountant

    acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    with warnings.catch_warnings():  # "optimal order is the largest alpha" and log(0) notes at extreme settings
        warnings.simplefilter("ignore")
        return float(acc.get_epsilon(delta=delta))


def noise_multiplier_for(target_epsilon: float, *, sample_rate: float, steps: int, delta: float = DEFAULT_DELTA,
                         accountant: str = "rdp") -> float:
    """The smallest noise multiplier (to opacus's search tolerance of 0.01 in epsilon) whose run of ``steps``
    steps at ``sample_rate`` stays within ``target_epsilon`` at ``delta`` (opacus's ``get_noise_multiplier``)."""
    _check(sample_rate, steps, delta, accountant)
    if not (isinstance(target_epsilon, (int, float)) and math.isfinite(target_epsilon) and target_epsilon > 0):
        raise ValueError(f"target_epsilon must be a finite number > 0, got {target_epsilon!r}")
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(get_noise_multiplier(target_epsilon=float(target_epsilon), target_delta=float(delta),
                                          sample_rate=float(sample_rate), steps=int(steps), accountant=accountant))
