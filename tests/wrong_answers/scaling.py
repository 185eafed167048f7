"""Plausible WRONG ZeRO memory estimates (each must be rejected by ``check``) and several different
CORRECT ones (each must be accepted)."""


def _validate(zero_stage, world_size):
    if zero_stage not in (0, 1, 2, 3) or world_size < 1:
        raise ValueError("invalid stage or world size")


def zb_no_master_copy(n_params, *, zero_stage=0, world_size=1):
    # Adam's states as 8 bytes (momentum + variance), forgetting the fp32 master weights: K = 8, not 12
    _validate(zero_stage, world_size)
    p, g, o = 2.0, 2.0, 8.0
    if zero_stage >= 1:
        o /= world_size
    if zero_stage >= 2:
        g /= world_size
    if zero_stage >= 3:
        p /= world_size
    return n_params * (p + g + o)


def zb_stage_order_swapped(n_params, *, zero_stage=0, world_size=1):
    # stage 1 shards the gradients, stage 2 adds the optimizer states
    _validate(zero_stage, world_size)
    p, g, o = 2.0, 2.0, 12.0
    if zero_stage >= 1:
        g /= world_size
    if zero_stage >= 2:
        o /= world_size
    if zero_stage >= 3:
        p /= world_size
    return n_params * (p + g + o)


def zb_ddp_divides_everything(n_params, *, zero_stage=0, world_size=1):
    # "data parallel splits the model": divides by world_size at every stage
    _validate(zero_stage, world_size)
    return 16.0 * n_params / world_size


def zb_in_gigabytes(n_params, *, zero_stage=0, world_size=1):
    _validate(zero_stage, world_size)
    sharded = 12 * (zero_stage >= 1) + 2 * (zero_stage >= 2) + 2 * (zero_stage >= 3)
    return n_params * ((16 - sharded) + sharded / world_size) / 1e9


def zb_fp32_everything(n_params, *, zero_stage=0, world_size=1):
    # fp32 weights and gradients (4 + 4) instead of fp16 (2 + 2)
    _validate(zero_stage, world_size)
    p, g, o = 4.0, 4.0, 12.0
    if zero_stage >= 1:
        o /= world_size
    if zero_stage >= 2:
        g /= world_size
    if zero_stage >= 3:
        p /= world_size
    return n_params * (p + g + o)


def zb_no_validation(n_params, *, zero_stage=0, world_size=1):
    sharded = 12 * (zero_stage >= 1) + 2 * (zero_stage >= 2) + 2 * (zero_stage >= 3)
    return n_params * ((16 - sharded) + sharded / max(world_size, 1))


def zb_stage1_shards_params(n_params, *, zero_stage=0, world_size=1):
    # stage 1 sharding the fp16 weights together with the optimizer states
    _validate(zero_stage, world_size)
    p, g, o = 2.0, 2.0, 12.0
    if zero_stage >= 1:
        o /= world_size
        p /= world_size
    if zero_stage >= 2:
        g /= world_size
    return n_params * (p + g + o)


ZERO_WRONG = [zb_no_master_copy, zb_stage_order_swapped, zb_ddp_divides_everything, zb_in_gigabytes,
              zb_fp32_everything, zb_no_validation, zb_stage1_shards_params]


def zb_table(n_params, *, zero_stage=0, world_size=1):
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    try:
        replicated, sharded = {0: (16, 0), 1: (4, 12), 2: (2, 14), 3: (0, 16)}[zero_stage]
    except KeyError:
        raise ValueError(f"no ZeRO stage {zero_stage}") from None
    return float(n_params * replicated + n_params * sharded / world_size)


def zb_per_state(n_params, *, zero_stage=0, world_size=1):
    if not 0 <= zero_stage <= 3 or world_size < 1:
        raise ValueError("zero_stage in 0..3 and world_size >= 1")
    bytes_per_param = {"params": 2, "grads": 2, "optimizer": 12}
    first_stage_sharding = {"optimizer": 1, "grads": 2, "params": 3}
    total = 0.0
    for name, size in bytes_per_param.items():
        divisor = world_size if zero_stage >= first_stage_sharding[name] else 1
        total += n_params * size / divisor
    return total


ZERO_RIGHT = [zb_table, zb_per_state]

FP32_MAX = 3.4028234663852886e38


def _check_factors(growth_factor, backoff_factor, growth_interval):
    if growth_factor <= 1.0 or not 0.0 < backoff_factor < 1.0 or growth_interval < 1:
        raise ValueError("bad factors")


