"""bigtrain_lab.data: tabular splits, sample photos and the standard-library character corpus."""

from __future__ import annotations

import dataclasses
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from bigtrain_lab import data
from bigtrain_lab.data import (
    CharCorpus,
    Dataset,
    available_datasets,
    load_dataset,
    load_sample_photos,
    load_text_corpus,
    make_imbalanced,
)

BUNDLED_SIZES = {"digits": 1797, "breast_cancer": 569, "wine": 178, "iris": 150}
GENERATED_SIZES = {
    "moons": 1000, "circles": 1000, "blobs": 1000, "classification": 1000, "imbalanced": 2000,
    "regression": 1000, "friedman1": 1000,
}
ALL_SIZES = {**BUNDLED_SIZES, **GENERATED_SIZES}
REGRESSION = {"regression", "friedman1"}
STDLIB = str(Path(sysconfig.get_paths()["stdlib"]).resolve())


def splits(ds: Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(ds.X_train, ds.y_train), (ds.X_val, ds.y_val), (ds.X_test, ds.y_test)]


def arrays(ds: Dataset) -> list[np.ndarray]:
    return [a for pair in splits(ds) for a in pair]


def max_class_deviation(ds: Dataset) -> float:
    """Largest |count of class k in a split - (overall share of k) * split size| over splits and classes."""
    y_all = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    share = np.bincount(y_all) / len(y_all)
    return max(
        float(np.abs(np.bincount(y, minlength=len(share)) - share * len(y)).max())
        for _, y in splits(ds)
    )


# ---------------------------------------------------------------------------------------------------
# load_dataset
# ---------------------------------------------------------------------------------------------------


def test_available_datasets():
    assert available_datasets() == sorted(ALL_SIZES)


@pytest.mark.parametrize("name", sorted(ALL_SIZES))
def test_shapes_dtypes_and_metadata(name):
    ds = load_dataset(name)
    n = ALL_SIZES[name]
    assert ds.name == name
    assert sum(len(y) for _, y in splits(ds)) == n
    for X, y in splits(ds):
        assert X.dtype == np.float64 and X.ndim == 2 and X.shape == (len(y), ds.n_features)
        assert y.ndim == 1
        assert np.isfinite(X).all()
    # sklearn rounds the test share up and the rest down, so sizes are within one of the fractions
    assert abs(len(ds.y_test) - 0.15 * n) <= 1
    assert abs(len(ds.y_val) - 0.15 * n) <= 1.5
    assert len(ds.feature_names) == ds.n_features
    assert all(isinstance(f, str) for f in ds.feature_names)
    assert isinstance(ds.description, str) and ds.description and "\n" not in ds.description
    assert name in ds.description
    if name in REGRESSION:
        assert ds.task == "regression"
        assert ds.target_names == [] and ds.n_classes == 0
        assert all(y.dtype == np.float64 for _, y in splits(ds))
    else:
        assert ds.task == "classification"
        assert all(y.dtype == np.int64 for _, y in splits(ds))
        labels = np.concatenate([y for _, y in splits(ds)])
        assert ds.n_classes == len(ds.target_names) >= 2
        assert set(np.unique(labels)) == set(range(ds.n_classes))


def test_bundled_metadata_comes_from_sklearn():
    ds = load_dataset("breast_cancer")
    assert ds.target_names == ["malignant", "benign"]
    assert ds.feature_names[0] == "mean radius" and ds.n_features == 30
    assert load_dataset("iris").target_names == ["setosa", "versicolor", "virginica"]
    assert load_dataset("digits").target_names == [str(k) for k in range(10)]


def test_digits_splits_are_disjoint_and_cover_the_data_with_labels_attached():
    bunch = load_digits()
    original = {row.tobytes(): int(label) for row, label in zip(bunch.data, bunch.target, strict=True)}
    assert len(original) == len(bunch.data), "digits has no duplicate rows, so rows identify samples"
    ds = load_dataset("digits", seed=3)
    seen: dict[bytes, int] = {}
    for X, y in splits(ds):
        for row, label in zip(X, y, strict=True):
            key = row.tobytes()
            assert key not in seen, "a sample appears in two splits (or twice)"
            seen[key] = int(label)
    assert seen == original  # every sample exactly once, with its own label


