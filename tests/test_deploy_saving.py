"""bigtrain_lab.deploy.saving and .checkpoint: a pickled module breaks on a refactor and can run code, a
state_dict and safetensors do not; hashes catch a changed file; a resumable checkpoint needs every piece."""

import pickle

import pytest
import torch
import torch.nn as nn
from safetensors import safe_open

from bigtrain_lab.deploy import (
    checkpoint_formats,
    dtype_on_load,
    load_outcomes,
    load_safetensors,
    load_verified,
    malicious_checkpoint,
    marker_path,
    pickled_module_breaks_on_refactor,
    restore_training_state,
    resume_experiment,
    save_safetensors,
    sha256_file,
    state_round_trip,
    training_state,
    verify_sha256,
    write_sha256,
)


def test_a_pickled_module_breaks_on_a_class_rename_while_its_state_dict_loads(tmp_path):
    result = pickled_module_breaks_on_refactor(tmp_path)
    assert result["whole_default"]["error_type"] == "UnpicklingError"  # weights_only=True: refused
    assert f"{result['module']}.TinyNet" in result["whole_default"]["message"]
    assert result["whole_before_refactor"] == {"loaded": True, "class": "TinyNet"}
    assert result["whole_after_refactor"]["error_type"] == "AttributeError"
    assert "TinyNet" in result["whole_after_refactor"]["message"]
    assert result["state_dict_after_refactor"] == {"loaded": True, "max_abs_diff": 0.0}
    again = pickled_module_breaks_on_refactor(tmp_path)  # repeatable in one process (a fresh module name)
    assert again["module"] != result["module"]
    assert again["whole_after_refactor"]["error_type"] == "AttributeError"


def test_a_malicious_pickle_runs_code_only_with_weights_only_false(tmp_path):
    path = malicious_checkpoint(tmp_path / "model.pt")
    marker = marker_path(path)
    assert not marker.exists()
    out = load_outcomes(path)
    assert out["weights_only_true"]["error_type"] == "UnpicklingError"
    assert "exec" in out["weights_only_true"]["message"]
    assert out["weights_only_true"]["code_ran"] is False
    assert out["weights_only_false"]["error_type"] is None and out["weights_only_false"]["code_ran"] is True
    assert marker.read_text().startswith("written by code inside the checkpoint")
    with pytest.raises(FileExistsError):
        load_outcomes(path)  # a second demonstration needs a fresh folder


def test_safetensors_round_trip_is_exact_with_metadata(tmp_path):
    torch.manual_seed(0)
    state = {"w": torch.randn(5, 3), "b": torch.randn(3).bfloat16(), "steps": torch.arange(4),
             "t": torch.randn(4, 6).t()}  # a non-contiguous view is saved as its values
    path = save_safetensors(state, tmp_path / "m.safetensors", {"epoch": 3, "arch": "mlp"})
    loaded = load_safetensors(path)
    assert set(loaded) == set(state)
    for k, v in state.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v)
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"epoch": "3", "arch": "mlp"}


def test_checkpoint_formats_table(tmp_path):
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    rows = checkpoint_formats(model, tmp_path, repeat=2)
    assert [r["format"] for r in rows] == ["torch.save(state_dict)", "torch.save, torch.load(mmap=True)",
                                           "safetensors", "safetensors, safe_open (lazy)"]
    weights = sum(p.numel() * 4 for p in model.parameters())
    for r in rows:
        assert weights < r["file_bytes"] < weights + 4096 and r["load_ms"] > 0


def test_load_state_dict_keeps_the_model_dtype():
    torch.manual_seed(0)
    saved = nn.Linear(8, 4).state_dict()  # fp32
    out = dtype_on_load(nn.Linear(8, 4).bfloat16(), saved)
    assert out["saved_dtypes"] == ["torch.float32"] and out["model_dtypes"] == ["torch.bfloat16"]
    assert 0 < out["max_abs_rounding"] < 2 ** -8  # bf16 keeps 8 bits: |w| < 1 rounds by less than 2^-8
    assert dtype_on_load(nn.Linear(8, 4), saved)["max_abs_rounding"] == 0.0


def test_a_checkpoint_is_verified_before_it_is_loaded(tmp_path):
    path = tmp_path / "m.pt"
    torch.save({"w": torch.ones(3)}, path)
    record = write_sha256(path)
    digest = sha256_file(path)
    assert record.read_text() == f"{digest}  m.pt\n"
    assert verify_sha256(path) == digest
    assert torch.equal(load_verified(path)["w"], torch.ones(3))
    torch.save({"w": torch.zeros(3)}, path)  # replaced after the hash was recorded
    with pytest.raises(ValueError, match="does not match its recorded SHA-256"):
        load_verified(path)
    with pytest.raises(FileNotFoundError, match="no recorded hash"):
        verify_sha256(tmp_path / "record-missing.pt")


# ---- resume_experiment (deploy.checkpoint) ---------------------------------------------------------


def _same(a, b) -> bool:
    return a["losses"] == b["losses"] and all(torch.equal(a["params"][k], b["params"][k]) for k in a["params"])


@pytest.fixture(scope="module")
def uninterrupted():
    return resume_experiment(save_at=None)


def test_a_resumed_run_equals_the_uninterrupted_run_bit_for_bit(uninterrupted):
    resumed = resume_experiment()
    assert resumed["steps"] == uninterrupted["steps"] == 40
    assert _same(resumed, uninterrupted)


def _without(key):
    """A save / restore pair that leaves one piece of the state out."""
    def save(model, optimizer, scheduler, step):
        state = training_state(model, optimizer, scheduler, step)
        del state[key]
        return state

    def restore(state, model, optimizer, scheduler):
        model.load_state_dict(state["model"])
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            scheduler.load_state_dict(state["scheduler"])
        if "rng" in state:
            torch.set_rng_state(state["rng"])
        return int(state["step"])

    return save, restore


@pytest.mark.parametrize("left_out", ["rng", "scheduler", "optimizer"])
def test_leaving_out_a_piece_of_the_state_breaks_the_resume(uninterrupted, left_out):
    save, restore = _without(left_out)
    resumed = resume_experiment(save, restore)
    assert resumed["steps"] == 40
    assert not _same(resumed, uninterrupted)
    assert resumed["losses"][:20] == uninterrupted["losses"][:20]  # identical until the interruption


def test_the_default_restore_function_is_the_one_resume_uses():
    assert resume_experiment(training_state, restore_training_state, total_steps=10, save_at=5)["steps"] == 10


def test_a_state_holding_a_module_object_is_refused():
    with pytest.raises(pickle.UnpicklingError):
        state_round_trip({"model": nn.Linear(2, 2), "step": 3})
    assert state_round_trip({"step": 3, "w": torch.ones(2)})["step"] == 3
