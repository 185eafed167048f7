"""Attacks on models and their defences, lesson 12 (``notebooks/12_model_security.ipynb``).

* ``adversarial``: FGSM, PGD (L-inf) and adversarial training; accuracy under attack, (transfer) success rate.
* ``extraction``: copying a model through its prediction API (labels or probabilities), query budgets.
* ``backdoor``: a trigger planted by poisoning training data; the spectral-signature filter against it.
* ``at_rest``: weights encrypted at rest with AES-256-GCM through safetensors bytes; the unauthenticated
  mistake (AES-CTR). Unsafe pickles and SHA-256 records live in ``bigtrain_lab.deploy.saving``.
"""

from bigtrain_lab.security.adversarial import (
    accuracy_under_attack,
    adversarial_training,
    attack,
    attack_success_rate,
    fgsm,
    pgd,
)
from bigtrain_lab.security.at_rest import (
    DecryptionError,
    decrypt_file,
    encrypt_file,
    generate_key,
    load_encrypted,
    save_encrypted,
)
from bigtrain_lab.security.backdoor import (
    backdoor_success_rate,
    detection_report,
    poison,
    representations,
    spectral_filter,
    spectral_scores,
    stamp_trigger,
)
from bigtrain_lab.security.extraction import QueryAPI, QueryLimitExceeded, agreement, query_inputs, steal

__all__ = ["DecryptionError", "QueryAPI", "QueryLimitExceeded", "accuracy_under_attack", "adversarial_training",
           "agreement", "attack", "attack_success_rate", "backdoor_success_rate", "decrypt_file",
           "detection_report", "encrypt_file", "fgsm", "generate_key", "load_encrypted", "pgd", "poison", "query_inputs",
           "representations", "save_encrypted", "spectral_filter", "spectral_scores", "stamp_trigger", "steal"]
