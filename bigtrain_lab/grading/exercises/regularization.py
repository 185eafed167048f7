"""Exercises of the regularization topic (lesson 10). References: torch's own where one exists.

- ``regularization.inverted_dropout(x, p, *, training, generator)``: sampled, so checked in distribution,
  never against a fixed mask. A runner calls the candidate and judges what came back: in eval mode or with
  ``p == 0`` the very values of ``x``; in training every element either 0 or exactly ``x / (1 - p)``
  (within a few roundings), the number of zeros ``k`` within ``6 sqrt(n p (1 - p))`` of ``n p`` (a right
  answer falls outside with probability about 2e-9 per case), the mean within 6 standard deviations of
  ``mean(x)``, the same output from two generators seeded alike and new draws from a second call on the
  same generator. ``ValueError`` unless ``0 <= p < 1``, in training and in eval (``F.dropout`` takes
  ``p == 1``; a division by ``1 - p`` cannot).
- ``regularization.label_smoothing_cross_entropy``: the value of ``F.cross_entropy(logits, target,
  weight=weight, ignore_index=ignore_index, label_smoothing=smoothing)`` (mean reduction), torch's
  weighted-mean semantics included (both terms divided by the total weight of the non-ignored targets;
  all targets ignored gives ``nan``), for ``(N, C)`` and ``(N, C, d1, ...)`` logits.
- ``regularization.early_stopping``: ``(stop_epoch, best_epoch)`` as
  :class:`bigtrain_lab.regularization.EarlyStopping` decides (its docstring states the rules: strict
  improvement by more than ``min_delta``, ties and NaN do not improve, stop when ``wait >= patience``,
  ``patience=0`` like 1, None when it never stops).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bigtrain_lab.grading.compare import as_real, eps
from bigtrain_lab.grading.draws import SeededGenerator, stream_problem
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe
from bigtrain_lab.regularization.functional import early_stopping

# ---- regularization.inverted_dropout -------------------------------------------------------------

#: |zeros - n p| above this many binomial standard deviations rejects (about 2e-9 for a right answer).
SIGMAS = 6.0


@dataclass(frozen=True)
class Dropped:
    """What the runner saw of the candidate's outputs; ``problem`` is the first thing wrong, or ''."""

    problem: str
    summary: str

    def __repr__(self) -> str:
        return self.problem or self.summary


def _output_problem(y: Any, x: torch.Tensor) -> str:
    if not isinstance(y, torch.Tensor):
        return f"returned {type(y).__name__} ({describe(y, 60)}): return a tensor like x"
    if tuple(y.shape) != tuple(x.shape) or y.dtype != x.dtype:
        return f"returned shape {tuple(y.shape)} / {y.dtype}, expected {tuple(x.shape)} / {x.dtype} (like x)"
    return ""


def _dropout_problem(y: torch.Tensor, x: torch.Tensor, p: float) -> tuple[str, str]:
    """(problem, summary) of one training-mode output."""
    tol = 8 * eps(x.dtype)  # x * (1 / (1 - p)) and x / (1 - p) differ by a rounding or two
    y, x = y.detach().double(), x.double()
    n = x.numel()
    dropped = y == 0
    scaled = x / (1.0 - p)
    bad = ~dropped & ((y - scaled).abs() > tol * scaled.abs())
    if bool(bad.any()):
        i = int(bad.flatten().nonzero()[0])
        ratio = float(y.flatten()[i] / x.flatten()[i])
        return (f"a kept element must be x / (1 - p) = x * {1 / (1 - p):.6g}; element {i} is x * {ratio:.6g}"
                f"{' (scaled by 1 / p?)' if math.isclose(ratio, 1 / p, rel_tol=1e-4) else ''}"
                f"{' (not rescaled?)' if math.isclose(ratio, 1.0, rel_tol=1e-6) else ''}"), ""
    k = int(dropped.sum())
    sd = math.sqrt(n * p * (1 - p))
    summary = f"{k} of {n} zeroed (expected {n * p:.1f} +- {sd:.1f}), kept ones scaled by 1 / (1 - p)"
    if abs(k - n * p) > SIGMAS * sd + 1:
        keep_swapped = abs(k - n * (1 - p)) <= SIGMAS * sd + 1
        return (f"{k} of {n} elements were zeroed; with p = {p:g} that should be about {n * p:.0f} "
                f"(+- {SIGMAS * sd:.0f}){': p is the probability to DROP, not to keep' if keep_swapped else ''}"
                ), summary
    mean_sd = math.sqrt(p / (1 - p) * float((x**2).mean()) / n)
    if abs(float(y.mean() - x.mean())) > SIGMAS * mean_sd + 1e-12:
        return (f"the mean moved from {float(x.mean()):.4g} to {float(y.mean()):.4g}: inverted dropout keeps "
                "the expected value"), summary
    return "", summary


