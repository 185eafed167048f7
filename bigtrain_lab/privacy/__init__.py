"""Differential privacy for lesson 12 (``notebooks/12_differential_privacy.ipynb``).

* ``dpsgd``: DP-SGD from scratch -- ``per_sample_gradients`` (torch.func), ``clip_and_noise``, Poisson
  sampling and the ``train_dp`` loop.
* ``accountant``: (noise multiplier, sample rate, steps) -> epsilon at delta, and back (opacus's RDP and PRV
  accountants).
* ``mechanisms``: the Laplace mechanism and randomized response.
* ``membership``: the loss-threshold membership-inference attack and the bound DP puts on it.
* ``anonymity``: re-identification by joining quasi-identifiers, generalisation and k-anonymity.
* ``experiments``: accuracy vs epsilon and the attack's targets on digits; the epsilon dial's data.
* ``opacus_check``: the same step and run through opacus (import it from its module).
"""

from bigtrain_lab.privacy.accountant import DEFAULT_DELTA, epsilon, noise_multiplier_for
from bigtrain_lab.privacy.dpsgd import clip_and_noise, per_sample_gradients, train_dp
from bigtrain_lab.privacy.mechanisms import laplace_mechanism, randomized_response, rr_variance
from bigtrain_lab.privacy.membership import attack_advantage, dp_advantage_bound, per_example_losses

__all__ = ["DEFAULT_DELTA", "attack_advantage", "clip_and_noise", "dp_advantage_bound", "epsilon", "laplace_mechanism",
           "noise_multiplier_for", "per_example_losses", "per_sample_gradients", "randomized_response", "rr_variance",
           "train_dp"]