@pytest.mark.parametrize("name", ["moons", "digits", "regression", "imbalanced"])
def test_same_seed_same_arrays(name):
    a, b = load_dataset(name, seed=7), load_dataset(name, seed=7)
    for x, y in zip(arrays(a), arrays(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.description == b.description


@pytest.mark.parametrize("name", ["moons", "digits", "regression", "imbalanced"])
def test_different_seed_different_split(name):
    a, b = load_dataset(name, seed=0), load_dataset(name, seed=1)
    assert a.X_train.shape == b.X_train.shape
    assert not np.array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_test, b.X_test)


def sorted_rows(X: np.ndarray) -> np.ndarray:
    return X[np.lexsort(X.T[::-1])]


def test_seed_changes_generated_data_but_not_bundled_data():
    def all_rows(ds):
        return sorted_rows(np.vstack([ds.X_train, ds.X_val, ds.X_test]))

    assert not np.array_equal(all_rows(load_dataset("moons", seed=0)), all_rows(load_dataset("moons", seed=1)))
    np.testing.assert_array_equal(all_rows(load_dataset("wine", seed=0)), all_rows(load_dataset("wine", seed=1)))


@pytest.mark.parametrize("name", ["digits", "imbalanced", "iris", "classification"])
def test_stratified_splits_keep_class_proportions(name):
    for seed in range(3):
        assert max_class_deviation(load_dataset(name, seed=seed)) <= 1.5


def test_unstratified_splits_drift():
    # The same split without stratification is visibly off: the stratify flag really does something.
    assert max_class_deviation(load_dataset("digits", seed=0, stratify=False)) > 3


def test_stratify_is_ignored_for_regression():
    a = load_dataset("friedman1", stratify=True)
    b = load_dataset("friedman1", stratify=False)
    np.testing.assert_array_equal(a.y_train, b.y_train)


def test_imbalanced_ratio():
    ds = load_dataset("imbalanced")
    y = np.concatenate([y for _, y in splits(ds)])
    assert len(y) == 2000
    assert y.mean() == pytest.approx(1 / 21, abs=0.002)  # 1:20, about 4.8 % positives
    assert ds.target_names == ["negative", "positive"]
    for _, split_y in splits(ds):  # every split holds positives (stratified)
        assert split_y.sum() >= 10
    y4 = np.concatenate([y for _, y in splits(load_dataset("imbalanced", ratio=4, n_samples=500))])
    assert len(y4) == 500 and y4.mean() == pytest.approx(0.2, abs=0.01)


def test_make_imbalanced_directly():
    X, y = make_imbalanced(n_samples=1000, ratio=9, seed=2)
    assert X.shape == (1000, 20) and X.dtype == np.float64 and y.dtype == np.int64
    assert y.sum() == pytest.approx(100, abs=2)
    X2, y2 = make_imbalanced(n_samples=1000, ratio=9, seed=2)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_generator_kwargs_are_used():
    ds = load_dataset("blobs", n_samples=200, n_features=5, centers=4)
    assert sum(len(y) for _, y in splits(ds)) == 200
    assert ds.n_features == 5 and ds.n_classes == 4
    # noise=0: the outer moon (class 0) lies exactly on the unit circle
    moons = load_dataset("moons", noise=0.0)
    X0 = np.vstack([X[y == 0] for X, y in splits(moons)])
    np.testing.assert_allclose(np.linalg.norm(X0, axis=1), 1.0)
    noisy = load_dataset("moons", noise=0.3)
    X0n = np.vstack([X[y == 0] for X, y in splits(noisy)])
    assert np.abs(np.linalg.norm(X0n, axis=1) - 1.0).max() > 0.1


def test_friedman1_without_noise_follows_its_formula():
    ds = load_dataset("friedman1", noise=0.0)
    for X, y in splits(ds):
        expected = (
            10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2 + 10 * X[:, 3] + 5 * X[:, 4]
        )
        np.testing.assert_allclose(y, expected)


@pytest.mark.parametrize(("val_size", "test_size"), [(0.0, 0.2), (0.2, 0.0), (0.0, 0.0)])
def test_zero_sized_splits_are_empty_with_the_right_columns(val_size, test_size):
    ds = load_dataset("wine", val_size=val_size, test_size=test_size)
    for size, (X, y) in ((val_size, splits(ds)[1]), (test_size, splits(ds)[2])):
        if size == 0:
            assert X.shape == (0, 13) and X.dtype == np.float64
            assert y.shape == (0,) and y.dtype == np.int64
    assert sum(len(y) for _, y in splits(ds)) == 178
    empty_regression = load_dataset("regression", val_size=0.0)
    assert empty_regression.X_val.shape == (0, 10) and empty_regression.y_val.dtype == np.float64


def test_custom_sizes():
    ds = load_dataset("moons", val_size=0.1, test_size=0.3)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (600, 100, 300)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'digits'") as info:
        load_dataset("digit")
    message = str(info.value)
    assert "'digit'" in message
    for name in available_datasets():
        assert name in message
    with pytest.raises(ValueError, match="Did you mean 'breast_cancer'"):
        load_dataset("breastcancer")
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'") as info:
        load_dataset("mnist")
    assert "iris" in str(info.value)


def test_name_is_normalised():
    assert load_dataset("Breast-Cancer").name == "breast_cancer"
    assert load_dataset(" Moons ").name == "moons"


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="name must be a str"):
        load_dataset(3)


