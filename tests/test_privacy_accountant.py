"""The privacy accountant wrapper (``bigtrain_lab.privacy.accountant``) against opacus itself."""

import math

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from bigtrain_lab.privacy.accountant import epsilon, noise_multiplier_for


@pytest.mark.parametrize("name,cls", [("rdp", RDPAccountant), ("prv", PRVAccountant)])
def test_epsilon_is_opacus_accountants(name, cls):
    acc = cls()
    for _ in range(100):
        acc.step(noise_multiplier=1.1, sample_rate=0.02)
    assert epsilon(1.1, 0.02, 100, delta=1e-5, accountant=name) == pytest.approx(acc.get_epsilon(delta=1e-5),
                                                                                 rel=1e-3)


def test_epsilon_grows_with_steps_and_sample_rate_and_shrinks_with_noise_and_delta():
    base = epsilon(1.0, 0.05, 200)
    assert epsilon(1.0, 0.05, 800) > base > epsilon(2.0, 0.05, 200)
    assert epsilon(1.0, 0.2, 200) > base
    assert epsilon(1.0, 0.05, 200, delta=1e-8) > base > epsilon(1.0, 0.05, 200, delta=1e-3)
    assert epsilon(1.0, 0.05, 200, accountant="prv") < base  # the tighter accountant
    assert math.isinf(epsilon(0.0, 0.05, 200))


@pytest.mark.parametrize("name", ["rdp", "prv"])
def test_noise_multiplier_for_reaches_the_target(name):
    sigma = noise_multiplier_for(2.0, sample_rate=0.05, steps=100, accountant=name)
    assert sigma == get_noise_multiplier(target_epsilon=2.0, target_delta=1e-5, sample_rate=0.05, steps=100,
                                         accountant=name)
    assert epsilon(sigma, 0.05, 100, accountant=name) <= 2.0 + 1e-6
    assert epsilon(sigma * 0.9, 0.05, 100, accountant=name) > 2.0


@pytest.mark.parametrize("kwargs,match", [
    ({"sample_rate": 0.0}, "sample_rate"), ({"sample_rate": 1.5}, "sample_rate"), ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"), ({"delta": 0.0}, "delta"), ({"delta": 1.0}, "delta"),
    ({"accountant": "gdp2"}, "accountant"), ({"noise_multiplier": -1.0}, "noise_multiplier"),
])
def test_bad_settings_are_rejected(kwargs, match):
    args = {"noise_multiplier": 1.0, "sample_rate": 0.1, "steps": 10, **kwargs}
    noise = args.pop("noise_multiplier")
    with pytest.raises(ValueError, match=match):
        epsilon(noise, args.pop("sample_rate"), args.pop("steps"), **args)
    with pytest.raises(ValueError, match="target_epsilon"):
        noise_multiplier_for(0.0, sample_rate=0.1, steps=10)
