"""Exercises of the privacy topic (lesson 12). References: ``bigtrain_lab.privacy.dpsgd`` and
``bigtrain_lab.privacy.mechanisms``.

- ``privacy.per_sample_gradients(model, loss_fn, x, y)``: a ``(B, P)`` tensor, row ``i`` the flattened gradient
  (parameters in ``model.parameters()`` order, those with ``requires_grad`` only) of
  ``loss_fn(model(x[i:i+1]), y[i:i+1])``. float64 models (an MLP, a CNN, one with a frozen layer, one without
  biases, a regression loss), compared within a few rounding errors; a runner checks that the model's
  parameters are left as they were. The batch-mean gradient repeated B times, per-sample gradients divided by
  B (opacus's ``grad_sample`` under a mean loss), parameters in name order, or frozen parameters included
  all differ.
- ``privacy.clip_and_noise(per_sample_grads, *, max_norm, noise_multiplier, generator)``: with
  ``noise_multiplier == 0`` compared exactly (within rounding) with the clipped mean; with noise, a runner
  takes ``r = B * out - sum of the clipped rows`` (the noise the candidate added) and tests it against
  ``N(0, (noise_multiplier * max_norm)**2)`` per coordinate by a Kolmogorov-Smirnov statistic
  (``sqrt(P) * D <= 3``: a right answer exceeds it with probability about 3e-8), and that the noise comes
  from ``generator`` (two generators seeded alike give the same output; a second call on the same one does
  not). Noise of std ``noise_multiplier`` (no ``max_norm``), noise added after dividing by B, noise added to
  every row, clipping the mean instead of each row, or scaling small gradients up all fail.
- ``privacy.laplace_mechanism(value, *, sensitivity, epsilon, rng)``: a float for a scalar, an array of the
  value's shape otherwise; the added noise ``(out - value) / (sensitivity / epsilon)`` tested against the
  standard Laplace CDF by the same KS statistic on 20,000-element arrays (Gaussian noise of the same
  scale gives about 7, twice the limit); the draws must come from ``rng``.
  ValueError for epsilon or sensitivity <= 0 and non-finite input.
- ``privacy.randomized_response(bits, *, epsilon, rng)``: ``(reports, estimate)``; each bit kept with
  probability ``p = e**eps / (1 + e**eps)``, tested separately on the ones and on the zeros by a binomial z
  score (``|z| <= 5``), and ``estimate`` must be the unbiased estimate from THOSE reports,
  ``(mean(reports) - (1 - p)) / (2 p - 1)`` (within 1e-9). The raw mean of the reports, Warner's fixed
  p = 3/4, flipping with probability p, or an estimator with the wrong offset fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.grading.case_models import CaseModel, restore_parameters, snapshot_parameters
from bigtrain_lab.grading.draws import SeededGenerator, SeededRng, ks_uniform, stream_problem
from bigtrain_lab.grading.exercises.optim import tensor_close
from bigtrain_lab.grading.registry import Case, Exercise, InputModified, register
from bigtrain_lab.grading.sandbox import describe
from bigtrain_lab.privacy.dpsgd import clip_and_noise, per_sample_gradients
from bigtrain_lab.privacy.mechanisms import laplace_mechanism, randomized_response

#: sqrt(n) * D above this rejects: P(Kolmogorov > 3.0) is about 3e-8 for a right answer.
KS_LIMIT = 3.0
#: |z| above this rejects a keep rate: P(|N(0, 1)| > 5) is about 6e-7 for a right answer.
Z_LIMIT = 5.0


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(z)


def _laplace_cdf(z: np.ndarray) -> np.ndarray:
    return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))


# ---- privacy.per_sample_gradients ---------------------------------------------------------------


def _models(rng: np.random.Generator) -> dict[str, CaseModel]:
    torch.manual_seed(int(rng.integers(2**31)))
    frozen = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    frozen[0].requires_grad_(False)
    return {
        "mlp": CaseModel("MLP 6 -> 8 (tanh) -> 3", nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))),
        "cnn": CaseModel("Conv2d(1, 3, 3) -> ReLU -> Flatten -> Linear(27, 4) on (1, 5, 5) images",
                         nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(27, 4))),
        "frozen": CaseModel("MLP 6 -> 5 -> 3 whose first Linear is frozen (requires_grad=False)", frozen),
        "nobias": CaseModel("two Linear layers without bias, 4 -> 6 -> 2",
                            nn.Sequential(nn.Linear(4, 6, bias=False), nn.Sigmoid(), nn.Linear(6, 2, bias=False))),
        "regression": CaseModel("MLP 3 -> 4 (softplus) -> 2, a regression head",
                                nn.Sequential(nn.Linear(3, 4), nn.Softplus(), nn.Linear(4, 2))),
    }


_INPUT_SHAPE = {"mlp": (6,), "cnn": (1, 5, 5), "frozen": (6,), "nobias": (4,), "regression": (3,)}
_CLASSES = {"mlp": 3, "cnn": 4, "frozen": 3, "nobias": 2}


def run_per_sample(fn: Callable[..., Any], model: nn.Module, loss_fn: Callable[..., Any], x: torch.Tensor,
                   y: torch.Tensor) -> Any:
    """``fn(model, loss_fn, x, y)``; InputModified if the model's parameters changed."""
    before = snapshot_parameters(model)
    out = fn(model, loss_fn, x, y)
    if restore_parameters(model, before):
        raise InputModified("the model's parameters changed (per-sample gradients are computed, not applied)")
    return out