def test_unknown_generator_kwarg_names_the_accepted_ones():
    with pytest.raises(ValueError, match=r"\['nois'\].*'moons'.*\['n_samples', 'noise'\]"):
        load_dataset("moons", nois=0.1)
    with pytest.raises(ValueError, match="takes no generator arguments"):
        load_dataset("iris", n_samples=10)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, r"seed must be .*-1"),
        ({"seed": 1.5}, r"seed must be .*1\.5"),
        ({"seed": True}, r"seed must be .*True"),
        ({"val_size": 1.0}, r"val_size must be .*1\.0"),
        ({"val_size": -0.1}, r"val_size must be .*-0\.1"),
        ({"test_size": "0.2"}, r"test_size must be .*'0\.2'"),
        ({"val_size": 0.5, "test_size": 0.5}, r"val_size \+ test_size must be below 1.*0\.5"),
        ({"n_samples": 0}, r"n_samples must be a positive integer, got 0"),
        ({"n_samples": 10.5}, r"n_samples must be .*10\.5"),
        ({"noise": -1.0}, r"noise must be .*-1\.0"),
    ],
)
def test_bad_arguments_raise_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset("moons", **kwargs)


def test_bad_ratio_raises_with_the_value():
    with pytest.raises(ValueError, match=r"ratio must be .*0\.5"):
        load_dataset("imbalanced", ratio=0.5)


def test_unsplittable_request_says_which_dataset():
    with pytest.raises(ValueError, match="Cannot split dataset 'moons' \\(4 samples\\)"):
        load_dataset("moons", n_samples=4)


def test_as_tensors():
    ds = load_dataset("iris")
    tensors = ds.as_tensors()
    assert len(tensors) == 6
    for tensor, array in zip(tensors, arrays(ds), strict=True):
        assert tuple(tensor.shape) == array.shape
        np.testing.assert_allclose(tensor.numpy(), array, rtol=1e-6)
    assert [t.dtype for t in tensors] == [torch.float32, torch.int64] * 3
    reg = load_dataset("regression", val_size=0.0).as_tensors()
    assert [t.dtype for t in reg] == [torch.float32] * 6
    assert tuple(reg[2].shape) == (0, 10)
    tensors[0][0, 0] = 123.0  # copies: the dataset is untouched
    assert ds.X_train[0, 0] != 123.0


