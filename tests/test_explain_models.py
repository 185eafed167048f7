"""Gradient attributions, attention, surrogates and sanity checks of bigtrain_lab.explain, against captum,
scikit-learn and the definitions."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from sklearn.inspection import permutation_importance as sk_permutation_importance
from sklearn.linear_model import LogisticRegression

from bigtrain_lab.explain import (
    attention_maps,
    attention_rollout,
    captum_integrated_gradients,
    cascading_randomizations,
    completeness_gap,
    extract_rules,
    fidelity,
    fit_surrogate_tree,
    grad_cam,
    gradient_shap,
    gradient_x_input,
    integrated_gradients,
    lime_stability,
    mass_at_offset,
    model_randomization_test,
    permutation_importance,
    rank_agreement,
    rules_predict,
    saliency,
    token_saliency,
    top_k_overlap,
)
from bigtrain_lab.explain.gradients import riemann_alphas, target_output
from bigtrain_lab.models import CNN, MLP, GPTConfig, TinyGPT


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return MLP(5, (16,), 3, activation="tanh").double().eval()


def test_integrated_gradients_equals_captum_riemann_right(mlp):
    x = torch.randn(4, 5, dtype=torch.float64)
    b = torch.randn(4, 5, dtype=torch.float64)
    for target in (1, torch.tensor([0, 1, 2, 1])):
        for steps in (2, 7, 50):
            ours = integrated_gradients(mlp, x, b, target=target, steps=steps, batch_size=9)
            assert torch.allclose(ours, captum_integrated_gradients(mlp, x, b, target=target, steps=steps),
                                  rtol=1e-6, atol=1e-8)


def test_integrated_gradients_completeness_improves_with_steps(mlp):
    x = torch.randn(3, 5, dtype=torch.float64)
    gaps = [completeness_gap(mlp, x, None, integrated_gradients(mlp, x, None, target=0, steps=s), 0).abs().max()
            for s in (4, 32, 256)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-2


def test_integrated_gradients_of_a_linear_model_is_exact():
    lin = nn.Linear(4, 1).double()
    x, b = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    ig = integrated_gradients(lin, x, b, steps=3)
    assert torch.allclose(ig, lin.weight[0].detach() * (x - b))


def test_saliency_and_gradient_x_input_against_autograd(mlp):
    x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(mlp(x)[:, 2].sum(), x)
    assert torch.allclose(saliency(mlp, x, 2), grad.abs())
    assert torch.allclose(saliency(mlp, x, 2, absolute=False), grad)
    assert torch.allclose(gradient_x_input(mlp, x, 2), grad * x.detach())


def test_target_output_errors(mlp):
    x = torch.randn(2, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="target"):
        target_output(mlp, x, None)
    with pytest.raises(ValueError, match="out of range"):
        target_output(mlp, x, 3)
    with pytest.raises(ValueError, match="entries"):
        target_output(mlp, x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="steps"):
        riemann_alphas(0)


def test_grad_cam_equals_captum_layer_grad_cam():
    from captum.attr import LayerGradCam

    torch.manual_seed(0)
    cnn = CNN().eval()
    x = torch.randn(3, 1, 8, 8)
    target = torch.tensor([1, 4, 7])
    ours = grad_cam(cnn, x, target)
    theirs = LayerGradCam(cnn, cnn.features[3]).attribute(x, target=target, relu_attributions=True)[:, 0]
    assert ours.shape == (3, 8, 8)
    assert torch.allclose(ours, theirs, atol=1e-6)
    # an earlier, coarser layer is resized to the input
    pooled = grad_cam(cnn, x, target, layer=cnn.features[4])
    assert pooled.shape == (3, 8, 8)
    with pytest.raises(ValueError, match="layer"):
        grad_cam(MLP(4, (3,), 2), torch.randn(1, 4), 0)


def test_gradient_shap_of_a_linear_model():
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Linear(3, 2))
    x = torch.randn(2, 3)
    baseline = torch.randn(1, 3)
    values = gradient_shap(lin, x, baseline.repeat(10, 1), target=1, nsamples=50, seed=0)
    # a linear model and a one-point background: expected gradients = w * (x - baseline), exactly
    expected = (lin[0].weight[1] * (x - baseline)).detach().numpy()
    assert values.shape == (2, 3)
    assert np.allclose(values, expected, atol=1e-5)


@pytest.fixture(scope="module")
def gpt():
    torch.manual_seed(0)
    return TinyGPT(GPTConfig(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=16))


def test_attention_maps_are_causal_distributions(gpt):
    maps = attention_maps(gpt, torch.randint(0, 11, (10,)))
    assert maps.shape == (2, 2, 10, 10)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 2, 10))
    assert torch.all(maps.triu(diagonal=1) == 0)
    batch = torch.randint(0, 11, (3, 10))
    torch.testing.assert_close(attention_maps(gpt, batch)[:, 1], attention_maps(gpt, batch[1]))  # one function
    with pytest.raises(ValueError, match="a sequence"):
        attention_maps(gpt, torch.zeros(1, 2, 5, dtype=torch.long))


def test_attention_rollout_definition():
    torch.manual_seed(1)
    maps = torch.softmax(torch.randn(3, 2, 5, 5), dim=-1)
    rollout = attention_rollout(maps)
    expected = torch.eye(5)
    for layer in maps.mean(1):
        a = (layer + torch.eye(5)) / 2
        expected = (a / a.sum(-1, keepdim=True)) @ expected
    assert torch.allclose(rollout, expected)
    assert torch.allclose(rollout.sum(-1), torch.ones(5))
    assert torch.allclose(attention_rollout(maps[:1], residual=False), maps[0].mean(0))
    with pytest.raises(ValueError, match="head_fusion"):
        attention_rollout(maps, head_fusion="min")


def test_mass_at_offset_and_token_saliency(gpt):
    lag = torch.zeros(6, 6)
    lag[torch.arange(2, 6), torch.arange(0, 4)] = 1.0
    assert mass_at_offset(lag, 2) == 1.0 and mass_at_offset(lag, 0) == 0.0
    sal = token_saliency(gpt, torch.randint(0, 11, (8,)))
    assert sal.shape == (8, 8)
    assert torch.allclose(sal.sum(-1), torch.ones(8))
    assert torch.all(sal.triu(diagonal=1).abs() < 1e-6)  # causal: no gradient from future positions


def test_permutation_importance_against_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (2 * X[:, 0] + X[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    ours, _ = permutation_importance(model.score, X, y, n_repeats=20, seed=0)
    theirs = sk_permutation_importance(model, X, y, n_repeats=20, random_state=0).importances_mean
    assert np.allclose(ours, theirs, atol=0.02)
    assert ours[0] > ours[1] > max(abs(ours[2]), abs(ours[3]))


def test_surrogate_tree_fidelity_and_rules():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    black_box = lambda Z: ((Z[:, 0] > 0) & (Z[:, 1] < 0.5)).astype(int)  # noqa: E731 - a depth-2 rule
    s = fit_surrogate_tree(black_box, X[:400], X[400:], max_depth=2)
    assert s.fidelity > 0.97 and s.train_fidelity == 1.0
    rules = extract_rules(s.tree)
    assert len(rules) == s.tree.get_n_leaves()
    assert np.array_equal(rules_predict(rules, X), s.tree.predict(X))
    assert sum(r.support for r in rules) == 400
    assert "IF" in rules[0].text(["a", "b", "c"]) and "THEN" in rules[0].text()
    assert fidelity(s.tree, black_box, X) == np.mean(s.tree.predict(X) == black_box(X))
    with pytest.raises(ValueError, match="no rule"):
        rules_predict(rules[:1], X)


def test_rank_agreement_and_top_k():
    a = np.array([5.0, -4.0, 3.0, 0.1, 0.0])
    assert rank_agreement(a, -a).spearman == pytest.approx(1.0)  # signs ignored
    assert top_k_overlap(a, np.array([0.0, 0.1, 3.0, -4.0, 5.0]), 2) == 0.0
    assert rank_agreement(a, a[::-1], k=3).top_k == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        top_k_overlap(a, a, 0)


def test_lime_stability_of_a_deterministic_and_a_noisy_explainer():
    same = lime_stability(lambda seed: np.arange(6.0), seeds=range(3), k=2)
    assert same["spearman"] == pytest.approx(1.0) and same["top_k"] == 1.0 and same["sign_flips"] == 0.0
    noisy = lime_stability(lambda seed: np.random.default_rng(seed).normal(size=30), seeds=range(4), k=5)
    assert noisy["spearman"] < 0.5
    with pytest.raises(ValueError):
        lime_stability(lambda seed: np.zeros(3), seeds=[0])


def test_cascading_randomizations_go_from_the_output_down():
    torch.manual_seed(0)
    model = MLP(4, (8, 8), 2)
    copies = cascading_randomizations(model, seed=0)
    assert [name for name, _ in copies] == ["net.5", "net.3", "net.1"]
    first = dict(copies[0][1].named_parameters())
    original = dict(model.named_parameters())
    assert not torch.equal(first["net.5.weight"], original["net.5.weight"])
    assert torch.equal(first["net.1.weight"], original["net.1.weight"])
    last = dict(copies[-1][1].named_parameters())
    assert all(not torch.equal(last[k], original[k]) for k in original)


def test_randomization_test_separates_model_dependent_maps():
    torch.manual_seed(0)
    cnn = CNN().eval()
    x = torch.rand(6, 1, 8, 8)
    target = cnn(x).argmax(1)
    result = model_randomization_test(cnn, x, target, {
        "saliency": lambda m, x, t: saliency(m, x, t),
        "input": lambda m, x, t: x.detach().clone(),
    }, image_shape=(8, 8))
    assert len(result.stages) == 4
    assert result.spearman["input"] == pytest.approx([1.0] * 4)
    assert result.ssim["input"] == pytest.approx([1.0] * 4)
    assert result.spearman["saliency"][-1] < 0.9
