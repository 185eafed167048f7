"""Plausible WRONG ZeRO memory estimates (``memory.adam_training_bytes``) (each must be rejected by ``check``) and several different
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


WRONG = {"memory.adam_training_bytes": ZERO_WRONG}
RIGHT = {"memory.adam_training_bytes": ZERO_RIGHT}