def test_dataset_is_frozen_and_has_a_short_repr():
    ds = load_dataset("wine")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.X_train = None
    assert repr(ds) == "Dataset(name='wine', task='classification', n_features=13, n_classes=3, train=124, val=27, test=27)"


# ---------------------------------------------------------------------------------------------------
# load_sample_photos
# ---------------------------------------------------------------------------------------------------


def test_sample_photos():
    photos = load_sample_photos()
    assert list(photos) == ["china", "flower"]
    for image in photos.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 10  # a photo, not a blank
    photos["china"][:] = 0
    assert load_sample_photos()["china"].any()  # fresh copies


# ---------------------------------------------------------------------------------------------------
# Corpus construction (a small fake standard library)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_stdlib(tmp_path):
    files = {
        "b.py": "B = 1\n",
        "b/c.py": "C = 2\n",
        "a.py": "A = 0",  # no trailing newline: one is added
        "empty.py": "",
        "testing.py": "T = 't'\n",  # only directories named test/tests are excluded
        "pkg/__init__.py": "# pkg\n",
        "pkg/test/t.py": "EXCLUDED\n",
        "pkg/tests/t.py": "EXCLUDED\n",
        "test/t.py": "EXCLUDED\n",
        "idlelib/i.py": "EXCLUDED\n",
        "lib2to3/l.py": "EXCLUDED\n",
        "site-packages/s.py": "EXCLUDED\n",
        "dist-packages/d.py": "EXCLUDED\n",
        "__pycache__/x.py": "EXCLUDED\n",
        "notes.txt": "EXCLUDED\n",
        "uni.py": "π = 3.14  # ü\n",
    }
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (tmp_path / "latin1.py").write_bytes("X = 'caf\xe9'\n".encode("latin-1"))  # not UTF-8: skipped
    return tmp_path


def test_corpus_files_exclusions_and_order(fake_stdlib):
    rels = [rel for rel, _ in data._corpus_files(fake_stdlib)]
    # sorted as strings: "b.py" < "b/c.py" because "." < "/"
    assert rels == ["a.py", "b.py", "b/c.py", "empty.py", "latin1.py", "pkg/__init__.py", "testing.py", "uni.py"]


def test_corpus_text_exact(fake_stdlib):
    text, n_files = data._build_corpus_text.__wrapped__(str(fake_stdlib))
    assert n_files == 7  # latin1.py skipped
    assert text == (
        "# ---- a.py ----\nA = 0\n"
        "# ---- b.py ----\nB = 1\n"
        "# ---- b/c.py ----\nC = 2\n"
        "# ---- empty.py ----\n"
        "# ---- pkg/__init__.py ----\n# pkg\n"
        "# ---- testing.py ----\nT = 't'\n"
        "# ---- uni.py ----\nπ = 3.14  # ü\n"
    )


def test_split_of_a_small_corpus(fake_stdlib):
    text, n_files = data._build_corpus_text.__wrapped__(str(fake_stdlib))
    ids, vocab = data._encode_with_vocab(text)
    assert list(vocab) == sorted(set(text))
    corpus = data._split_corpus(ids, vocab, n_files, None, 0.25)
    assert len(corpus) == len(text) and corpus.n_files == 7
    assert len(corpus.train) == int(len(text) * 0.75)
    assert corpus.decode(corpus.train) + corpus.decode(corpus.val) == text
    short = data._split_corpus(ids, vocab, n_files, 10, 0.5)
    assert corpus.vocab == short.vocab  # ids do not depend on max_chars
    assert short.decode(short.train) == text[:5] and short.decode(short.val) == text[5:10]


# ---------------------------------------------------------------------------------------------------
# The real standard-library corpus
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> CharCorpus:
    return load_text_corpus()


@pytest.fixture(scope="module")
def full_text() -> str:
    return data._build_corpus_text(STDLIB)[0]