def run_dropout(fn: Any, x: torch.Tensor, p: float, *, training: bool, generator: torch.Generator,
                twins: tuple[torch.Generator, torch.Generator]) -> Dropped:
    """Call ``fn(x, p, training=..., generator=...)`` and judge the output's distribution; in training also
    call it again on the same generator and once on each of two generators seeded alike."""
    y = fn(x, p, training=training, generator=generator)
    if problem := _output_problem(y, x):
        return Dropped(problem, "")
    if not training or p == 0:
        if not torch.equal(y.detach(), x):
            why = "eval mode" if not training else "p = 0"
            return Dropped(f"{why} must return x unchanged (the identity), got {describe(y, 80)}", "")
        return Dropped("", "x unchanged")
    problem, summary = _dropout_problem(y, x, p)
    if problem:
        return Dropped(problem, summary)
    again = fn(x, p, training=True, generator=generator)
    a, b = (fn(x, p, training=True, generator=g) for g in twins)
    for other in (again, a, b):
        if problem := _output_problem(other, x):
            return Dropped(problem, summary)
    if problem := stream_problem(y, again, a, b, same=torch.equal, what="masks",
                                 example="torch.rand(x.shape, generator=generator)",
                                 global_state="torch's global generator", repeat_possible=x.numel() < 20):
        return Dropped(problem, summary)
    return Dropped("", summary)


def _dropped_compare(got: Any, expected: Dropped) -> str | None:  # noqa: ARG001 - judged by the runner
    if not isinstance(got, Dropped):
        return f"unexpected result {describe(got, 80)}"
    return got.problem or None


def _reference_dropout(x: torch.Tensor, p: float, *, training: bool,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """torch's own dropout, its mask drawn from ``generator`` (``F.dropout`` takes none: the same
    Bernoulli(1 - p) mask and 1 / (1 - p) scaling as ATen's CPU kernel)."""
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p}")
    if not training or p == 0:
        return F.dropout(x, p, training=False)
    keep = torch.empty_like(x).bernoulli_(1 - p, generator=generator)
    return x * keep.div_(1 - p)


def _away_from_zero(rng: np.random.Generator, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """Values of random sign with magnitudes in [0.5, 2], so that a 0 in the output is a dropped element."""
    values = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape) + 0.1
    return torch.tensor(values, dtype=dtype)


def _dropout_cases(rng: np.random.Generator) -> list[Case]:
    def case(label: str, shape: tuple, p: float, training: bool = True, dtype: torch.dtype = torch.float32,
             **kw: Any) -> Case:
        seed, twin = (int(s) for s in rng.integers(2**31, size=2))
        return Case(label, (_away_from_zero(rng, shape, dtype), p),
                    {"training": training, "generator": SeededGenerator(seed),
                     "twins": (SeededGenerator(twin), SeededGenerator(twin))}, **kw)

    cases = [
        case("p = 0.5 on a 100 x 100 matrix", (100, 100), 0.5),
        case("p = 0.1 (survivors scaled by 1 / 0.9, not by 0.1 or 1.1)", (5000,), 0.1),
        case("p = 0.8: most elements dropped, survivors scaled by 5", (50, 80), 0.8),
        case("a batch of images (8, 3, 12, 12), p = 0.3", (8, 3, 12, 12), 0.3),
        case("float64, p = 0.25 (keep the dtype)", (4000,), 0.25, dtype=torch.float64),
        case("p = 0 in training: the identity", (30, 40), 0.0),
        case("eval mode (training=False), p = 0.5: the identity, no scaling", (30, 40), 0.5, training=False),
        case("eval mode, p = 0.9", (200,), 0.9, training=False),
        case("a single element, p = 0.5", (1,), 0.5),
        case("p = 1 would divide by zero: ValueError", (10,), 1.0, raises=ValueError),
        case("p = -0.1: ValueError", (10,), -0.1, raises=ValueError),
        case("p = 1.5: ValueError", (10,), 1.5, raises=ValueError),
        case("p = -0.2 in eval mode: ValueError too", (10,), -0.2, training=False, raises=ValueError),
    ]
    for i in range(3):
        p = float(np.round(rng.uniform(0.05, 0.9), 3))
        shape = tuple(int(s) for s in rng.integers(2, 40, size=int(rng.integers(1, 4))))
        if int(np.prod(shape)) < 500:
            shape = (*shape, 500)
        cases.append(case(f"random #{i + 1} (shape {shape}, p = {p})", shape, p))
    return cases


