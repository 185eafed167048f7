"""Lesson 10's pretraining cache (checksum, recipe key, atomic files) and the target task's fixed test set."""

import json
import warnings

import numpy as np
import pytest
import torch

from bigtrain_lab.kit_home import kit_home
from bigtrain_lab.transfer import pretrained_cnn, shift_images, target_task
from bigtrain_lab.transfer.cache import CacheEntry, cache_folder, cached_state_dict, recipe_key
from bigtrain_lab.transfer.pretrain import (
    TEST_PER_CLASS,
    cnn_recipe,
    digit_images,
    rotation_task,
    target_test_indices,
    target_train_indices,
)

RECIPE = {"what": "toy", "lr": 0.1, "seed": 0}


def counting_trainer(calls: list):
    def train():
        calls.append(1)
        return {"w": torch.arange(6.0).view(2, 3) + len(calls), "b": torch.zeros(2)}
    return train


def test_kit_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BIGTRAIN_LAB_HOME", str(tmp_path / "h"))
    assert kit_home() == tmp_path / "h" and cache_folder() == tmp_path / "h" / "pretrained"
    monkeypatch.delenv("BIGTRAIN_LAB_HOME")
    assert kit_home().name == ".bigtrain-lab"


def test_the_cache_round_trips_and_records_recipe_and_checksum():
    calls = []
    first = cached_state_dict("toy", RECIPE, counting_trainer(calls))
    again = cached_state_dict("toy", RECIPE, counting_trainer(calls))
    assert len(calls) == 1 and all(torch.equal(first[k], again[k]) for k in first)
    entry = CacheEntry("toy", RECIPE)
    meta = json.loads(entry.sidecar.read_text())
    assert meta["recipe"] == RECIPE and meta["key"] == recipe_key(RECIPE) and len(meta["sha256"]) == 64
    assert (entry.sidecar.parent / meta["weights"]).is_file()
    assert not list(cache_folder().glob("*.tmp")) and not list(cache_folder().glob(".*"))  # nothing half-written


def test_a_changed_recipe_is_a_new_key_never_a_stale_hit():
    calls = []
    cached_state_dict("toy", RECIPE, counting_trainer(calls))
    cached_state_dict("toy", {**RECIPE, "lr": 0.2}, counting_trainer(calls))
    assert len(calls) == 2 and recipe_key(RECIPE) != recipe_key({**RECIPE, "lr": 0.2})
    assert recipe_key({"a": 1, "b": 2}) == recipe_key({"b": 2, "a": 1})  # key order does not matter


@pytest.mark.parametrize("damage", ["flip a byte", "delete the weights", "garble the sidecar"])
def test_a_corrupt_entry_is_retrained_with_a_warning(damage):
    calls = []
    cached_state_dict("toy", RECIPE, counting_trainer(calls))
    entry = CacheEntry("toy", RECIPE)
    weights = entry.sidecar.parent / json.loads(entry.sidecar.read_text())["weights"]
    if damage == "flip a byte":
        blob = bytearray(weights.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        weights.write_bytes(bytes(blob))
    elif damage == "delete the weights":
        weights.unlink()
    else:
        entry.sidecar.write_text("{not json")
    with pytest.warns(RuntimeWarning, match="retraining toy"):
        state = cached_state_dict("toy", RECIPE, counting_trainer(calls))
    assert len(calls) == 2 and torch.equal(state["w"], torch.arange(6.0).view(2, 3) + 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cached_state_dict("toy", RECIPE, counting_trainer(calls))  # repaired: loads silently
    assert len(calls) == 2


def test_pretrained_cnn_is_cached_verified_and_fresh_each_call():
    a = pretrained_cnn("digits_0_4", fast=True)
    b = pretrained_cnn("digits_0_4", fast=True)
    assert a is not b and all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(),
                                                                 strict=True))
    a.head[-1].weight.data.zero_()  # callers may change theirs
    assert pretrained_cnn("digits_0_4", fast=True).head[-1].weight.abs().sum() > 0
    meta = json.loads(CacheEntry("cnn_digits_0_4", cnn_recipe("digits_0_4", True)).sidecar.read_text())
    assert meta["recipe"]["torch"] == torch.__version__ and meta["recipe"]["epochs"] > 0
    X, y = digit_images()
    low = y < 5
    assert (a.eval()(torch.from_numpy(X[low][:200].copy())).shape == (200, 5))
    with pytest.raises(ValueError, match="recipe must be one of"):
        pretrained_cnn("imagenet", fast=True)


def test_the_target_test_set_is_fixed_balanced_and_disjoint():
    test = target_test_indices()
    _, y = digit_images()
    assert np.bincount(y[test] - 5).tolist() == [TEST_PER_CLASS] * 5
    for seed, per_class in ((0, 5), (1, 5), (3, 104)):
        train = target_train_indices(seed, per_class)
        assert len(set(train)) == 5 * per_class and not set(train) & set(test)
        assert np.bincount(y[train] - 5).tolist() == [per_class] * 5
    X_tr, y_tr, X_te, y_te = target_task(0, 5)
    assert X_tr.shape == (25, 1, 8, 8) and X_tr.dtype == torch.float32 and set(y_tr.tolist()) == set(range(5))
    assert torch.equal(X_te, target_task(7, 20)[2]) and torch.equal(y_te, target_task(7, 20)[3])
    assert not np.array_equal(target_train_indices(0, 5), target_train_indices(1, 5))
    with pytest.raises(ValueError, match="exceeds"):
        target_task(0, 105)
    with pytest.raises(ValueError, match="positive integer"):
        target_task(0, 0)


def test_the_rotation_task_never_sees_the_target_test_images():
    X, labels = rotation_task()
    n = len(digit_images()[0]) - len(target_test_indices())
    assert X.shape == (4 * n, 1, 8, 8) and torch.bincount(labels).tolist() == [n] * 4
    assert torch.equal(X[n], torch.rot90(X[0], 1, dims=(1, 2)))


def test_shift_images_moves_each_image_by_its_own_offset_and_fills_with_zeros():
    X = torch.rand(40, 2, 8, 8)
    shifted = shift_images(X, max_shift=2, seed=5)
    g = torch.Generator().manual_seed(5)
    dy, dx = torch.randint(-2, 3, (40,), generator=g), torch.randint(-2, 3, (40,), generator=g)
    padded = torch.nn.functional.pad(X, (2, 2, 2, 2))
    expected = torch.stack([padded[i, :, 2 + dy[i]:10 + dy[i], 2 + dx[i]:10 + dx[i]] for i in range(40)])
    assert torch.equal(shifted, expected) and not torch.equal(shifted, X)
    assert torch.equal(shift_images(X, max_shift=0), X) and torch.equal(shift_images(X, seed=5), shifted)
    one = torch.zeros(1, 1, 8, 8)
    one[0, 0, 4, 4] = 1.0
    assert float(shift_images(one, max_shift=1, seed=0).sum()) == 1.0  # an inner pixel moves, never duplicates
    with pytest.raises(ValueError, match="max_shift"):
        shift_images(X, max_shift=-1)
    with pytest.raises(ValueError, match="N, C, H, W"):
        shift_images(X[0], max_shift=1)


def test_the_shifted_recipe_pretrains_on_shifted_copies_of_the_digits_0_4():
    recipe = cnn_recipe("digits_0_4_shifted", True)
    assert recipe["num_classes"] == 5 and "shifted by up to 2 px" in recipe["data"]
    assert recipe_key(recipe) != recipe_key(cnn_recipe("digits_0_4", True))