def test_corpus_basics(corpus, full_text):
    assert corpus.n_files > 100
    assert len(corpus) == len(full_text) > 1_000_000
    assert corpus.train.dtype == np.uint16 and corpus.val.dtype == np.uint16
    assert corpus.vocab == sorted(set(full_text))
    assert corpus.vocab_size == len(corpus.vocab) < 2**16
    assert int(corpus.train.max()) < corpus.vocab_size and int(corpus.val.max()) < corpus.vocab_size
    assert corpus.stoi["a"] == corpus.vocab.index("a") and corpus.itos[corpus.stoi["a"]] == "a"
    assert len(corpus.stoi) == len(corpus.itos) == corpus.vocab_size
    assert repr(corpus).startswith(f"CharCorpus(n_files={corpus.n_files}, chars={len(corpus)}")


def test_corpus_train_and_val_are_the_contiguous_text(corpus, full_text):
    assert len(corpus.train) == int(len(full_text) * 0.9)
    assert corpus.decode(corpus.train) + corpus.decode(corpus.val) == full_text


def test_corpus_separators_and_exclusions(corpus, full_text):
    headers = [line for line in full_text.splitlines() if line.startswith("# ---- ") and line.endswith(" ----")]
    paths = [h[len("# ---- "):-len(" ----")] for h in headers]
    assert full_text.startswith(headers[0] + "\n")
    assert paths == sorted(paths)
    assert len(set(paths)) == corpus.n_files
    assert "os.py" in paths and "json/decoder.py" in paths
    for path in paths:
        assert path.endswith(".py")
        assert not set(path.split("/")[:-1]) & data.CORPUS_EXCLUDED_DIRS, path


def test_corpus_is_deterministic_and_cached(corpus, full_text):
    rebuilt, n_files = data._build_corpus_text.__wrapped__(STDLIB)  # from disk again, uncached
    assert rebuilt == full_text and n_files == corpus.n_files
    hits = data._build_corpus_text.cache_info().hits
    data._build_corpus_text(STDLIB)
    assert data._build_corpus_text.cache_info().hits == hits + 1
    again = load_text_corpus()
    np.testing.assert_array_equal(again.train, corpus.train)
    np.testing.assert_array_equal(again.val, corpus.val)
    assert again.vocab == corpus.vocab


def test_corpus_arrays_are_read_only(corpus):
    with pytest.raises(ValueError, match="read-only"):
        corpus.train[0] = 1


def test_max_chars_and_val_fraction(corpus, full_text):
    small = load_text_corpus(max_chars=10_000, val_fraction=0.2)
    assert len(small) == 10_000 and len(small.train) == 8_000 and len(small.val) == 2_000
    assert small.decode(small.train) + small.decode(small.val) == full_text[:10_000]
    assert small.vocab == corpus.vocab
    no_val = load_text_corpus(max_chars=1000, val_fraction=0.0)
    assert len(no_val.train) == 1000 and len(no_val.val) == 0
    assert len(load_text_corpus(max_chars=10**12)) == len(full_text)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_chars": 0}, r"max_chars must be .*got 0"),
        ({"max_chars": 1.5}, r"max_chars must be .*1\.5"),
        ({"max_chars": True}, r"max_chars must be .*True"),
        ({"val_fraction": 1.0}, r"val_fraction must be .*1\.0"),
        ({"val_fraction": -0.1}, r"val_fraction must be .*-0\.1"),
    ],
)
def test_corpus_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_text_corpus(**kwargs)


def test_encode_decode_round_trip(corpus, full_text):
    snippet = full_text[123_456:133_456]
    ids = corpus.encode(snippet)
    assert isinstance(ids, list) and all(isinstance(i, int) for i in ids[:10])
    assert ids == corpus.train[123_456:133_456].tolist()
    assert corpus.decode(ids) == snippet
    assert corpus.decode(np.array(ids, dtype=np.int64)) == snippet
    assert corpus.decode(np.array(ids, dtype=np.uint16)) == snippet
    assert corpus.decode(torch.tensor(ids)) == snippet
    code = "def f(x):\n    return x + 1\n"
    assert corpus.encode(code) == [corpus.stoi[ch] for ch in code]
    assert corpus.decode(corpus.encode(code)) == code
    assert corpus.encode("") == [] and corpus.decode([]) == ""


