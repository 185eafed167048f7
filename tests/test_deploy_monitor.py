"""bigtrain_lab.deploy.monitor: PSI by hand and on samples, KS, the per-feature drift report, prediction
drift, shadow agreement and the shifted stream."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from bigtrain_lab.deploy import (
    PSI_MAJOR,
    PSI_MODERATE,
    SHIFTS,
    apply_shift,
    drift_report,
    ks_drift,
    prediction_drift,
    psi,
    psi_categorical,
    shadow_agreement,
    shifted_stream,
    train_digits_mlp,
)
from bigtrain_lab.models import MLP


def _hand_psi(ref_frac, cur_frac, eps=1e-4):
    return sum((max(c, eps) - max(r, eps)) * math.log(max(c, eps) / max(r, eps)) for r, c in zip(ref_frac, cur_frac, strict=True))


def test_psi_matches_a_hand_computed_example():
    ref = np.arange(100)  # quartile edges 24.75, 49.5, 74.25
    cur = np.r_[np.zeros(10), np.full(20, 30), np.full(30, 60), np.full(40, 90)]
    assert psi(ref, cur, bins=4) == pytest.approx(_hand_psi([0.25] * 4, [0.1, 0.2, 0.3, 0.4]), rel=1e-12)
    assert psi(ref, cur, bins=4) == pytest.approx(0.2282, abs=1e-4)
    # an empty bin counts as eps: all current values in the top quartile
    assert psi(ref, np.full(50, 99.0), bins=4) == pytest.approx(_hand_psi([0.25] * 4, [0, 0, 0, 1]), rel=1e-12)
    assert psi(ref, ref, bins=4) == 0.0


def test_psi_bins_a_value_on_an_edge_to_the_right_and_merges_repeated_quantiles():
    ref = np.r_[np.zeros(60), np.arange(1, 41)]  # 60 % zeros: the 10 % ... 60 % quantiles are all 0
    assert psi(ref, ref) == 0.0
    # zeros fall in the bin [0, next edge): moving them to -1 (the open bin below) is a large shift
    assert psi(ref, np.r_[np.full(60, -1.0), np.arange(1, 41)]) > PSI_MAJOR


def test_psi_is_small_for_one_distribution_and_large_for_a_shifted_one():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    assert psi(ref, rng.normal(size=20_000)) < 0.01
    assert PSI_MODERATE < psi(ref, rng.normal(0.4, 1, size=20_000)) < PSI_MAJOR
    assert psi(ref, rng.normal(1.0, 1, size=20_000)) > PSI_MAJOR


def test_psi_categorical_and_its_arguments():
    assert psi_categorical([0, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx(_hand_psi([0.5, 0.5], [0.75, 0.25]))
    assert psi_categorical([0, 1], [0, 1], categories=3) == 0.0
    with pytest.raises(ValueError, match="bins"):
        psi([1, 2, 3], [1, 2], bins=1)
    with pytest.raises(ValueError, match="empty"):
        psi([], [1.0])
    with pytest.raises(ValueError, match="inf or NaN"):
        psi([1.0, np.nan], [1.0])


def test_ks_drift_is_scipys_two_sample_test():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(0.3, 1, size=200)
    expected = stats.ks_2samp(a, b)
    assert ks_drift(a, b) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))


def test_the_drift_report_flags_the_shifted_feature_only():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(1000, 20))
    cur = rng.normal(size=(500, 20))
    cur[:, 3] += 0.8
    report = drift_report(ref, cur, feature_names=[f"f{j}" for j in range(20)])
    assert [r["feature"] for r in report if r["drifted"]] == ["f3"]
    assert report[3]["psi_level"] == "major" and report[3]["p_value"] < 0.05 / 20
    assert all(r["psi"] < PSI_MODERATE for j, r in enumerate(report) if j != 3)
    with pytest.raises(ValueError, match="features"):
        drift_report(ref, cur[:, :5])


def test_bonferroni_keeps_unshifted_features_quiet():
    rng = np.random.default_rng(3)
    flagged = [sum(r["drifted"] for r in drift_report(rng.normal(size=(200, 50)), rng.normal(size=(200, 50))))
               for _ in range(5)]
    assert sum(flagged) <= 1  # at alpha / 50 per feature, about 0.05 false alarms per report


def test_prediction_drift_and_shadow_agreement():
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(10), size=400)
    same = prediction_drift(probs, probs)
    assert same["psi_class"] == 0.0 and same["psi_confidence"] == 0.0 and same["p_confidence"] == 1.0
    confident = np.eye(10)[rng.integers(0, 3, size=400)] * 0.9 + 0.01  # fewer classes, more confident
    shifted = prediction_drift(probs, confident)
    assert shifted["psi_class"] > PSI_MAJOR and shifted["cur_confidence"] > shifted["ref_confidence"]
    assert shadow_agreement([0, 1, 2, 3], [0, 1, 2, 0]) == 0.75
    assert shadow_agreement(torch.eye(3), torch.eye(3)[[0, 2, 1]]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="one length"):
        shadow_agreement([0, 1], [0])


def test_every_shift_is_the_identity_at_severity_zero_and_moves_pixels_above():
    X = torch.rand(30, 64)
    for kind in SHIFTS:
        assert torch.equal(apply_shift(X, kind, 0.0, generator=torch.Generator().manual_seed(0)), X), kind
        assert not torch.equal(apply_shift(X, kind, 1.0, generator=torch.Generator().manual_seed(0)), X), kind
    moved = apply_shift(X, "translate", 1.0, generator=torch.Generator().manual_seed(0)).view(-1, 8, 8)
    assert torch.equal(moved[:, :, :2], torch.zeros(30, 8, 2))  # severity 1: every image moved by 2 pixels
    assert torch.equal(moved[:, :, 2:], X.view(-1, 8, 8)[:, :, :6])
    with pytest.raises(ValueError, match="kind"):
        apply_shift(X, "blur", 0.5)


def test_drift_alarms_rise_as_accuracy_falls_in_the_shifted_stream():
    model, data = train_digits_mlp(hidden=(64,), epochs=8)
    torch.manual_seed(1)
    shadow = MLP(64, (32,), 10)
    from bigtrain_lab.fit import fit_classifier

    fit_classifier(shadow, data.X_train, data.y_train, epochs=8, seed=1)
    rows = shifted_stream(model, shadow, data.X_val, data.X_test, data.y_test, kind="brightness", windows=4,
                          window_size=150)
    assert [r["severity"] for r in rows] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    first, last = rows[0], rows[-1]
    assert first["fraction_drifted"] < 0.1 and last["fraction_drifted"] > 0.9
    assert first["accuracy"] > 0.85 and last["accuracy"] < first["accuracy"] - 0.2
    assert rows[1]["mean_psi"] > PSI_MAJOR and rows[1]["accuracy"] > 0.85  # the inputs alarm first
    assert last["psi_class"] > first["psi_class"]
    assert set(first["psi"]) == {19, 27, 36, 44}
    assert all(0 <= r["shadow_agreement"] <= 1 for r in rows)