register(Exercise(
    id="regularization.inverted_dropout",
    reference=_reference_dropout,
    make_cases=_dropout_cases,
    compare=_dropped_compare,
    run=run_dropout,
    hint="ValueError unless 0 <= p < 1 (check it first, in eval mode too). In eval mode or with p == 0 return x "
         "unchanged. In training: keep = (torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p) -- "
         "the mask from the generator you are given -- and return x * keep / (1 - p): p is the probability "
         "to DROP, survivors are scaled by 1 / (1 - p) so the expected value stays x. Do not modify x.",
    section="dropout",
))


# ---- regularization.label_smoothing_cross_entropy ------------------------------------------------

#: (rtol, atol) of the loss per dtype: a right answer differs from torch's only by rounding.
LOSS_TOLERANCE = {torch.float64: (1e-10, 1e-12), torch.float32: (3e-5, 3e-6)}


def _reference_ls_ce(logits: torch.Tensor, target: torch.Tensor, *, smoothing: float,
                     weight: torch.Tensor | None = None, ignore_index: int = -100) -> torch.Tensor:
    """torch's own loss, with the ``ValueError`` the exercise asks for (torch raises RuntimeError above 1)."""
    if not 0 <= smoothing <= 1:
        raise ValueError(f"smoothing must be in [0, 1], got {smoothing}")
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, label_smoothing=smoothing)


def _loss_compare(got: Any, expected: torch.Tensor) -> str | None:
    try:
        value = as_real(got, "the loss as a 0-d tensor (or a number)")
    except Exception as e:  # noqa: BLE001 - WrongKind with its message
        return str(e)
    exp = float(expected)
    if math.isnan(exp):
        if math.isnan(value):
            return None
        return (f"expected nan (every target is ignore_index: torch divides 0 by a total weight of 0), got "
                f"{value!r}")
    if math.isnan(value):
        return "returned NaN (log of a softmax that underflowed? use F.log_softmax / logsumexp)"
    rtol, atol = LOSS_TOLERANCE.get(expected.dtype, LOSS_TOLERANCE[torch.float32])
    if not math.isclose(value, exp, rel_tol=rtol, abs_tol=atol):
        return f"loss differs: expected {exp!r}, got {value!r}"
    return None


