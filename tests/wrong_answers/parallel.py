"""Plausible WRONG implementations of the ``parallel.*`` exercises (each must be rejected by ``check``), and
several different CORRECT ones (each must be accepted)."""

import torch
import torch.nn.functional as F

# ---- shared checks (every answer, right or wrong, validates like the reference) ----------------------------


def _shards(name, shards):
    if isinstance(shards, torch.Tensor) or not isinstance(shards, (list, tuple)) or not shards:
        raise TypeError(f"{name} must be a list of tensors")
    if not all(isinstance(t, torch.Tensor) for t in shards):
        raise TypeError(f"{name} must hold tensors")
    return list(shards)


def _column_check(x, weight_shards, bias_shards):
    ws = _shards("weight_shards", weight_shards)
    bs = [None] * len(ws) if bias_shards is None else _shards("bias_shards", bias_shards)
    if len(bs) != len(ws):
        raise ValueError("one bias shard per weight shard")
    if any(w.dim() != 2 or w.shape[1] != x.shape[-1] for w in ws):
        raise ValueError("weight shards must be (out_r, in)")
    return ws, bs


def _row_check(x_shards, weight_shards):
    xs, ws = _shards("x_shards", x_shards), _shards("weight_shards", weight_shards)
    if len(xs) != len(ws):
        raise ValueError("one weight shard per x shard")
    if any(w.dim() != 2 or w.shape[1] != x.shape[-1] for x, w in zip(xs, ws)):
        raise ValueError("weight shard widths must match the x shards")
    return xs, ws


# ---- parallel.column_parallel_linear -----------------------------------------------------------------------


def column_right_gathered_weight(x, weight_shards, bias_shards):
    ws, bs = _column_check(x, weight_shards, bias_shards)
    return F.linear(x, torch.cat(ws, 0), None if bias_shards is None else torch.cat(bs, 0))


def column_right_matmul_per_rank(x, weight_shards, bias_shards):
    ws, bs = _column_check(x, weight_shards, bias_shards)
    outs = []
    for w, b in zip(ws, bs):
        y = x @ w.t()
        outs.append(y if b is None else y + b)
    return torch.cat(outs, dim=-1)


def column_cat_dim0(x, weight_shards, bias_shards):
    # the ranks' outputs stacked along the batch (dim 0) instead of the features
    ws, bs = _column_check(x, weight_shards, bias_shards)
    return torch.cat([F.linear(x, w, b) for w, b in zip(ws, bs)], dim=0)


def column_sums_outputs(x, weight_shards, bias_shards):
    # an all-reduce where an all-gather belongs: the shards' outputs added up (wrong shape, or an error)
    ws, bs = _column_check(x, weight_shards, bias_shards)
    out = F.linear(x, ws[0], bs[0])
    for w, b in zip(ws[1:], bs[1:]):
        out = out + F.linear(x, w, b)
    return out


def column_drops_bias(x, weight_shards, bias_shards):
    ws, _ = _column_check(x, weight_shards, bias_shards)
    return torch.cat([F.linear(x, w) for w in ws], dim=-1)


def column_reversed_ranks(x, weight_shards, bias_shards):
    # the gathered pieces in reverse rank order
    ws, bs = _column_check(x, weight_shards, bias_shards)
    return torch.cat([F.linear(x, w, b) for w, b in zip(ws[::-1], bs[::-1])], dim=-1)


# ---- parallel.row_parallel_linear --------------------------------------------------------------------------


def row_right_gathered(x_shards, weight_shards, bias):
    xs, ws = _row_check(x_shards, weight_shards)
    return F.linear(torch.cat(xs, -1), torch.cat(ws, 1), bias)


def row_right_einsum(x_shards, weight_shards, bias):
    xs, ws = _row_check(x_shards, weight_shards)
    out = torch.stack([torch.einsum("...i,oi->...o", x, w) for x, w in zip(xs, ws)]).sum(0)
    return out if bias is None else out + bias


def row_bias_on_every_rank(x_shards, weight_shards, bias):
    # each rank adds the bias to its partial sum before the all-reduce: p * b
    xs, ws = _row_check(x_shards, weight_shards)
    return sum(F.linear(x, w, bias) for x, w in zip(xs, ws))


def row_averages_partials(x_shards, weight_shards, bias):
    # an all-reduce AVG (as for gradients in data parallelism) where a SUM belongs
    xs, ws = _row_check(x_shards, weight_shards)
    out = sum(F.linear(x, w) for x, w in zip(xs, ws)) / len(xs)
    return out if bias is None else out + bias


def row_concatenates_partials(x_shards, weight_shards, bias):
    # an all-gather where an all-reduce belongs
    xs, ws = _row_check(x_shards, weight_shards)
    out = torch.cat([F.linear(x, w) for x, w in zip(xs, ws)], -1)
    return out if bias is None else out + bias.repeat(len(xs))


def row_first_shard_only(x_shards, weight_shards, bias):
    # no communication at all: rank 0's partial sum taken as the output
    xs, ws = _row_check(x_shards, weight_shards)
    return F.linear(xs[0], ws[0], bias)


