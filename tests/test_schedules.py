"""Learning-rate schedules against torch.optim.lr_scheduler, and the graded references against torch."""

import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler

from bigtrain_lab import schedules, train
from bigtrain_lab.grading import get_exercise
from bigtrain_lab.schedules import (
    SCHEDULE_NAMES,
    TORCH_SCHEDULERS,
    bank_step_decay,
    cosine_annealing,
    cosine_with_warmup,
    exponential_decay,
    linear_scaling_lr,
    lr_curve,
    one_cycle,
    step_decay,
    torch_lr_curve,
)


def _torch_lrs(make, n, base_lr=0.1):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr, momentum=0.9)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


def test_train_module_reexports_the_same_schedules():
    assert train.cosine_schedule is schedules.cosine_schedule
    assert train.wsd_schedule is schedules.wsd_schedule
    assert train.constant_schedule is schedules.constant_schedule


@pytest.mark.parametrize(("step_size", "gamma"), [(1, 0.9), (7, 0.5), (30, 0.1), (10, 1.0)])
def test_step_decay_is_steplr(step_size, gamma):
    expected = _torch_lrs(lambda o: lr_scheduler.StepLR(o, step_size=step_size, gamma=gamma), 100)
    got = [step_decay(s, base_lr=0.1, step_size=step_size, gamma=gamma) for s in range(100)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_step_decay_drops_at_the_multiple():
    assert step_decay(9, base_lr=1.0, step_size=10, gamma=0.5) == 1.0
    assert step_decay(10, base_lr=1.0, step_size=10, gamma=0.5) == 0.5
    with pytest.raises(ValueError, match="step_size"):
        step_decay(3, base_lr=1.0, step_size=0, gamma=0.5)
    with pytest.raises(ValueError, match="step"):
        step_decay(-1, base_lr=1.0, step_size=2, gamma=0.5)


def test_exponential_decay_is_exponentiallr():
    expected = _torch_lrs(lambda o: lr_scheduler.ExponentialLR(o, gamma=0.97), 150)
    got = [exponential_decay(s, base_lr=0.1, gamma=0.97) for s in range(150)]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("min_lr", [0.0, 1e-3])
def test_cosine_annealing_is_cosineannealinglr_up_to_t_max(min_lr):
    expected = _torch_lrs(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=80, eta_min=min_lr), 81)
    got = [cosine_annealing(s, base_lr=0.1, total_steps=80, min_lr=min_lr) for s in range(81)]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
    # torch's scheduler is periodic and climbs back up after T_max; ours stays at min_lr
    after = _torch_lrs(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=80, eta_min=min_lr), 120)[-1]
    assert after > min_lr + 0.01 and cosine_annealing(119, base_lr=0.1, total_steps=80, min_lr=min_lr) == min_lr


def test_cosine_with_warmup_shape():
    kw = {"base_lr": 1.0, "warmup_steps": 10, "total_steps": 110, "min_lr": 0.1}
    assert cosine_with_warmup(0, **kw) == 0.0
    assert cosine_with_warmup(5, **kw) == pytest.approx(0.5)
    assert cosine_with_warmup(10, **kw) == 1.0
    assert cosine_with_warmup(60, **kw) == pytest.approx(0.55)
    assert cosine_with_warmup(110, **kw) == cosine_with_warmup(10_000, **kw) == 0.1
    for bad in ({"step": -1}, {"base_lr": -1.0}, {"min_lr": -0.1}, {"warmup_steps": -1}, {"warmup_steps": 110}):
        args = {"step": 3, **kw, **bad}
        with pytest.raises(ValueError):
            cosine_with_warmup(args.pop("step"), **args)


def test_cosine_with_warmup_matches_sequential_lr_after_the_warmup():
    warm, total, min_lr = 20, 200, 1e-3
    expected = torch_lr_curve("warmup_cosine", total_steps=total, base_lr=0.1, warmup_steps=warm, min_lr=min_lr)
    got = lr_curve("warmup_cosine", total_steps=total, base_lr=0.1, warmup_steps=warm, min_lr=min_lr)
    np.testing.assert_allclose(got[warm:], expected[warm:], rtol=1e-9)
    # LinearLR cannot start at exactly 0: during the warm-up they differ by at most start_factor * base_lr
    np.testing.assert_allclose(got[:warm], expected[:warm], atol=1e-8)


