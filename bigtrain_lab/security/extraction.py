"""Model extraction: copying a model through its prediction API.

- ``QueryAPI``: a deployed model as an attacker sees it, answering labels or probabilities, counting the
  queries and refusing past an optional budget (a rate limit).
- ``query_inputs``: what the attacker sends: uniform noise, or its own unlabeled in-distribution images
  (after the first pass, randomly shifted and rotated variants of them).
- ``steal``: train a surrogate on the API's answers (hard labels: cross-entropy; probabilities: soft
  cross-entropy, i.e. distillation); ``agreement``: how often two models give the same label.
- ``extraction_curve``: agreement with the victim against the number of queries.

The attack needs no weights, no gradients and no training data with labels: only answers. Encrypting the
weights on disk does nothing against it; what limits it is how many queries, and how much per answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn

from bigtrain_lab.augment.transforms import RandomAffine
from bigtrain_lab.fit import fit_classifier
from bigtrain_lab.train import TrainResult

__all__ = ["QUERY_KINDS", "RETURNS", "QueryAPI", "QueryLimitExceeded", "agreement", "extraction_curve",
           "query_inputs", "steal"]

RETURNS = ("labels", "probabilities")
QUERY_KINDS = ("uniform", "pool")


class QueryLimitExceeded(RuntimeError):
    """The API's query budget is spent."""


class QueryAPI:
    """``api(x)`` answers a batch of queries with the model's labels (int64) or probabilities (float, rounded
    to ``decimals`` when given), the model in eval mode and without gradients. ``api.queries`` counts the
    rows answered; a batch that would exceed ``limit`` rows raises ``QueryLimitExceeded`` and is not answered."""

    def __init__(self, model: nn.Module, *, returns: str = "labels", limit: int | None = None,
                 decimals: int | None = None) -> None:
        if returns not in RETURNS:
            raise ValueError(f"returns must be one of {RETURNS}, got {returns!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be None or an integer >= 0, got {limit!r}")
        if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0):
            raise ValueError(f"decimals must be None or an integer >= 0, got {decimals!r}")
        self.model, self.returns, self.limit, self.decimals = model, returns, limit, decimals
        self.queries = 0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = int(x.shape[0])
        if self.limit is not None and self.queries + n > self.limit:
            raise QueryLimitExceeded(f"query budget spent: {self.queries} of {self.limit} answered, "
                                     f"{n} more asked")
        was_training = self.model.training
        self.model.eval()
        try:
            logits = self.model(x)
        finally:
            self.model.train(was_training)
        self.queries += n
        if self.returns == "labels":
            return logits.argmax(dim=-1)
        probs = logits.softmax(dim=-1)
        return probs if self.decimals is None else torch.round(probs, decimals=self.decimals)


def query_inputs(kind: str, n: int, *, pool: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """``n`` query rows of 64 pixels in [0, 1]. ``"uniform"``: independent uniform pixels (no data at all).
    ``"pool"``: the attacker's own unlabeled images ``pool`` (``(M, 64)``), in a random order; past the
    first ``M`` queries, variants of them rotated up to 10 degrees and shifted up to one pixel."""
    if kind not in QUERY_KINDS:
        raise ValueError(f"kind must be one of {QUERY_KINDS}, got {kind!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    generator = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        return torch.rand(n, 64, generator=generator)
    if pool is None or pool.dim() != 2 or pool.shape[0] == 0 or pool.shape[1] != 64:
        raise ValueError(f"kind='pool' needs pool of shape (M, 64), got {None if pool is None else tuple(pool.shape)}")
    m = pool.shape[0]
    order = torch.cat([torch.randperm(m, generator=generator) for _ in range(-(-n // m))])[:n]
    rows = pool[order].clone()
    if n > m:
        variants = RandomAffine(degrees=10, translate=(0.125, 0.125)).apply_batch(rows[m:].view(-1, 1, 8, 8),
                                                                                  generator)
        rows[m:] = variants.reshape(-1, 64).clamp(0, 1)
    return rows


def steal(api: Callable[[torch.Tensor], torch.Tensor], X_queries: torch.Tensor, surrogate: nn.Module, *,
          steps: int = 400, batch_size: int = 64, lr: float = 3e-3, seed: int = 0) -> TrainResult:
    """Ask ``api`` once for every row of ``X_queries`` and train ``surrogate`` in place on the answers with
    ``fit_classifier`` (``steps`` batches drawn with replacement, so any number of queries works): labels ->
    cross-entropy on them, probabilities -> cross-entropy against them (soft targets, as in distillation)."""
    answers = api(X_queries)
    if answers.dtype.is_floating_point and answers.dim() != 2:
        raise ValueError(f"probabilities must be (N, classes), got shape {tuple(answers.shape)}")
    return fit_classifier(surrogate, X_queries, answers, steps=steps, batch_size=batch_size, lr=lr,
                          sampling="random", seed=seed)


@torch.no_grad()
def agreement(a: nn.Module, b: nn.Module, X: torch.Tensor) -> float:
    """Fraction of the rows of ``X`` on which the two models give the same label (both in eval mode, their
    modes restored)."""
    modes = (a.training, b.training)
    a.eval()
    b.eval()
    try:
        return float((a(X).argmax(-1) == b(X).argmax(-1)).double().mean())
    finally:
        a.train(modes[0])
        b.train(modes[1])


def extraction_curve(victim: nn.Module, make_surrogate: Callable[[], nn.Module], X_eval: torch.Tensor,
                     query_counts: Sequence[int], *, kinds: Sequence[str] = QUERY_KINDS,
                     returns: Sequence[str] = RETURNS, pool: torch.Tensor | None = None,
                     y_eval: torch.Tensor | None = None, steps: int = 400, seed: int = 0,
                     progress: Any = None) -> list[dict[str, Any]]:
    """Steal ``victim`` with ``make_surrogate()`` for every query kind x answer type x number of queries.
    Rows: ``kind``, ``returns``, ``queries``, ``agreement`` (with the victim on ``X_eval``) and, with
    ``y_eval``, the surrogate's ``accuracy``. ``progress`` wraps the list of runs (e.g. ``tqdm``)."""
    runs = [(k, r, int(n)) for k in kinds for r in returns for n in query_counts]
    rows = []
    for kind, answer, n in (progress(runs) if progress is not None else runs):
        api = QueryAPI(victim, returns=answer)
        torch.manual_seed(seed)
        surrogate = make_surrogate()
        steal(api, query_inputs(kind, n, pool=pool, seed=seed), surrogate, steps=steps, seed=seed)
        row: dict[str, Any] = {"kind": kind, "returns": answer, "queries": api.queries,
                               "agreement": agreement(surrogate, victim, X_eval)}
        if y_eval is not None:
            with torch.no_grad():
                surrogate.eval()
                row["accuracy"] = float((surrogate(X_eval).argmax(-1) == y_eval).double().mean())
        rows.append(row)
    return rows
