"""Plausible WRONG back-of-envelope answers (``estimate.*``), each rejected by ``check``, and different CORRECT
ones, each accepted."""

import math


def _check_memory(n_params, dp, tp, pp, zero_stage):
    if zero_stage not in (0, 1, 2, 3) or min(dp, tp, pp) < 1 or n_params < 0:
        raise ValueError("bad plan")


# ---- estimate.training_memory_per_gpu ----------------------------------------------------------------------

def mem_stage1_shards_weights(n_params, *, dp=1, tp=1, pp=1, zero_stage=0, param_bytes=2, grad_bytes=2,
                              optimizer_bytes=12):
    # ZeRO-1 sharding the weights instead of the optimizer states
    _check_memory(n_params, dp, tp, pp, zero_stage)
    n = n_params / (tp * pp)
    return n * (param_bytes / (dp if zero_stage >= 1 else 1) + grad_bytes / (dp if zero_stage >= 2 else 1)
                + optimizer_bytes / (dp if zero_stage >= 3 else 1))


def mem_forgets_tp_pp(n_params, *, dp=1, tp=1, pp=1, zero_stage=0, param_bytes=2, grad_bytes=2,
                      optimizer_bytes=12):
    # model parallelism forgotten: every GPU holds the whole model
    _check_memory(n_params, dp, tp, pp, zero_stage)
    return n_params * (param_bytes / (dp if zero_stage >= 3 else 1) + grad_bytes / (dp if zero_stage >= 2 else 1)
                       + optimizer_bytes / (dp if zero_stage >= 1 else 1))


def mem_dp_divides_all(n_params, *, dp=1, tp=1, pp=1, zero_stage=0, param_bytes=2, grad_bytes=2,
                       optimizer_bytes=12):
    # "data parallel splits the model": everything divided by dp at any stage
    _check_memory(n_params, dp, tp, pp, zero_stage)
    return n_params / (tp * pp * dp) * (param_bytes + grad_bytes + optimizer_bytes)


def mem_ignores_byte_arguments(n_params, *, dp=1, tp=1, pp=1, zero_stage=0, param_bytes=2, grad_bytes=2,
                               optimizer_bytes=12):
    # 16 bytes hard-coded: the keyword arguments are ignored
    _check_memory(n_params, dp, tp, pp, zero_stage)
    n = n_params / (tp * pp)
    return n * (2 / (dp if zero_stage >= 3 else 1) + 2 / (dp if zero_stage >= 2 else 1)
                + 12 / (dp if zero_stage >= 1 else 1))


def mem_in_gib(n_params, *, dp=1, tp=1, pp=1, zero_stage=0, param_bytes=2, grad_bytes=2, optimizer_bytes=12):
    _check_memory(n_params, dp, tp, pp, zero_stage)
    n = n_params / (tp * pp)
    return n * (param_bytes / (dp if zero_stage >= 3 else 1) + grad_bytes / (dp if zero_stage >= 2 else 1)
                + optimizer_bytes / (dp if zero_stage >= 1 else 1)) / 2**30


def mem_right_table(n_params, *, dp=1, tp=1, pp=1, zero_stage=0, param_bytes=2, grad_bytes=2, optimizer_bytes=12):
    _check_memory(n_params, dp, tp, pp, zero_stage)
    sharded = {0: (), 1: ("o",), 2: ("o", "g"), 3: ("o", "g", "p")}[zero_stage]
    sizes = {"p": param_bytes, "g": grad_bytes, "o": optimizer_bytes}
    return sum(n_params * b / (tp * pp) / (dp if k in sharded else 1) for k, b in sizes.items())


def mem_right_replicated_plus_sharded(n_params, *, dp=1, tp=1, pp=1, zero_stage=0, param_bytes=2, grad_bytes=2,
                                      optimizer_bytes=12):
    if isinstance(zero_stage, bool) or zero_stage not in range(4):
        raise ValueError(f"zero_stage {zero_stage!r}")
    if dp < 1 or tp < 1 or pp < 1 or n_params < 0:
        raise ValueError("sizes must be >= 1 and the count >= 0")
    order = [optimizer_bytes, grad_bytes, param_bytes]
    sharded = sum(order[:zero_stage])
    replicated = sum(order[zero_stage:])
    return float(n_params) / tp / pp * (replicated + sharded / dp)


# ---- estimate.training_days --------------------------------------------------------------------------------

def _check_days(n_gpus, mfu):
    if not 0 < mfu <= 1 or n_gpus < 1:
        raise ValueError("bad mfu or n_gpus")


def days_2nd(n_params, n_tokens, n_gpus, peak_flops, mfu):
    # forward only: 2 N D
    _check_days(n_gpus, mfu)
    return 2 * n_params * n_tokens / (n_gpus * peak_flops * mfu) / 86400


def days_ignores_mfu(n_params, n_tokens, n_gpus, peak_flops, mfu):
    _check_days(n_gpus, mfu)
    return 6 * n_params * n_tokens / (n_gpus * peak_flops) / 86400


