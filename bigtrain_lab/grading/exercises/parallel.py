"""Exercises of the parallel topic (lesson 15). References: ``bigtrain_lab.parallel.tensor`` (Megatron-LM's
column- and row-parallel linear layers, each equal to one ``F.linear`` on the gathered weight) and
``bigtrain_lab.parallel.pipeline.pipeline_schedule`` (GPipe and 1F1B orders of torch.distributed.pipelining).

- ``parallel.column_parallel_linear(x, weight_shards, bias_shards)``: ``cat([x W_r^T + b_r], -1)``, within
  matmul rounding. Uneven shards, one shard, bias None, batch dims, a 1-D x, float64; TypeError for shards that
  are not a list of tensors, ValueError for mismatched counts or widths. Concatenating along the wrong dim,
  summing the shards' outputs, dropping or reordering biases fail.
- ``parallel.row_parallel_linear(x_shards, weight_shards, bias)``: ``sum(x_r W_r^T) + b`` within rounding. The
  bias added on every rank (``p b``), partial sums averaged (an AVG all-reduce), outputs concatenated and one
  shard only fail.
- ``parallel.pipeline_schedule(num_stages, num_microbatches, kind)``: compared exactly (lists of ``("F", mb)``
  / ``("B", mb)`` per stage; lists for the pairs accepted). When it differs the feedback names the first
  difference and runs ``check_schedule`` (missing / repeated operations, backward before forward, deadlock) and
  ``max_in_flight`` on the answer: a valid schedule that is not the one asked (backward in reverse order, one
  warm-up forward too many) is told apart from a broken one. ValueError for sizes < 1 or not int, an unknown kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bigtrain_lab.grading.exercises.optim import tensor_close
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe
from bigtrain_lab.parallel.pipeline import check_schedule, max_in_flight, pipeline_schedule
from bigtrain_lab.parallel.tensor import column_parallel_linear, row_parallel_linear

#: roundings allowed per output entry: a dot product over up to ~100 input features, summed in another order
LINEAR_STEPS = 256


def _t(rng: np.random.Generator, shape: tuple[int, ...], dtype: torch.dtype = torch.float32,
       scale: float = 1.0) -> torch.Tensor:
    return torch.tensor(rng.normal(0.0, scale, shape), dtype=dtype)


def _split(n: int, parts: int, rng: np.random.Generator, uneven: bool) -> list[int]:
    if not uneven:
        base, extra = divmod(n, parts)
        return [base + (1 if i < extra else 0) for i in range(parts)]
    cuts = sorted(rng.choice(np.arange(1, n), size=parts - 1, replace=False).tolist()) if parts > 1 else []
    edges = [0, *cuts, n]
    return [b - a for a, b in zip(edges, edges[1:], strict=False)]


def _random_split(rng: np.random.Generator, parts: int, high: int) -> list[int]:
    """A random size below ``high`` (at least ``parts``) cut into ``parts`` shards, even or not."""
    n = int(rng.integers(parts, high)) if parts > 1 else int(rng.integers(1, high))
    return _split(n, parts, rng, uneven=bool(rng.integers(2)))


def _random_extras(rng: np.random.Generator) -> tuple[tuple[int, ...], bool, torch.dtype]:
    """Random leading (batch) dimensions, bias or not (3 in 4 with), float32 or float64."""
    lead = tuple(int(v) for v in rng.integers(1, 5, size=int(rng.integers(1, 3))))
    bias = bool(rng.integers(4))
    return lead, bias, torch.float64 if rng.integers(2) else torch.float32


# ---- parallel.column_parallel_linear ------------------------------------------------------------------------


def _column_case(rng: np.random.Generator, label: str, lead: tuple[int, ...], in_f: int, outs: list[int], *,
                 bias: bool = True, dtype: torch.dtype = torch.float32) -> Case:
    x = _t(rng, (*lead, in_f), dtype)
    weights = [_t(rng, (o, in_f), dtype, 0.3) for o in outs]
    biases = [_t(rng, (o,), dtype) for o in outs] if bias else None
    return Case(label, (x, weights, biases))


def _column_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        _column_case(rng, "2 even shards (4 + 4 outputs), x (5, 6), with bias", (5,), 6, [4, 4]),
        _column_case(rng, "3 uneven shards (3 + 5 + 2 outputs): concatenate in rank order", (4,), 7, [3, 5, 2]),
        _column_case(rng, "bias_shards None", (3,), 5, [2, 3], bias=False),
        _column_case(rng, "1 shard: a plain linear layer", (4,), 6, [5]),
        _column_case(rng, "batch dims: x (2, 3, 8), 2 shards", (2, 3), 8, [6, 6]),
        _column_case(rng, "float64, 4 shards", (6,), 9, [2, 2, 2, 3], dtype=torch.float64),
        _column_case(rng, "a 1-D x (in,)", (), 5, [3, 4]),
        _column_case(rng, "shards of one output feature each", (4,), 3, [1, 1, 1, 1, 1]),
        Case("weight_shards a single tensor, not a list: TypeError",
             (_t(rng, (3, 4)), _t(rng, (6, 4)), None), raises=TypeError),
        Case("2 weight shards, 1 bias shard: ValueError",
             (_t(rng, (3, 4)), [_t(rng, (2, 4)), _t(rng, (2, 4))], [_t(rng, (2,))]), raises=ValueError),
        Case("a weight shard of the wrong input width: ValueError",
             (_t(rng, (3, 4)), [_t(rng, (2, 4)), _t(rng, (2, 5))], None), raises=ValueError),
    ]
    for i in range(4):
        parts, in_f = int(rng.integers(1, 6)), int(rng.integers(2, 40))
        outs = _random_split(rng, parts, 50)
        lead, bias, dtype = _random_extras(rng)
        cases.append(_column_case(rng, f"random #{i + 1}: x {(*lead, in_f)}, output shards {outs}, "
                                       f"{'bias' if bias else 'no bias'}, {str(dtype)[6:]}",
                                  lead, in_f, outs, bias=bias, dtype=dtype))
    return cases


register(Exercise(
    id="parallel.column_parallel_linear",
    reference=column_parallel_linear,
    make_cases=_column_cases,
    compare=tensor_close("the gathered output", steps=LINEAR_STEPS),
    hint="Each rank r holds rows W_r (out_r, in) of the weight and b_r (out_r,): y_r = x @ W_r.T + b_r (F.linear"
         "(x, W_r, b_r)) on the WHOLE x; the full output is torch.cat(y_r for r in rank order, dim=-1) (an "
         "all-gather along the features). bias_shards may be None. TypeError unless the shards are a list of "
         "tensors; ValueError for a different number of bias shards or a shard whose width is not x.shape[-1].",
    section="tensor-parallelism",
))


# ---- parallel.row_parallel_linear ---------------------------------------------------------------------------


def _row_case(rng: np.random.Generator, label: str, lead: tuple[int, ...], ins: list[int], out: int, *,
              bias: bool = True, dtype: torch.dtype = torch.float32, bias_scale: float = 1.0) -> Case:
    xs = [_t(rng, (*lead, i), dtype) for i in ins]
    weights = [_t(rng, (out, i), dtype, 0.3) for i in ins]
    return Case(label, (xs, weights, _t(rng, (out,), dtype, bias_scale) if bias else None))


def _row_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        _row_case(rng, "2 even shards (3 + 3 inputs), 4 outputs, with bias", (5,), [3, 3], 4),
        _row_case(rng, "3 uneven shards (3 + 5 + 2 inputs)", (4,), [3, 5, 2], 6),
        _row_case(rng, "bias None", (3,), [2, 4], 5, bias=False),
        _row_case(rng, "1 shard: a plain linear layer", (4,), [6], 3),
        _row_case(rng, "batch dims: x shards (2, 3, 4), 2 shards", (2, 3), [4, 4], 5),
        _row_case(rng, "float64, 4 shards", (6,), [2, 3, 2, 2], 7, dtype=torch.float64),
        _row_case(rng, "4 shards and a large bias: added ONCE, after the sum", (3,), [2, 2, 2, 2], 4,
                  bias_scale=10.0),
        _row_case(rng, "shards of one input feature each", (5,), [1, 1, 1], 2),
        Case("2 input shards, 3 weight shards: ValueError",
             ([_t(rng, (3, 2)), _t(rng, (3, 2))], [_t(rng, (4, 2)) for _ in range(3)], None), raises=ValueError),
        Case("weight shard 1 of the wrong width for x shard 1: ValueError",
             ([_t(rng, (3, 2)), _t(rng, (3, 3))], [_t(rng, (4, 2)), _t(rng, (4, 2))], None), raises=ValueError),
        Case("x_shards a single tensor, not a list: TypeError",
             (_t(rng, (3, 4)), [_t(rng, (2, 4))], None), raises=TypeError),
    ]
    for i in range(4):
        parts, out = int(rng.integers(1, 6)), int(rng.integers(1, 30))
        ins = _random_split(rng, parts, 60)
        lead, bias, dtype = _random_extras(rng)
        cases.append(_row_case(rng, f"random #{i + 1}: input shards {ins}, {out} outputs, lead dims {lead}, "
                                    f"{'bias' if bias else 'no bias'}, {str(dtype)[6:]}",
                               lead, ins, out, bias=bias, dtype=dtype))
    return cases


register(Exercise(
    id="parallel.row_parallel_linear",
    reference=row_parallel_linear,
    make_cases=_row_cases,
    compare=tensor_close("the reduced output", steps=LINEAR_STEPS),
    hint="Rank r holds the columns W_r (out, in_r) of the weight and sees only its slice x_r (..., in_r) of the "
         "input: x_r @ W_r.T is a PARTIAL sum. The output is the SUM of the partials over the ranks (an all-reduce "
         "SUM, not an average), then the bias, once (added on every rank before the all-reduce it would count "
         "p times). TypeError unless the shards are lists of tensors; ValueError for different counts or a shard "
         "whose width does not match its x shard.",
    section="tensor-parallelism",
))


# ---- parallel.pipeline_schedule -----------------------------------------------------------------------------


def _as_schedule(got: Any) -> tuple[list[list[tuple]] | None, str | None]:
    """The answer as lists of tuples, or the reason it is not a schedule's shape."""
    if not isinstance(got, list | tuple):
        return None, f"expected a list with one list of operations per stage, got {type(got).__name__}: " \
                     f"{describe(got, 80)}"
    out = []
    for s, ops in enumerate(got):
        if not isinstance(ops, list | tuple):
            return None, f"stage {s}: expected a list of operations, got {type(ops).__name__}: {describe(ops, 60)}"
        row = []
        for k, op in enumerate(ops):
            if not isinstance(op, list | tuple) or len(op) != 2:
                return None, f"stage {s}, position {k}: {describe(op, 40)} is not a pair like ('F', 0)"
            row.append((op[0], op[1]))
        out.append(row)
    return out, None