def _per_sample_cases(rng: np.random.Generator) -> list[Case]:
    models = _models(rng)

    def batch(name: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor(rng.normal(0, 1.0, (n, *_INPUT_SHAPE[name])), dtype=torch.float64)
        if name == "regression":
            return x, torch.tensor(rng.normal(0, 1.0, (n, 2)), dtype=torch.float64)
        return x, torch.tensor(rng.integers(0, _CLASSES[name], n), dtype=torch.int64)

    def case(label: str, name: str, n: int, loss_fn: Callable[..., Any] = F.cross_entropy) -> Case:
        return Case(label, (models[name], loss_fn, *batch(name, n)))

    cases = [
        case("MLP, a batch of 1 (equals the ordinary gradient)", "mlp", 1),
        case("MLP, a batch of 5, cross-entropy", "mlp", 5),
        case("a small CNN on (1, 5, 5) images, a batch of 4", "cnn", 4),
        case("a frozen first layer: only trainable parameters count", "frozen", 6),
        case("no biases, a batch of 3", "nobias", 3),
        case("a regression loss (F.mse_loss), a batch of 4", "regression", 4, F.mse_loss),
    ]
    names = sorted(models)
    for i in range(4):
        name = names[int(rng.integers(len(names)))]
        n = int(rng.integers(2, 12))
        cases.append(case(f"random #{i + 1}: {models[name].description}, a batch of {n}", name, n,
                          F.mse_loss if name == "regression" else F.cross_entropy))
    return cases


register(Exercise(
    id="privacy.per_sample_gradients",
    reference=per_sample_gradients,
    make_cases=_per_sample_cases,
    compare=tensor_close("the per-sample gradients", {torch.float64: (1e-7, 1e-9)}),
    hint="params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}; "
         "def loss_one(params, xi, yi): return loss_fn(torch.func.functional_call(model, params, (xi[None],)), "
         "yi[None]); g = torch.func.vmap(torch.func.grad(loss_one), in_dims=(None, 0, 0))(params, x, y); "
         "return torch.cat([g[n].reshape(len(x), -1) for n in params], dim=1). A loop over the rows with "
         "torch.autograd.grad gives the same (slower). Not the batch gradient, not divided by B.",
    section="per-sample-gradients",
    run=run_per_sample,
    time_limit=10.0,
))


# ---- privacy.clip_and_noise ---------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseCheck:
    """What the runner saw of a noisy call; ``problem`` is the first thing wrong, or ''."""

    problem: str
    ks: float  # sqrt(P) * KS distance of the added noise to N(0, std**2)
    measured_std: float
    std: float

    def __repr__(self) -> str:
        if self.problem:
            return self.problem
        return (f"noise of std {self.measured_std:.4g} (expected {self.std:.4g}), sqrt(P) * KS distance to "
                f"N(0, std**2) = {self.ks:.2f}, reproducible with the same seed")


def _vector_problem(out: Any, g: torch.Tensor) -> str:
    if not isinstance(out, torch.Tensor):
        return f"returned {type(out).__name__} ({describe(out, 60)}): return a tensor of shape ({g.shape[1]},)"
    if tuple(out.shape) != (g.shape[1],):
        return f"returned shape {tuple(out.shape)}, expected ({g.shape[1]},): one noisy mean gradient"
    if not torch.isfinite(out).all():
        return "returned NaN or infinite values"
    return ""


def run_clip_and_noise(fn: Callable[..., Any], per_sample_grads: torch.Tensor, *, max_norm: float,
                       noise_multiplier: float, generator: torch.Generator,
                       twins: tuple[torch.Generator, torch.Generator] | None = None) -> Any:
    """Noise 0: the candidate's output. With noise: a ``NoiseCheck`` of three more calls (same generator,
    and two generators seeded alike)."""
    before = per_sample_grads.clone()
    out = fn(per_sample_grads, max_norm=max_norm, noise_multiplier=noise_multiplier, generator=generator)
    if not torch.equal(before, per_sample_grads):
        per_sample_grads.copy_(before)
        raise InputModified("per_sample_grads was changed in place (clip a copy)")
    if twins is None:
        return out
    std = noise_multiplier * max_norm
    if problem := _vector_problem(out, per_sample_grads):
        return NoiseCheck(problem, math.nan, math.nan, std)
    again = fn(per_sample_grads, max_norm=max_norm, noise_multiplier=noise_multiplier, generator=generator)
    a = fn(per_sample_grads, max_norm=max_norm, noise_multiplier=noise_multiplier, generator=twins[0])
    b = fn(per_sample_grads, max_norm=max_norm, noise_multiplier=noise_multiplier, generator=twins[1])
    for other in (again, a, b):
        if problem := _vector_problem(other, per_sample_grads):
            return NoiseCheck(problem, math.nan, math.nan, std)
    if problem := stream_problem(out, again, a, b, same=torch.equal, what="noisy outputs",
                                 example="torch.normal(..., generator=generator)",
                                 global_state="torch's global generator"):
        return NoiseCheck(problem, math.nan, math.nan, std)
    batch = len(per_sample_grads)
    clipped_mean = clip_and_noise(per_sample_grads, max_norm=max_norm, noise_multiplier=0.0,
                                  generator=torch.Generator())  # the reference, without noise
    noise = (out.detach().double() - clipped_mean.double()) * batch
    z = (noise / std).numpy()
    return NoiseCheck("", ks_uniform(_normal_cdf(z)), float(noise.std()), std)


def _clip_compare(got: Any, expected: Any) -> str | None:
    if isinstance(expected, NoiseCheck):
        if not isinstance(got, NoiseCheck):
            return f"unexpected result {describe(got, 80)}"
        if got.problem:
            return got.problem
        if got.ks > KS_LIMIT:
            return (f"the added noise (B * output - the sum of the clipped rows) is not N(0, ({got.std:g})**2): "
                    f"its std is {got.measured_std:.4g}, sqrt(P) * KS distance {got.ks:.1f} (a right answer "
                    f"stays below {KS_LIMIT:g}). The noise has std noise_multiplier * max_norm and is added to "
                    "the SUM of the clipped gradients, once, before dividing by B")
        return None
    return _exact(got, expected)


_exact = tensor_close("the clipped mean gradient (noise_multiplier = 0)", {torch.float32: (1e-5, 1e-6)})


def _clip_cases(rng: np.random.Generator) -> list[Case]:
    def grads(b: int, p: int, scale: float) -> torch.Tensor:
        return torch.tensor(rng.normal(0, scale, (b, p)), dtype=torch.float32)

    def exact(label: str, g: torch.Tensor, max_norm: float, raises: type[BaseException] | None = None) -> Case:
        seed = int(rng.integers(2**31))
        return Case(label, (g,), {"max_norm": max_norm, "noise_multiplier": 0.0,
                                  "generator": SeededGenerator(seed)}, raises)

    def noisy(label: str, g: torch.Tensor, max_norm: float, sigma: float) -> Case:
        seed, twin = (int(s) for s in rng.integers(2**31, size=2))
        return Case(label, (g,), {"max_norm": max_norm, "noise_multiplier": sigma,
                                  "generator": SeededGenerator(seed),
                                  "twins": (SeededGenerator(twin), SeededGenerator(twin))})

    mixed = grads(6, 10, 1.0)
    mixed[:3] *= 0.01  # three rows well inside the ball: not scaled up
    cases = [
        exact("noise 0: every row longer than max_norm is scaled to max_norm", grads(4, 7, 3.0), 1.0),
        exact("noise 0: short rows are left as they are (the factor is min(1, C / norm))", mixed, 1.0),
        exact("noise 0: one example", grads(1, 5, 2.0), 0.5),
        exact("noise 0: a zero gradient row", torch.cat([grads(3, 6, 1.0), torch.zeros(1, 6)]), 1.0),
        exact("noise 0: a large max_norm clips nothing", grads(5, 8, 1.0), 1e6),
        noisy("noise 1.1, max_norm 1, 4,000 coordinates", grads(8, 4000, 1.0), 1.0, 1.1),
        noisy("noise 0.5, max_norm 0.1, 4,000 coordinates, batch 32", grads(32, 4000, 0.05), 0.1, 0.5),
        noisy("noise 4, max_norm 2, 3,000 coordinates, one example", grads(1, 3000, 1.0), 2.0, 4.0),
        exact("a 1-D input (not per-sample): ValueError", grads(1, 5, 1.0)[0], 1.0, ValueError),
        exact("max_norm 0: ValueError", grads(2, 5, 1.0), 0.0, ValueError),
        Case("a negative noise_multiplier: ValueError", (grads(2, 5, 1.0),),
             {"max_norm": 1.0, "noise_multiplier": -1.0, "generator": SeededGenerator(1)}, ValueError),
    ]
    for i in range(3):
        b, p = int(rng.integers(2, 20)), int(rng.integers(3, 60))
        max_norm = float(rng.choice([0.1, 0.5, 1.0, 4.0]))
        cases.append(exact(f"random #{i + 1}: noise 0, {b} examples x {p} parameters, max_norm {max_norm:g}",
                           grads(b, p, float(rng.choice([0.05, 0.5, 5.0]))), max_norm))
    return cases


register(Exercise(
    id="privacy.clip_and_noise",
    reference=clip_and_noise,
    make_cases=_clip_cases,
    compare=_clip_compare,
    run=run_clip_and_noise,
    hint="ValueError unless per_sample_grads is 2-D with B >= 1 rows, max_norm > 0 and noise_multiplier >= 0. "
         "norms = g.norm(dim=1, keepdim=True); clipped = g * (max_norm / (norms + 1e-6)).clamp(max=1.0); "
         "total = clipped.sum(0) + torch.normal(0.0, noise_multiplier * max_norm, size=total.shape, "
         "generator=generator) (only when noise_multiplier > 0); return total / B. Noise once, on the sum.",
    section="clipping-and-noise",
))


# ---- privacy.laplace_mechanism ------------------------------------------------------------------


@dataclass(frozen=True)
class Released:
    """What the runner saw of a mechanism's releases; ``problem`` is the first thing wrong, or ''."""

    problem: str
    ks: float
    n: int

    def __repr__(self) -> str:
        if self.problem:
            return self.problem
        ks = "" if math.isnan(self.ks) else f", sqrt(n) * KS distance to the Laplace CDF = {self.ks:.2f}"
        return f"{self.n} releases of the right type and shape, reproducible with the same seed{ks}"


def _release_problem(out: Any, value: Any) -> str:
    if np.ndim(value) == 0:
        if isinstance(out, bool) or not isinstance(out, float | np.floating):
            return f"returned {type(out).__name__} ({describe(out, 60)}) for a scalar value: return a float"
        return "" if math.isfinite(out) else "returned NaN or inf"
    if not isinstance(out, np.ndarray):
        return f"returned {type(out).__name__} for an array value: return a NumPy array of its shape"
    if out.shape != np.shape(value):
        return f"returned shape {out.shape}, expected {np.shape(value)}"
    if out.dtype.kind != "f":
        return f"returned dtype {out.dtype}: the releases are real numbers (float64)"
    return "" if np.isfinite(out).all() else "returned NaN or inf"


def run_laplace(fn: Callable[..., Any], value: Any, *, sensitivity: float, epsilon: float,
                rng: np.random.Generator, twins: tuple[np.random.Generator, np.random.Generator]) -> Released:
    """Release ``value`` twice from ``rng`` and once from each of two generators seeded alike."""
    outs = [fn(value, sensitivity=sensitivity, epsilon=epsilon, rng=r) for r in (rng, rng, *twins)]
    for out in outs:
        if problem := _release_problem(out, value):
            return Released(problem, math.nan, int(np.size(value)))
    if problem := stream_problem(*outs, same=np.array_equal, what="releases", example="rng.laplace",
                                 global_state="np.random's global state"):
        return Released(problem, math.nan, int(np.size(value)))
    n = int(np.size(value))
    if n < 1000:
        return Released("", math.nan, n)
    z = (np.asarray(outs[0], dtype=float) - np.asarray(value, dtype=float)).ravel() / (sensitivity / epsilon)
    return Released("", ks_uniform(_laplace_cdf(z)), n)


def _released_compare(got: Any, expected: Released) -> str | None:
    if not isinstance(got, Released):
        return f"unexpected result {describe(got, 80)}"
    if got.problem:
        return got.problem
    if got.ks > KS_LIMIT:
        return (f"the noise is not Laplace(0, sensitivity / epsilon): sqrt(n) * KS distance to its CDF is "
                f"{got.ks:.1f} (a right answer stays below {KS_LIMIT:g}). The scale is b = sensitivity / epsilon "
                "(more privacy, smaller epsilon, more noise); Laplace, not Gaussian")
    return None


def _laplace_cases(rng: np.random.Generator) -> list[Case]:
    def case(label: str, value: Any, sensitivity: float, epsilon: float,
             raises: type[BaseException] | None = None) -> Case:
        seed, twin = (int(s) for s in rng.integers(2**31, size=2))
        return Case(label, (value,), {"sensitivity": sensitivity, "epsilon": epsilon, "rng": SeededRng(seed),
                                      "twins": (SeededRng(twin), SeededRng(twin))}, raises)

    counts = rng.integers(0, 500, 20_000).astype(float)
    cases = [
        case("a count (sensitivity 1), epsilon 1: a float back", 42.0, 1.0, 1.0),
        case("an int count is a scalar too", 7, 1.0, 0.5),
        case("20,000 counts, epsilon 0.5 (scale 2)", counts, 1.0, 0.5),
        case("20,000 means of values in [0, 100] over 1,000 people (sensitivity 0.1), epsilon 2",
             rng.uniform(0, 100, 20_000), 0.1, 2.0),
        case("a 2-D array 100 x 200, sensitivity 5, epsilon 8", rng.normal(0, 10, (100, 200)), 5.0, 8.0),
        case("epsilon 0.01: very noisy", np.zeros(20_000), 1.0, 0.01),
        case("epsilon 0: ValueError", 1.0, 1.0, 0.0, ValueError),
        case("a negative epsilon: ValueError", 1.0, 1.0, -1.0, ValueError),
        case("sensitivity 0: ValueError", 1.0, 0.0, 1.0, ValueError),
        case("a NaN value: ValueError", float("nan"), 1.0, 1.0, ValueError),
    ]
    for i in range(3):
        sens, eps = float(rng.choice([0.5, 1.0, 2.0, 10.0])), float(rng.choice([0.1, 0.3, 1.0, 3.0, 10.0]))
        cases.append(case(f"random #{i + 1}: 20,000 values, sensitivity {sens:g}, epsilon {eps:g}",
                          rng.normal(0, 50, 20_000), sens, eps))
    return cases


register(Exercise(
    id="privacy.laplace_mechanism",
    reference=laplace_mechanism,
    make_cases=_laplace_cases,
    compare=_released_compare,
    run=run_laplace,
    hint="ValueError for epsilon <= 0, sensitivity <= 0 or a non-finite value / parameter. "
         "noise = rng.laplace(0.0, sensitivity / epsilon, size=np.shape(value)); a scalar value returns "
         "float(value + noise), an array np.asarray(value, dtype=float) + noise. Draw from rng.",
    section="the-laplace-mechanism",
))


# ---- privacy.randomized_response ----------------------------------------------------------------


@dataclass(frozen=True)
class Responses:
    """What the runner saw of the reports; ``problem`` is the first thing wrong, or ''."""

    problem: str
    z_ones: float  # z score of the keep rate among the true ones (nan when there are none)
    z_zeros: float
    n: int

    def __repr__(self) -> str:
        if self.problem:
            return self.problem
        return (f"{self.n} reports, keep-rate z scores {self.z_ones:.2f} (ones) and {self.z_zeros:.2f} (zeros), "
                "the estimate unbiased from those reports, reproducible with the same seed")


def _responses_problem(out: Any, bits: np.ndarray, epsilon: float) -> str:
    if not isinstance(out, tuple | list) or len(out) != 2:
        return f"expected a pair (reports, estimate), got {describe(out, 80)}"
    reports, estimate = out
    if not isinstance(reports, np.ndarray):
        return f"reports: expected a NumPy array, got {type(reports).__name__}"
    if reports.shape != bits.shape:
        return f"reports: shape {reports.shape}, expected {bits.shape} (one report per person)"
    if not np.isin(reports, (0, 1)).all():
        return "reports: every report is a bit, 0 or 1"
    if isinstance(estimate, bool) or not isinstance(estimate, float | np.floating | int | np.integer):
        return f"estimate: expected a float, got {type(estimate).__name__}: {describe(estimate, 60)}"
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    unbiased = (float(reports.mean()) - (1 - p)) / (2 * p - 1)
    if not math.isclose(float(estimate), unbiased, rel_tol=1e-9, abs_tol=1e-9):
        return (f"estimate {float(estimate)!r} is not the unbiased estimate from your reports, "
                f"(mean(reports) - (1 - p)) / (2p - 1) = {unbiased!r} with p = e^eps / (1 + e^eps) = {p:.6g} "
                f"(the raw mean of the reports is {float(reports.mean())!r})")
    return ""


def _z(kept: np.ndarray, p: float) -> float:
    n = len(kept)
    if n == 0:
        return math.nan
    return float((kept.sum() - n * p) / math.sqrt(n * p * (1 - p)))


def run_randomized_response(fn: Callable[..., Any], bits: Any, *, epsilon: float, rng: np.random.Generator,
                            twins: tuple[np.random.Generator, np.random.Generator]) -> Responses:
    """Ask ``fn`` twice with ``rng`` and once with each of two generators seeded alike."""
    truth = np.asarray(bits)
    outs = [fn(bits, epsilon=epsilon, rng=r) for r in (rng, rng, *twins)]
    for out in outs:
        if problem := _responses_problem(out, truth, epsilon):
            return Responses(problem, math.nan, math.nan, len(truth))
    if problem := stream_problem(*(out[0] for out in outs), same=np.array_equal, what="reports",
                                 example="rng.random", global_state="np.random's global state",
                                 repeat_possible=len(truth) == 1):
        return Responses(problem, math.nan, math.nan, len(truth))
    p = math.exp(epsilon) / (1 + math.exp(epsilon))
    kept = outs[0][0] == truth
    return Responses("", _z(kept[truth == 1], p), _z(kept[truth == 0], p), len(truth))


def _responses_compare(got: Any, expected: Responses) -> str | None:
    if not isinstance(got, Responses):
        return f"unexpected result {describe(got, 80)}"
    if got.problem:
        return got.problem
    for which, z in (("ones", got.z_ones), ("zeros", got.z_zeros)):
        if not math.isnan(z) and abs(z) > Z_LIMIT:
            return (f"among the true {which}, the share of truthful reports is off by {z:+.1f} standard errors "
                    f"(a right answer stays within {Z_LIMIT:g}): each answer is kept with probability "
                    "p = e^eps / (1 + e^eps) and flipped with 1 - p, whatever the bit")
    return None


def _rr_cases(rng: np.random.Generator) -> list[Case]:
    def case(label: str, bits: Any, epsilon: float, raises: type[BaseException] | None = None) -> Case:
        seed, twin = (int(s) for s in rng.integers(2**31, size=2))
        return Case(label, (bits,), {"epsilon": epsilon, "rng": SeededRng(seed),
                                     "twins": (SeededRng(twin), SeededRng(twin))}, raises)

    def survey(n: int, share: float) -> np.ndarray:
        return (rng.random(n) < share).astype(np.int64)

    cases = [
        case("10,000 people, 30 % ones, epsilon 1", survey(10_000, 0.3), 1.0),
        case("epsilon ln 3: Warner's p = 3/4", survey(8_000, 0.5), math.log(3)),
        case("epsilon 0.1: nearly a coin flip", survey(20_000, 0.2), 0.1),
        case("epsilon 5: nearly the truth", survey(5_000, 0.6), 5.0),
        case("everyone answers 1", np.ones(4_000, dtype=np.int64), 0.7),
        case("a Python list of bools counts as bits", [bool(b) for b in survey(3_000, 0.4)], 2.0),
        case("one person", np.array([1]), 1.0),
        case("no one: ValueError", np.array([], dtype=np.int64), 1.0, ValueError),
        case("a 2 is not a bit: ValueError", np.array([0, 1, 2]), 1.0, ValueError),
        case("epsilon 0: ValueError", np.array([0, 1]), 0.0, ValueError),
    ]
    for i in range(3):
        eps, share = float(rng.choice([0.25, 0.5, 1.5, 3.0])), float(rng.uniform(0.05, 0.95))
        n = int(rng.integers(3_000, 15_000))
        cases.append(case(f"random #{i + 1}: {n} people, {share:.0%} ones, epsilon {eps:g}", survey(n, share), eps))
    return cases


register(Exercise(
    id="privacy.randomized_response",
    reference=randomized_response,
    make_cases=_rr_cases,
    compare=_responses_compare,
    run=run_randomized_response,
    hint="bits = np.asarray(bits); ValueError if empty, not all in {0, 1}, or epsilon <= 0 / not finite. "
         "p = e**eps / (1 + e**eps); keep = rng.random(len(bits)) < p; reports = np.where(keep, bits, 1 - bits) "
         "(int64); E[mean(reports)] = (2p - 1) pi + (1 - p), so estimate = (reports.mean() - (1 - p)) / (2p - 1). "
         "Return (reports, float(estimate)).",
    section="randomized-response",
))