# ---- parallel.pipeline_schedule ----------------------------------------------------------------------------


def _schedule_check(num_stages, num_microbatches, kind):
    for v in (num_stages, num_microbatches):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError("sizes must be ints >= 1")
    if kind not in ("gpipe", "1f1b"):
        raise ValueError("kind must be 'gpipe' or '1f1b'")


def _one_f_one_b(p, m, warmup, *, backward_first=False):
    # per stage s: warmup(s) forwards, then pairs F(w + i), B(i) (or B(i), F(w + i)), then the last backwards
    out = []
    for s in range(p):
        w = warmup(s)
        steady = max(m - w, 0)
        ops = [("F", i) for i in range(w)]
        for i in range(steady):
            ops += [("B", i), ("F", w + i)] if backward_first else [("F", w + i), ("B", i)]
        out.append(ops + [("B", i) for i in range(steady, m)])
    return out


def schedule_right_phases(num_stages, num_microbatches, kind):
    _schedule_check(num_stages, num_microbatches, kind)
    p, m = num_stages, num_microbatches
    if kind == "gpipe":
        return [[("F", i) for i in range(m)] + [("B", i) for i in range(m)] for _ in range(p)]
    return _one_f_one_b(p, m, lambda s: min(p - s - 1, m))


def schedule_right_greedy(num_stages, num_microbatches, kind):
    # another correct one: run a forward while fewer than `cap` micro-batches are in flight, else a backward;
    # cap = m (gpipe: never a backward before every forward) or min(p - s, m) (1f1b)
    _schedule_check(num_stages, num_microbatches, kind)
    p, m = num_stages, num_microbatches
    out = []
    for s in range(p):
        cap = m if kind == "gpipe" else min(p - s, m)
        f = b = 0
        ops = []
        while b < m:
            if f < m and f - b < cap:
                ops.append(("F", f))
                f += 1
            else:
                ops.append(("B", b))
                b += 1
        out.append(ops)
    return out


def schedule_gpipe_backward_reversed(num_stages, num_microbatches, kind):
    # GPipe with the backwards last-in first-out (B(m-1) .. B0): a VALID schedule (same bubble, same m in
    # flight), but not the one asked: the exercise fixes torch.distributed.pipelining's ScheduleGPipe order
    # (micro-batch order), and this is not the reference's 1f1b either
    out = schedule_right_phases(num_stages, num_microbatches, kind)
    if kind == "gpipe":
        m = num_microbatches
        out = [[("F", i) for i in range(m)] + [("B", i) for i in reversed(range(m))] for _ in out]
    return out


def schedule_1f1b_warmup_p_minus_s(num_stages, num_microbatches, kind):
    # one warm-up forward too many (p - s instead of p - s - 1): still valid, but every stage holds one more
    # micro-batch's activations than 1F1B needs
    _schedule_check(num_stages, num_microbatches, kind)
    p, m = num_stages, num_microbatches
    if kind == "gpipe":
        return schedule_right_phases(p, m, kind)
    return _one_f_one_b(p, m, lambda s: min(p - s, m))


def schedule_1f1b_no_min(num_stages, num_microbatches, kind):
    # warm-up p - s - 1 without min(., m): for m < p it runs forwards of micro-batches that do not exist
    _schedule_check(num_stages, num_microbatches, kind)
    p, m = num_stages, num_microbatches
    if kind == "gpipe":
        return schedule_right_phases(p, m, kind)
    return _one_f_one_b(p, m, lambda s: p - s - 1)


def schedule_1f1b_backward_first(num_stages, num_microbatches, kind):
    # the steady state as B(i), F(w + i): the last stage (w = 0) would run B0 before F0
    _schedule_check(num_stages, num_microbatches, kind)
    p, m = num_stages, num_microbatches
    if kind == "gpipe":
        return schedule_right_phases(p, m, kind)
    return _one_f_one_b(p, m, lambda s: min(p - s - 1, m), backward_first=True)


def schedule_1f1b_stages_reversed(num_stages, num_microbatches, kind):
    # warm-up counted from the wrong end (w = min(s, m)): stage 0 waits for a backward that needs its own
    # later forwards -- a deadlock
    out = schedule_right_phases(num_stages, num_microbatches, kind)
    return out[::-1] if kind == "1f1b" else out


WRONG = {
    "parallel.column_parallel_linear": [column_cat_dim0, column_sums_outputs, column_drops_bias,
                                        column_reversed_ranks],
    "parallel.row_parallel_linear": [row_bias_on_every_rank, row_averages_partials, row_concatenates_partials,
                                     row_first_shard_only],
    "parallel.pipeline_schedule": [schedule_gpipe_backward_reversed, schedule_1f1b_warmup_p_minus_s,
                                   schedule_1f1b_no_min, schedule_1f1b_backward_first,
                                   schedule_1f1b_stages_reversed],
}
RIGHT = {
    "parallel.column_parallel_linear": [column_right_gathered_weight, column_right_matmul_per_rank],
    "parallel.row_parallel_linear": [row_right_gathered, row_right_einsum],
    "parallel.pipeline_schedule": [schedule_right_phases, schedule_right_greedy],
}