def test_encode_names_the_first_unknown_character(corpus):
    unknown = next(ch for ch in "☃\x00\U0001f600" if ch not in corpus.stoi)
    with pytest.raises(ValueError, match=f"{unknown!r}.*position 3"):
        corpus.encode("abc" + unknown + "def")


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        ([[1, 2]], r"1-D, got shape \(1, 2\)"),
        ([0, -1], "token id -1 at position 1"),
        ([1.0, 2.0], "integers"),
    ],
)
def test_decode_errors(corpus, ids, match):
    with pytest.raises(ValueError, match=match):
        corpus.decode(ids)
    with pytest.raises(ValueError, match=f"token id {corpus.vocab_size} "):
        corpus.decode([corpus.vocab_size])


# ---------------------------------------------------------------------------------------------------
# get_batch
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def counting_corpus() -> CharCorpus:
    """Token ids 0..79 in order (train 0..59, val 60..79): a window shows up as consecutive ids."""
    ids = np.arange(80, dtype=np.uint16)
    return CharCorpus(train=ids[:60], val=ids[60:], vocab=[chr(0x100 + i) for i in range(80)])


def test_get_batch_windows_and_shift(counting_corpus):
    gen = torch.Generator().manual_seed(0)
    x, y = counting_corpus.get_batch("train", batch_size=64, block_size=8, generator=gen)
    assert x.shape == y.shape == (64, 8) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(64, 7, dtype=torch.int64))  # contiguous windows
    assert torch.equal(y, x + 1)  # target = input shifted by one
    assert int(x.min()) >= 0 and int(y.max()) <= 59  # never leaves the train split
    assert len(torch.unique(x[:, 0])) > 20  # random starts, spread over the split
    xv, yv = counting_corpus.get_batch("val", batch_size=32, block_size=8, generator=gen)
    assert int(xv.min()) >= 60 and int(yv.max()) <= 79
    assert torch.equal(yv[:, :-1], xv[:, 1:])


def test_get_batch_on_the_real_corpus(corpus):
    x, y = corpus.get_batch("train", 4, 32, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x[:, 1:], y[:, :-1])
    text = corpus.decode(corpus.train)
    for row_x, row_y in zip(x, y, strict=True):
        window = corpus.decode(row_x) + corpus.decode(row_y[-1:])
        assert window in text


def test_get_batch_largest_block_has_one_window(counting_corpus):
    x, y = counting_corpus.get_batch("val", batch_size=3, block_size=19)
    expected = torch.arange(60, 79).expand(3, 19)
    assert torch.equal(x, expected) and torch.equal(y, expected + 1)


def test_get_batch_is_reproducible_with_a_generator(counting_corpus):
    def batch(seed):
        return counting_corpus.get_batch("train", 16, 4, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(batch(5)[0], batch(5)[0])
    assert not torch.equal(batch(5)[0], batch(6)[0])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("test", 2, 4), "split must be 'train' or 'val', got 'test'"),
        (("val", 2, 20), r"block_size=20 needs at least block_size \+ 1 = 21 tokens, but the 'val' split has 20"),
        (("train", 2, 60), "block_size=60"),
        (("train", 0, 4), "batch_size must be a positive integer, got 0"),
        (("train", 2, 0), "block_size must be a positive integer, got 0"),
    ],
)
def test_get_batch_errors(counting_corpus, args, match):
    with pytest.raises(ValueError, match=match):
        counting_corpus.get_batch(*args)


def test_get_batch_on_an_empty_val_split():
    corpus = CharCorpus(train=np.arange(10, dtype=np.uint16), val=np.zeros(0, np.uint16), vocab=list("abcdefghij"))
    with pytest.raises(ValueError, match="'val' split has 0"):
        corpus.get_batch("val", 1, 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_get_batch_on_cuda(counting_corpus):
    x, y = counting_corpus.get_batch("train", 8, 4, device="cuda")
    assert x.device.type == y.device.type == "cuda"
    assert torch.equal(y.cpu(), x.cpu() + 1)