def ls_no_reset_on_growth(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                          growth_interval=2000):
    # grows, but keeps counting instead of starting again
    _check_factors(growth_factor, backoff_factor, growth_interval)
    if found_inf:
        return scale * backoff_factor, 0
    tracker = growth_tracker + 1
    if tracker >= growth_interval:
        new = scale * growth_factor
        return (new if new <= FP32_MAX else scale), tracker
    return scale, tracker


def ls_keep_tracker_on_overflow(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                                growth_interval=2000):
    # backs off but does not reset the count of clean steps
    _check_factors(growth_factor, backoff_factor, growth_interval)
    if found_inf:
        return scale * backoff_factor, growth_tracker
    tracker = growth_tracker + 1
    if tracker == growth_interval:
        new = scale * growth_factor
        return (new if new <= FP32_MAX else scale), 0
    return scale, tracker


def ls_off_by_one(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                  growth_interval=2000):
    # compares the count before adding this step
    _check_factors(growth_factor, backoff_factor, growth_interval)
    if found_inf:
        return scale * backoff_factor, 0
    if growth_tracker == growth_interval:
        new = scale * growth_factor
        return (new if new <= FP32_MAX else scale), 0
    return scale, growth_tracker + 1


def ls_python_float_scale(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                          growth_interval=2000):
    # right rule, but forgets that the scale lives in an fp32 tensor (grows past fp32's max)
    _check_factors(growth_factor, backoff_factor, growth_interval)
    if found_inf:
        return scale * backoff_factor, 0
    tracker = growth_tracker + 1
    if tracker == growth_interval:
        return scale * growth_factor, 0
    return scale, tracker


def ls_divides_on_overflow(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                           growth_interval=2000):
    # "backoff" as a division: scale / backoff_factor grows the scale after an overflow
    _check_factors(growth_factor, backoff_factor, growth_interval)
    if found_inf:
        return scale / backoff_factor, 0
    tracker = growth_tracker + 1
    if tracker == growth_interval:
        new = scale * growth_factor
        return (new if new <= FP32_MAX else scale), 0
    return scale, tracker


def ls_no_validation(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                     growth_interval=2000):
    if found_inf:
        return scale * backoff_factor, 0
    tracker = growth_tracker + 1
    if tracker >= growth_interval:
        new = scale * growth_factor
        return (new if new <= FP32_MAX else scale), 0
    return scale, tracker


LOSS_SCALE_WRONG = [ls_no_reset_on_growth, ls_keep_tracker_on_overflow, ls_off_by_one, ls_python_float_scale,
                    ls_divides_on_overflow, ls_no_validation]


def ls_numpy_float32(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                     growth_interval=2000):
    import numpy as np

    if not growth_factor > 1.0 or not 0.0 < backoff_factor < 1.0 or growth_interval < 1:
        raise ValueError("growth_factor > 1, 0 < backoff_factor < 1, growth_interval >= 1")
    s = np.float32(scale)
    if found_inf:
        return float(s * np.float32(backoff_factor)), 0
    if growth_tracker + 1 < growth_interval:
        return float(s), growth_tracker + 1
    with np.errstate(over="ignore"):
        grown = s * np.float32(growth_factor)
    return float(grown if np.isfinite(grown) else s), 0


def ls_with_gradscaler(scale, growth_tracker, found_inf, *, growth_factor=2.0, backoff_factor=0.5,
                       growth_interval=2000):
    import torch

    if growth_interval < 1 or growth_factor <= 1.0 or not 0.0 < backoff_factor < 1.0:
        raise ValueError("invalid GradScaler settings")
    scaler = torch.amp.GradScaler("cpu", init_scale=scale, growth_factor=growth_factor,
                                  backoff_factor=backoff_factor, growth_interval=growth_interval)
    scaler._lazy_init_scale_growth_tracker(torch.device("cpu"))
    scaler._growth_tracker.fill_(growth_tracker)
    found = torch.tensor([1.0 if found_inf else 0.0])
    torch._amp_update_scale_(scaler._scale, scaler._growth_tracker, found, growth_factor, backoff_factor,
                             growth_interval)
    return scaler.get_scale(), int(scaler._growth_tracker.item())


LOSS_SCALE_RIGHT = [ls_numpy_float32, ls_with_gradscaler]

WRONG = {"scaling.adam_training_bytes": ZERO_WRONG, "scaling.update_loss_scale": LOSS_SCALE_WRONG}
RIGHT = {"scaling.adam_training_bytes": ZERO_RIGHT, "scaling.update_loss_scale": LOSS_SCALE_RIGHT}
