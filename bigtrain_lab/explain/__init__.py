"""Explaining models: local (LIME, SHAP, gradients, Grad-CAM), attention, global surrogates, sanity checks.

Lesson: ``notebooks/08_explainability.ipynb``. Modules:

- ``lime_shap``: Shapley values (exact, written out) and LIME (minimal, written out) plus the ``lime`` and
  ``shap`` libraries' explainers, all returning NumPy arrays.
- ``gradients``: saliency, gradient x input, Integrated Gradients (checked against captum), Grad-CAM.
- ``attention``: TinyGPT attention maps and attention rollout.
- ``global_surrogates``: permutation importance, surrogate tree and its fidelity, rule extraction.
- ``sanity``: model-randomisation test, LIME stability across seeds, rank agreement between methods.
"""

from bigtrain_lab.explain.attention import attention_maps, attention_rollout, mass_at_offset, token_saliency
from bigtrain_lab.explain.global_surrogates import (
    Rule,
    Surrogate,
    extract_rules,
    fidelity,
    fit_surrogate_tree,
    permutation_importance,
    rules_predict,
)
from bigtrain_lab.explain.gradients import (
    captum_integrated_gradients,
    completeness_gap,
    grad_cam,
    gradient_x_input,
    integrated_gradients,
    saliency,
)
from bigtrain_lab.explain.lime_shap import (
    exact_shap,
    exact_shapley,
    gradient_shap,
    lime_image_weights,
    lime_tabular_weights,
    local_linear_lime,
    permutation_shap,
    shapley_by_permutations,
    tree_shap,
)
from bigtrain_lab.explain.sanity import (
    cascading_randomizations,
    lime_stability,
    model_randomization_test,
    rank_agreement,
    top_k_overlap,
)

__all__ = [
    "Rule",
    "Surrogate",
    "attention_maps",
    "attention_rollout",
    "captum_integrated_gradients",
    "cascading_randomizations",
    "completeness_gap",
    "exact_shap",
    "exact_shapley",
    "extract_rules",
    "fidelity",
    "fit_surrogate_tree",
    "grad_cam",
    "gradient_shap",
    "gradient_x_input",
    "integrated_gradients",
    "lime_image_weights",
    "lime_stability",
    "lime_tabular_weights",
    "local_linear_lime",
    "mass_at_offset",
    "model_randomization_test",
    "permutation_importance",
    "permutation_shap",
    "rank_agreement",
    "rules_predict",
    "saliency",
    "shapley_by_permutations",
    "token_saliency",
    "top_k_overlap",
    "tree_shap",
]