def test_the_graded_cosine_reference_is_this_function():
    reference = get_exercise("schedules.cosine_with_warmup").reference
    rng = np.random.default_rng(0)
    for _ in range(200):
        total = int(rng.integers(2, 5000))
        kw = {"base_lr": float(rng.uniform(0, 1)), "warmup_steps": int(rng.integers(0, total)),
              "total_steps": total, "min_lr": float(rng.uniform(0, 1e-3))}
        step = int(rng.integers(0, 2 * total))
        assert reference(step, **kw) == pytest.approx(cosine_with_warmup(step, **kw), rel=1e-12, abs=1e-15)


def test_the_graded_step_decay_reference_is_steplr():
    reference = get_exercise("schedules.step_decay").reference
    for step in (0, 9, 10, 11, 95):
        assert reference(step, base_lr=0.1, step_size=10, gamma=0.3) == pytest.approx(
            step_decay(step, base_lr=0.1, step_size=10, gamma=0.3), rel=1e-12)


@pytest.mark.parametrize(("total", "pct"), [(100, 0.3), (57, 0.25), (1000, 0.1)])
def test_one_cycle_is_onecyclelr(total, pct):
    expected = _torch_lrs(lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=total, pct_start=pct), total)
    got = [one_cycle(s, max_lr=0.5, total_steps=total, pct_start=pct) for s in range(total)]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert max(got) == pytest.approx(0.5, rel=1e-3) and got[0] == pytest.approx(0.5 / 25)
    with pytest.raises(ValueError, match="total_steps"):
        one_cycle(total, max_lr=0.5, total_steps=total)


def test_bank_decay_never_decays_and_steplr_does():
    num_epochs = 30
    seed = [bank_step_decay(e, base_lr=0.1, num_epochs=num_epochs) for e in range(num_epochs)]
    assert set(seed) == {0.1}
    fixed = [step_decay(e, base_lr=0.1, step_size=10, gamma=0.1) for e in range(num_epochs)]
    assert fixed[-1] == pytest.approx(1e-3)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_lr_curve_agrees_with_torch_where_torch_has_the_scheduler(name):
    kw = {"total_steps": 120, "base_lr": 0.2, "warmup_steps": 12, "min_lr": 0.002, "step_size": 25,
          "gamma": 0.5 if name == "step" else 0.98, "pct_start": 0.3}
    curve = lr_curve(name, **kw)
    assert curve.shape == (120,) and np.all(np.isfinite(curve)) and np.all(curve >= 0)
    torch_curve = torch_lr_curve(name, **kw)
    assert (torch_curve is None) == (name not in TORCH_SCHEDULERS)
    if torch_curve is not None:
        np.testing.assert_allclose(curve, torch_curve, rtol=1e-7, atol=1e-7)


def test_lr_curve_of_the_loop_schedules():
    wsd = lr_curve("wsd", total_steps=100, base_lr=1.0, warmup_steps=0, min_lr=0.0, decay_fraction=0.2)
    assert wsd[0] == wsd[79] == 1.0 and wsd[90] == pytest.approx(0.5)
    const = lr_curve("constant", total_steps=10, base_lr=0.3, warmup_steps=2)
    np.testing.assert_allclose(const, [0.1, 0.2] + [0.3] * 8)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_curve("linear_decay", total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        torch_lr_curve("step", total_steps=0)


def test_linear_scaling_rule():
    assert linear_scaling_lr(0.1, 256, 1024) == pytest.approx(0.4)
    assert math.isclose(linear_scaling_lr(3e-4, 32, 8), 7.5e-5)
    with pytest.raises(ValueError):
        linear_scaling_lr(0.1, 0, 8)
