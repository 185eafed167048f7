"""Distillation loss against torch, measurement utilities, the separable CNN and the training helper."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.compress import (
    SeparableCNN,
    conv_macs,
    count_macs,
    count_parameters,
    distillation_loss,
    gzipped_size,
    load_digits,
    measure_latency,
    prune_unstructured,
    report,
    size_on_disk,
    sparsity,
)
from bigtrain_lab.compress.distillation import (
    UNLABELLED,
    agreement,
    distillation_loss_fn,
    kl_to,
    transfer_loss_fn,
    transfer_targets,
)
from bigtrain_lab.compress.measure import num_threads
from bigtrain_lab.fit import accuracy, fit_classifier
from bigtrain_lab.models import CNN, MLP


def test_distillation_loss_matches_its_definition():
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 5, requires_grad=True), torch.randn(8, 5), torch.randint(0, 5, (8,))
    T, a = 3.0, 0.7
    p = F.softmax(t / T, -1)
    kl = (p * (p.log() - F.log_softmax(s / T, -1))).sum(-1).mean()
    expected = a * T * T * kl + (1 - a) * F.cross_entropy(s, y)
    loss = distillation_loss(s, t, y, temperature=T, alpha=a)
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()
    assert s.grad is not None
    assert float(distillation_loss(s, s.detach(), y, temperature=2.0, alpha=1.0)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        distillation_loss(s, t, y, temperature=0.0, alpha=0.5)
    with pytest.raises(ValueError):
        distillation_loss(s, t, y, temperature=1.0, alpha=1.5)


def test_measurements():
    torch.manual_seed(0)
    model = MLP(16, (32,), 4)
    n = 16 * 32 + 32 + 32 * 4 + 4
    assert count_parameters(model) == n
    assert 4 * n < size_on_disk(model) < 4 * n + 4000
    prune_unstructured(model, 0.75)
    assert count_parameters(model, nonzero=True) == n - round(0.75 * 512) - round(0.75 * 128)
    assert sparsity(model) == pytest.approx(0.75, abs=1e-3)
    assert gzipped_size(model) < size_on_disk(model)
    lat = measure_latency(model, torch.randn(8, 16), repeats=5, warmup=1, threads=1)
    assert lat.repeats == 5 and lat.threads == 1 and 0 < lat.p10_ms <= lat.median_ms <= lat.p90_ms
    before = torch.get_num_threads()
    with num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        measure_latency(model, torch.randn(1, 16), repeats=0)
    X, y = torch.randn(10, 16), torch.randint(0, 4, (10,))
    row = report(model, X, y, batch_sizes=(1, 4), repeats=3, warmup=1)
    assert set(row) >= {"accuracy", "size_bytes", "params", "nonzero_params", "latency_ms_b1", "latency_ms_b4"}
    assert accuracy(lambda x: F.one_hot(y, 4).float(), X, y) == 1.0
    with pytest.raises(ValueError):
        accuracy(model, X, y[:3])


def test_separable_cnn_is_much_cheaper_than_the_cnn():
    x = torch.randn(2, 64)
    sep, cnn = SeparableCNN(), CNN()
    assert sep(x).shape == cnn(x).shape == (2, 10)
    assert count_parameters(sep) < count_parameters(cnn) / 5
    assert count_macs(sep, x[:1]) < count_macs(cnn, x[:1]) / 3
    # the formula: 3x3, 16 -> 32 channels on 8x8
    assert conv_macs(16, 32, 3, 8, 8) == 9 * 16 * 32 * 64
    assert conv_macs(16, 32, 3, 8, 8, separable=True) == (9 * 16 + 16 * 32) * 64
    conv = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    assert count_macs(conv, torch.randn(1, 16, 8, 8)) == conv_macs(16, 32, 3, 8, 8)
    with pytest.raises(ValueError):
        sep(torch.randn(1, 3, 8, 8))


def test_fit_and_distill_on_digits_learns():
    d = load_digits()
    assert d.X_train.max() <= 1.0 and d.X_train.shape[1] == 64
    torch.manual_seed(0)
    teacher = MLP(64, (64,), 10)
    fit_classifier(teacher, d.X_train, d.y_train, sampling="random", steps=150, lr=3e-3)
    assert accuracy(teacher, d.X_test, d.y_test) > 0.85
    torch.manual_seed(1)
    student = MLP(64, (16,), 10)
    fit_classifier(student, d.X_train, d.y_train, sampling="random", steps=150, lr=3e-3, loss_fn=distillation_loss_fn(teacher))
    assert agreement(student, teacher, d.X_test) > 0.7
    assert kl_to(teacher, teacher, d.X_test) == pytest.approx(0.0, abs=1e-6)


def test_transfer_loss_on_a_partly_unlabelled_set():
    torch.manual_seed(0)
    teacher = MLP(6, (8,), 4).eval()
    student = MLP(6, (5,), 4)
    x, y = torch.randn(10, 6), torch.randint(0, 4, (10,))
    full = transfer_targets(teacher, x, y)
    assert full.shape == (10, 5) and torch.equal(full[:, 0].long(), y)
    loss = transfer_loss_fn(temperature=3.0, alpha=0.3)
    # every row labelled: Hinton's loss exactly
    ref = distillation_loss(student(x), teacher(x), y, temperature=3.0, alpha=0.3)
    assert float(loss(student, x, full)) == pytest.approx(float(ref), rel=1e-6)
    # unlabelled rows: only the soft term sees them
    y_part = y.clone()
    y_part[5:] = UNLABELLED
    part = transfer_targets(teacher, x, y_part)
    z, t = student(x), teacher(x)
    soft = F.kl_div(F.log_softmax(z / 3, -1), F.softmax(t / 3, -1), reduction="batchmean")
    want = 0.3 * 9 * soft + 0.7 * F.cross_entropy(z[:5], y[:5])
    assert float(loss(student, x, part)) == pytest.approx(float(want), rel=1e-6)
    none = transfer_targets(teacher, x, torch.full((10,), UNLABELLED))
    out = loss(student, x, none)
    assert torch.isfinite(out) and float(out) == pytest.approx(float(0.3 * 9 * soft), rel=1e-6)
    out.backward()
    with pytest.raises(ValueError):
        transfer_loss_fn(temperature=0.0)