def days_in_hours(n_params, n_tokens, n_gpus, peak_flops, mfu):
    _check_days(n_gpus, mfu)
    return 6 * n_params * n_tokens / (n_gpus * peak_flops * mfu) / 3600


def days_multiplies_mfu(n_params, n_tokens, n_gpus, peak_flops, mfu):
    # MFU applied the wrong way round
    _check_days(n_gpus, mfu)
    return 6 * n_params * n_tokens * mfu / (n_gpus * peak_flops) / 86400


def days_no_validation(n_params, n_tokens, n_gpus, peak_flops, mfu):
    return 6 * n_params * n_tokens / (max(n_gpus, 1) * peak_flops * max(mfu, 1e-9)) / 86400


def days_right_via_rate(n_params, n_tokens, n_gpus, peak_flops, mfu):
    _check_days(n_gpus, mfu)
    tokens_per_second = n_gpus * peak_flops * mfu / (6 * n_params)
    return n_tokens / tokens_per_second / (24 * 3600)


def days_right_gpu_hours(n_params, n_tokens, n_gpus, peak_flops, mfu):
    if n_gpus < 1:
        raise ValueError("n_gpus must be >= 1")
    if not (0 < mfu <= 1):
        raise ValueError("mfu must be in (0, 1]")
    gpu_hours = 6.0 * n_params * n_tokens / (peak_flops * mfu) / 3600
    return gpu_hours / n_gpus / 24


# ---- estimate.allreduce_seconds ----------------------------------------------------------------------------

def _check_ar(message_bytes, n_gpus, bandwidth, latency):
    if message_bytes < 0 or n_gpus < 1 or bandwidth <= 0 or latency < 0:
        raise ValueError("bad arguments")


def ar_m_over_b(message_bytes, n_gpus, bandwidth, latency=0.0):
    _check_ar(message_bytes, n_gpus, bandwidth, latency)
    return 0.0 if n_gpus == 1 else message_bytes / bandwidth + 2 * (n_gpus - 1) * latency


def ar_2m_over_b(message_bytes, n_gpus, bandwidth, latency=0.0):
    # 2 M / B, the large-n limit, without the (n - 1) / n
    _check_ar(message_bytes, n_gpus, bandwidth, latency)
    return 0.0 if n_gpus == 1 else 2 * message_bytes / bandwidth + 2 * (n_gpus - 1) * latency


def ar_latency_once(message_bytes, n_gpus, bandwidth, latency=0.0):
    _check_ar(message_bytes, n_gpus, bandwidth, latency)
    return 0.0 if n_gpus == 1 else 2 * (n_gpus - 1) / n_gpus * message_bytes / bandwidth + latency


def ar_one_phase(message_bytes, n_gpus, bandwidth, latency=0.0):
    # only the reduce-scatter: (n - 1) steps
    _check_ar(message_bytes, n_gpus, bandwidth, latency)
    return (n_gpus - 1) * (latency + message_bytes / (n_gpus * bandwidth))


def ar_tree_log(message_bytes, n_gpus, bandwidth, latency=0.0):
    # a binary tree's log2(n) steps of the whole message
    _check_ar(message_bytes, n_gpus, bandwidth, latency)
    return math.ceil(math.log2(n_gpus)) * (latency + message_bytes / bandwidth)


def ar_right_phases(message_bytes, n_gpus, bandwidth, latency=0.0):
    _check_ar(message_bytes, n_gpus, bandwidth, latency)
    chunk = message_bytes / n_gpus
    reduce_scatter = (n_gpus - 1) * (latency + chunk / bandwidth)
    all_gather = (n_gpus - 1) * (latency + chunk / bandwidth)
    return reduce_scatter + all_gather


def ar_right_bus_bandwidth(message_bytes, n_gpus, bandwidth, latency=0.0):
    if message_bytes < 0 or latency < 0:
        raise ValueError("message_bytes and latency must be >= 0")
    if n_gpus < 1 or bandwidth <= 0:
        raise ValueError("n_gpus >= 1 and bandwidth > 0")
    factor = 2 * (n_gpus - 1) / n_gpus  # nccl-tests: bus bandwidth = algorithm bandwidth x factor
    return factor * message_bytes / bandwidth + 2 * (n_gpus - 1) * latency


WRONG = {
    "estimate.training_memory_per_gpu": [mem_stage1_shards_weights, mem_forgets_tp_pp, mem_dp_divides_all,
                                         mem_ignores_byte_arguments, mem_in_gib],
    "estimate.training_days": [days_2nd, days_ignores_mfu, days_in_hours, days_multiplies_mfu, days_no_validation],
    "estimate.allreduce_seconds": [ar_m_over_b, ar_2m_over_b, ar_latency_once, ar_one_phase, ar_tree_log],
}
RIGHT = {
    "estimate.training_memory_per_gpu": [mem_right_table, mem_right_replicated_plus_sharded],
    "estimate.training_days": [days_right_via_rate, days_right_gpu_hours],
    "estimate.allreduce_seconds": [ar_right_phases, ar_right_bus_bandwidth],
}
