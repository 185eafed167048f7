"""bigtrain_lab.preprocess against scikit-learn, and the leakage experiments' direction."""

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from bigtrain_lab import preprocess


@pytest.fixture
def tables():
    rng = np.random.default_rng(0)
    train = rng.normal(3, 2, (50, 4))
    train[:, 2] = 5.0  # constant column
    return train, rng.normal(3, 2, (10, 4))


def test_standardize_equals_standard_scaler(tables):
    train, test = tables
    scaler = StandardScaler().fit(train)
    a, b = preprocess.standardize(train, test)
    np.testing.assert_allclose(a, scaler.transform(train), atol=1e-12)
    np.testing.assert_allclose(b, scaler.transform(test), atol=1e-12)
    assert not np.isnan(a).any() and np.all(a[:, 2] == 0)


def test_min_max_equals_min_max_scaler(tables):
    train, test = tables
    scaler = MinMaxScaler().fit(train)
    a, b = preprocess.min_max_scale(train, test)
    np.testing.assert_allclose(a, scaler.transform(train), atol=1e-12)
    np.testing.assert_allclose(b, scaler.transform(test), atol=1e-12)


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        preprocess.standardize(np.zeros(3), np.zeros(3))


def test_outlier_fences_and_clipping(tables):
    train, test = tables
    lo, hi = preprocess.iqr_bounds(train, 1.5)
    q1, q3 = np.percentile(train, [25, 75], axis=0)
    np.testing.assert_allclose(hi, q3 + 1.5 * (q3 - q1))
    a, b = preprocess.clip_outliers(train, test * 100)
    assert (b <= hi + 1e-12).all() and (b >= lo - 1e-12).all()
    np.testing.assert_array_equal(a, np.clip(train, lo, hi))


def test_add_missing_is_seeded_and_column_limited(tables):
    train, _ = tables
    a = preprocess.add_missing(train, 0.3, seed=1, columns=[0, 1])
    b = preprocess.add_missing(train, 0.3, seed=1, columns=[0, 1])
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    assert not np.isnan(a[:, 2:]).any() and 0.1 < np.isnan(a[:, :2]).mean() < 0.5
    assert not np.isnan(train).any()  # input untouched


def test_tabular_pipeline_handles_missing_and_unknown_categories():
    rng = np.random.default_rng(0)
    num = rng.normal(size=(60, 2))
    cat = rng.choice(["a", "b"], 60).astype(object)
    y = (num[:, 0] + (cat == "a") > 0.5).astype(int)
    X = np.c_[num.astype(object), cat]
    X[0, 0] = np.nan
    pipe = preprocess.make_tabular_pipeline([0, 1], [2]).fit(X, y)
    X_new = np.c_[rng.normal(size=(3, 2)).astype(object), np.array(["c", "a", None], dtype=object)]
    assert pipe.predict(X_new).shape == (3,)


def test_selection_leakage_is_optimistic_and_pipeline_is_not():
    res = preprocess.selection_leakage(n_samples=80, n_features=1000, k=10, seed=0)
    assert res["leaky"] > 0.7 and abs(res["pipeline"] - 0.5) < 0.2


def test_scaler_leakage_returns_one_score_per_seed():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    res = preprocess.scaler_leakage(X, y, seeds=[0, 1], folds=3)
    assert res["leaky"].shape == res["pipeline"].shape == (2,)
    assert preprocess.scaler_leakage(X, y, seeds=[0], folds=2, train_size=0.5)["pipeline"].shape == (1,)


def test_psnr():
    a = np.zeros((4, 4))
    assert preprocess.psnr(a, a) == float("inf")
    assert preprocess.psnr(a, a + 0.1) == pytest.approx(20.0)
