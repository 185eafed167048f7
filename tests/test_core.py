"""seed_everything, fast_mode, get_device and the environment report."""

import random

import numpy as np
import pytest
import torch

from bigtrain_lab import environment_report, fast_mode, get_device, seed_everything


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_seed_everything_repeats_every_generator():
    seed_everything(123)
    first = draws()
    seed_everything(123)
    assert draws() == first
    seed_everything(124)
    assert draws() != first


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "0", True, None])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed must be an integer"):
        seed_everything(bad)


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_fast_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("BIGTRAIN_LAB_FAST", value)
    assert fast_mode() is expected


def test_get_device():
    expected = "cuda" if torch.cuda.is_available() else None
    device = get_device()
    assert device.type in {"cpu", "cuda", "mps"}
    if expected:
        assert device.type == expected
    assert get_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            get_device("cuda")


def test_environment_report_has_versions_and_renders():
    report = environment_report()
    assert report.packages["torch"] == torch.__version__
    assert report.cpu_count >= 1
    text, html = str(report), report._repr_html_()
    assert "torch" in text and "default device" in text and "<table>" in html


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_environment_report_lists_the_gpu():
    assert environment_report().gpus
