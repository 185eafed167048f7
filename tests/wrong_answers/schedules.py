"""Plausible WRONG learning-rate schedules (each must be rejected by ``check``) and several different
CORRECT ones (each must be accepted)."""

import math

import numpy as np

# ---- schedules.step_decay -------------------------------------------------------------------------


def sd_continuous(step, *, base_lr, step_size, gamma):
    # exponential decay, not a staircase
    return base_lr * gamma ** (step / step_size)


def sd_off_by_one(step, *, base_lr, step_size, gamma):
    # decays one step early (counts steps from 1)
    return base_lr * gamma ** ((step + 1) // step_size)


def sd_decayed_from_the_start(step, *, base_lr, step_size, gamma):
    return base_lr * gamma ** (step // step_size + 1)


def sd_ceil(step, *, base_lr, step_size, gamma):
    return base_lr * gamma ** math.ceil(step / step_size)


def sd_linear(step, *, base_lr, step_size, gamma):
    # subtracts instead of multiplying
    return max(base_lr - base_lr * (1 - gamma) * (step // step_size), 0.0)


def sd_hard_coded(step, *, base_lr, step_size, gamma):
    return 0.1


def sd_bank_never_decays(step, *, base_lr, step_size, gamma):
    # the interview answer's `lr * 0.1 ** (epoch // num_epochs)`: divides by the run length, so within a
    # run the exponent stays 0 (here: a run of 10 decay periods)
    return base_lr * 0.1 ** (step // (10 * step_size))


def sd_gamma_multiplied(step, *, base_lr, step_size, gamma):
    # multiplies by gamma * number of decays instead of raising gamma to that power
    k = step // step_size
    return base_lr * gamma * k if k else base_lr


STEP_DECAY_WRONG = [sd_continuous, sd_off_by_one, sd_decayed_from_the_start, sd_ceil, sd_linear, sd_hard_coded,
                    sd_bank_never_decays, sd_gamma_multiplied]


def sd_power(step, *, base_lr, step_size, gamma):
    return base_lr * gamma ** (step // step_size)


def sd_loop(step, *, base_lr, step_size, gamma):
    # what StepLR does: multiply by gamma at every multiple of step_size
    lr = base_lr
    for t in range(1, step + 1):
        if t % step_size == 0:
            lr *= gamma
    return lr


STEP_DECAY_RIGHT = [sd_power, sd_loop]

# ---- schedules.cosine_with_warmup -----------------------------------------------------------------


def _validate(step, base_lr, warmup_steps, total_steps, min_lr):
    if min(step, base_lr, warmup_steps, total_steps, min_lr) < 0 or warmup_steps >= total_steps:
        raise ValueError("invalid schedule")


def cw_warmup_from_one(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    # warm-up that starts at base_lr / warmup_steps instead of 0
    _validate(step, base_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))


def cw_cosine_over_total(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    # cosine phase measured from step 0 over total_steps (ignores the warm-up offset)
    _validate(step, base_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    t = min(step, total_steps) / total_steps
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))


def cw_ignores_min_lr(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    _validate(step, base_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    t = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
    return 0.5 * base_lr * (1 + math.cos(math.pi * t))


def cw_min_lr_added_on_top(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    _validate(step, base_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    t = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * base_lr * (1 + math.cos(math.pi * t))


def cw_no_clamp_after_total(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    # the cosine goes back up after total_steps
    _validate(step, base_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    t = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))


def cw_no_validation(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return min_lr
    t = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))


def cw_full_period(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    # cos(2 pi t): decays and comes back up within the run
    _validate(step, base_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    t = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(2 * math.pi * t))


def cw_warmup_from_min_lr(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    _validate(step, base_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return min_lr + (base_lr - min_lr) * step / warmup_steps
    t = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))


COSINE_WRONG = [cw_warmup_from_one, cw_cosine_over_total, cw_ignores_min_lr, cw_min_lr_added_on_top,
                cw_no_clamp_after_total, cw_no_validation, cw_full_period, cw_warmup_from_min_lr]


def cw_direct(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    _validate(step, base_lr, warmup_steps, total_steps, min_lr)
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return float(min_lr)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * progress))


def cw_multiplier(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    # a LambdaLR-style multiplier of base_lr, with NumPy and a clipped progress
    for value in (step, base_lr, warmup_steps, total_steps, min_lr):
        if value < 0:
            raise ValueError(f"negative value {value}")
    if not warmup_steps < total_steps:
        raise ValueError("warmup_steps must be < total_steps")
    if step < warmup_steps:
        return base_lr * (step / warmup_steps)
    progress = np.clip((step - warmup_steps) / (total_steps - warmup_steps), 0.0, 1.0)
    floor = min_lr / base_lr if base_lr else 0.0
    factor = floor + (1 - floor) * (np.cos(np.pi * progress) + 1) / 2
    return float(base_lr * factor) if base_lr else float(min_lr)


COSINE_RIGHT = [cw_direct, cw_multiplier]

WRONG = {
    "schedules.step_decay": STEP_DECAY_WRONG,
    "schedules.cosine_with_warmup": COSINE_WRONG,
}
RIGHT = {
    "schedules.step_decay": STEP_DECAY_RIGHT,
    "schedules.cosine_with_warmup": COSINE_RIGHT,
}