def _show_ops(ops: list[tuple]) -> str:
    text = " ".join(f"{k}{mb}" for k, mb in ops)
    return text if len(text) <= 120 else text[:117] + "..."


def _schedule_compare(got: Any, expected: list[list[tuple[str, int]]]) -> str | None:
    schedule, problem = _as_schedule(got)
    if problem:
        return problem
    if len(schedule) != len(expected):
        return f"{len(schedule)} stage lists, expected {len(expected)} (one per stage)"
    m = len(expected[0]) // 2
    for s, (mine, theirs) in enumerate(zip(schedule, expected, strict=True)):
        if mine == theirs:
            continue
        at = next((k for k, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b), min(len(mine),
                                                                                           len(theirs)))
        reason = (f"stage {s} differs from position {at}: got {_show_ops(mine)}; expected {_show_ops(theirs)}")
        try:
            problems = check_schedule(schedule, m)
        except Exception:  # noqa: BLE001 - a malformed answer: the difference above says enough
            problems = ["not a well-formed schedule"]
        if problems:
            return f"{reason}. Your schedule is not valid: {'; '.join(problems[:3])}"
        mine_flight, theirs_flight = max_in_flight(schedule), max_in_flight(expected)
        extra = (f"; it holds up to {mine_flight} micro-batches' activations per stage where the asked schedule "
                 f"holds {theirs_flight}" if mine_flight != theirs_flight else "")
        return f"{reason}. Your schedule is valid (every dependency can be met) but not the one asked{extra}"
    return None