def _ls_cases(rng: np.random.Generator) -> list[Case]:
    def logits(*shape: int, dtype: torch.dtype = torch.float64, scale: float = 2.0) -> torch.Tensor:
        return torch.tensor(rng.normal(0, scale, shape), dtype=dtype)

    def target(c: int, *shape: int, ignored: float = 0.0, ignore_index: int = -100) -> torch.Tensor:
        t = torch.tensor(rng.integers(0, c, shape), dtype=torch.int64)
        t[torch.tensor(rng.uniform(size=shape) < ignored)] = ignore_index
        return t

    def weight(c: int) -> torch.Tensor:
        return torch.tensor(rng.uniform(0.2, 3.0, c), dtype=torch.float64)

    def case(label: str, lg: torch.Tensor, t: torch.Tensor, s: float, **kw: Any) -> Case:
        raises = kw.pop("raises", None)
        return Case(label, (lg, t), {"smoothing": s, **kw}, raises=raises)

    t_ign = target(5, 12, ignored=0.3)
    t_ign[0] = 1  # at least one target counts
    t_two = target(4, 10)
    t_two[::3] = 2
    w6 = weight(6)
    cases = [
        case("(8, 5) logits, smoothing 0.1", logits(8, 5), target(5, 8), 0.1),
        case("smoothing 0: plain cross-entropy", logits(6, 4), target(4, 6), 0.0),
        case("smoothing 1: cross-entropy against the uniform distribution", logits(6, 4), target(4, 6), 1.0),
        case("smoothing 0.3 over 10 classes (s / C to every class, the true one included)", logits(16, 10),
             target(10, 16), 0.3),
        case("class weights, no smoothing: the mean is divided by the sum of the targets' weights",
             logits(10, 3), target(3, 10), 0.0, weight=weight(3)),
        case("class weights and smoothing 0.2 (the smoothing term weighted by w[c] too)", logits(10, 6),
             target(6, 10), 0.2, weight=w6),
        case("ignore_index = -100 (the default): those rows leave both terms and the mean", logits(12, 5),
             t_ign, 0.1),
        case("ignore_index = 2, a real class index", logits(10, 4), t_two, 0.15, ignore_index=2),
        case("class weights and ignored rows", logits(12, 5), t_ign, 0.25, weight=weight(5)),
        case("every target ignored: nan (0 / 0), as torch gives", logits(4, 3), torch.full((4,), -100), 0.1),
        case("(N, C, d) logits: a sequence of 7 positions per row", logits(3, 4, 7), target(4, 3, 7), 0.1),
        case("(N, C, H, W) logits with weights, ignored pixels and smoothing 0.2", logits(2, 3, 4, 5),
             target(3, 2, 4, 5, ignored=0.2), 0.2, weight=weight(3)),
        case("large logits (scale 1e4, float32): use log_softmax, not log(softmax(.))",
             logits(6, 5, dtype=torch.float32, scale=1e4), target(5, 6), 0.1),
        case("float32 logits", logits(20, 7, dtype=torch.float32), target(7, 20), 0.1),
        case("a single row", logits(1, 5), target(5, 1), 0.1),
        case("two classes", logits(9, 2), target(2, 9), 0.4),
        case("smoothing -0.1: ValueError", logits(4, 3), target(3, 4), -0.1, raises=ValueError),
        case("smoothing 1.5: ValueError", logits(4, 3), target(3, 4), 1.5, raises=ValueError),
    ]
    for i in range(3):
        n, c = int(rng.integers(1, 30)), int(rng.integers(2, 12))
        s = float(np.round(rng.uniform(0, 1), 3))
        kw = {"weight": weight(c)} if i % 2 else {}
        cases.append(case(f"random #{i + 1} ({n} rows, {c} classes, smoothing {s}{', weights' if kw else ''})",
                          logits(n, c), target(c, n, ignored=0.1), s, **kw))
    return cases


register(Exercise(
    id="regularization.label_smoothing_cross_entropy",
    reference=_reference_ls_ce,
    make_cases=_ls_cases,
    compare=_loss_compare,
    hint="ValueError unless 0 <= smoothing <= 1. logp = F.log_softmax(logits, dim=1) (stable: never "
         "log(softmax)). keep = target != ignore_index; t = target where kept, else 0. w_t = weight[t] (1 "
         "without weights) * keep. nll = -(w_t * logp.gather(1, t.unsqueeze(1)).squeeze(1)).sum(); smooth = "
         "-(sum over classes of w[c] * logp[:, c], kept rows only).sum(). loss = ((1 - s) * nll + s / C * "
         "smooth) / w_t.sum(): s / C goes to EVERY class (the true one too), not s / (C - 1) to the others, "
         "and both terms are divided by the total weight of the kept targets (nan when none is kept).",
    section="label-smoothing",
))


# ---- regularization.early_stopping ----------------------------------------------------------------


def _epoch_pair_compare(got: Any, expected: tuple) -> str | None:
    names = ("stop_epoch", "best_epoch")
    if isinstance(got, list):
        got = tuple(got)
    if not isinstance(got, tuple) or len(got) != 2:
        return f"expected a tuple (stop_epoch, best_epoch), got {describe(got, 80)}"
    wrong = []
    for name, value, exp in zip(names, got, expected, strict=True):
        if value is None or exp is None:
            if value is not exp:
                what = "None (it never stops within the list)" if name == "stop_epoch" else "None (no finite loss)"
                wrong.append(f"{name}: expected {what if exp is None else exp}, got {value!r}")
            continue
        try:
            number = as_real(value, f"an epoch index for {name}")
        except Exception as e:  # noqa: BLE001 - WrongKind with its message
            return str(e)
        if number != int(exp):
            wrong.append(f"{name}: expected {exp}, got {value!r}")
    return "; ".join(wrong) or None