def _schedule_cases(rng: np.random.Generator) -> list[Case]:
    cases = [
        Case("p 1, m 1, gpipe: F0 B0", (1, 1, "gpipe")),
        Case("p 1, m 4, 1f1b: one stage, no warm-up", (1, 4, "1f1b")),
        Case("p 2, m 1, 1f1b: one micro-batch", (2, 1, "1f1b")),
        Case("p 4, m 2, 1f1b: m < p, the warm-up is min(p - s - 1, m)", (4, 2, "1f1b")),
        Case("p 4, m 4, 1f1b", (4, 4, "1f1b")),
        Case("p 4, m 16, 1f1b: m >> p", (4, 16, "1f1b")),
        Case("p 3, m 5, gpipe: backward in micro-batch order", (3, 5, "gpipe")),
        Case("p 2, m 3, gpipe", (2, 3, "gpipe")),
        Case("p 8, m 32, 1f1b", (8, 32, "1f1b")),
        Case("p 5, m 3, 1f1b: m < p", (5, 3, "1f1b")),
        Case("num_stages 0: ValueError", (0, 4, "gpipe"), raises=ValueError),
        Case("num_microbatches 0: ValueError", (2, 0, "1f1b"), raises=ValueError),
        Case("num_stages 2.0 (not an int): ValueError", (2.0, 2, "1f1b"), raises=ValueError),
        Case("kind 'interleaved': ValueError", (2, 2, "interleaved"), raises=ValueError),
    ]
    for i in range(4):
        p, m = int(rng.integers(1, 9)), int(rng.integers(1, 33))
        kind = str(rng.choice(["gpipe", "1f1b"]))
        cases.append(Case(f"random #{i + 1}: p {p}, m {m}, {kind}", (p, m, kind)))
    return cases


register(Exercise(
    id="parallel.pipeline_schedule",
    reference=pipeline_schedule,
    make_cases=_schedule_cases,
    compare=_schedule_compare,
    hint="Return [ops of stage 0, ..., ops of stage p-1], each a list of ('F', mb) / ('B', mb). gpipe: "
         "[('F', i) for i in range(m)] + [('B', i) for i in range(m)] on every stage. 1f1b: stage s warms up with "
         "w = min(p - s - 1, m) forwards F0..F(w-1); then for i in range(m - w): F(w + i), B(i); then the "
         "backwards B(m - w)..B(m - 1). ValueError unless p and m are ints >= 1 and kind is 'gpipe' or '1f1b'.",
    section="pipeline-parallelism",
))