def _es_cases(rng: np.random.Generator) -> list[Case]:
    nan, inf = math.nan, math.inf

    def case(label: str, losses: Any, patience: int, min_delta: float = 0.0, **kw: Any) -> Case:
        return Case(label, (losses,), {"patience": patience, "min_delta": min_delta}, **kw)

    cases = [
        case("a plateau after epoch 2, patience 2", [1.0, 0.8, 0.7, 0.75, 0.72, 0.71, 0.6], 2),
        case("patience 3: stops on the 3rd epoch in a row without improvement", [1.0, 0.9, 0.95, 0.96, 0.97, 0.5],
             3),
        case("a tie with the best is no improvement", [1.0, 0.5, 0.5, 0.5, 0.4], 2),
        case("improvements by less than min_delta = 0.05 do not count", [1.0, 0.97, 0.96, 0.98, 0.9, 0.8], 2,
             0.05),
        case("an improvement by exactly min_delta does not count (strictly more)", [1.0, 0.75, 0.5, 0.25], 1,
             0.25),
        case("improving every epoch: never stops (stop_epoch None)", [5.0, 4.0, 3.0, 2.0, 1.0], 1),
        case("patience 0: stops at the first epoch without improvement (as patience 1)",
             [1.0, 0.9, 0.95, 0.8], 0),
        case("patience 1", [1.0, 0.9, 0.95, 0.8], 1),
        case("a NaN loss is no improvement (and does not poison the best)", [1.0, nan, 0.9, nan, nan, 0.1], 2),
        case("a NaN at the first epoch", [nan, 1.0, 0.9, 0.95, 0.99, 0.98], 2),
        case("only NaN losses: best_epoch None", [nan, nan, nan], 2),
        case("+inf losses never improve", [inf, inf, 2.0, inf, 1.0], 2),
        case("an empty list: (None, None)", [], 3),
        case("the best before the stop is not the overall minimum after it", [3.0, 1.0, 2.0, 2.0, 0.1], 2),
        case("losses as a NumPy array", np.array([0.9, 0.8, 0.85, 0.84, 0.83, 0.7]), 3),
        case("a large patience that is never reached", [1.0, 1.1, 1.2, 1.3], 10),
        case("patience -1: ValueError", [1.0, 0.9], -1, raises=ValueError),
        case("min_delta -0.1: ValueError", [1.0, 0.9], 1, -0.1, raises=ValueError),
    ]
    for i in range(4):
        n = int(rng.integers(5, 60))
        walk = 1.0 + np.cumsum(rng.normal(-0.01, 0.03, n))
        # on a grid of 1/64 (exact in binary, so "better by more than min_delta" has one answer): ties happen
        losses = [float(v) for v in np.round(walk * 64) / 64]
        if i == 3:
            losses[int(rng.integers(n))] = nan
        patience = int(rng.integers(0, 6))
        min_delta = float(rng.choice([0.0, 0.0, 1 / 64, 2 / 64]))
        cases.append(case(f"random #{i + 1} ({n} epochs, patience {patience}, min_delta {min_delta})", losses,
                          patience, min_delta))
    return cases


register(Exercise(
    id="regularization.early_stopping",
    reference=early_stopping,
    make_cases=_es_cases,
    compare=_epoch_pair_compare,
    hint="ValueError for patience < 0 or min_delta < 0. best = inf, best_epoch = None, wait = 0. For epoch, "
         "loss in enumerate(val_losses): it improves iff math.isfinite(loss) and loss < best - min_delta "
         "(strictly: a tie or a gain of min_delta or less does not count; NaN never improves) -> best, "
         "best_epoch, wait = loss, epoch, 0; otherwise wait += 1 and if wait >= patience: return (epoch, "
         "best_epoch). After the loop: (None, best_epoch).",
    section="early-stopping",
))
