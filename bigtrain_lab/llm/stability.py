"""Training stability of a small language model: loss spikes, what they look like inside, and the fixes.

* ``LayerStats``: an ``on_step`` hook for ``bigtrain_lab.llm.training.train_lm`` that records per-block
  statistics of every step: the gradient norm of each block's parameters, the relative size of each block's
  last weight update, the RMS of each block's output (the residual stream), the largest pre-softmax attention
  logit of each layer, and the output logits' RMS, largest magnitude and mean log-partition (what z-loss
  penalises). ``layer_series`` turns the recorded dicts into a (steps, layers) array.
* ``find_spikes`` / ``spike_onsets``: the steps whose loss jumps above the median of the steps before it.
* ``unigram_loss``: the cross-entropy of predicting every character by its training frequency -- a run whose
  validation loss ends there has learned nothing beyond character counts (it collapsed).
* ``StabilityConfig`` / ``stability_runs``: the same small character-level ``LLM`` trained under several
  settings (learning rate, clipping, z-loss, QK-norm, Adam's beta2) with the same seeds and the same batches,
  and what each run did (final validation loss, spikes, divergence, per-layer statistics).

Conventions: steps are 0-based, as in ``train_lm``. Losses are nats per token. An update ratio is
``||w_after - w_before|| / ||w_before||`` over all of a block's parameters; ``LayerStats`` measures it
between two calls, so the value returned at step ``t`` is the update of the optimizer step ``t - 1``
(``layer_series`` moves it back to the step that made it). The attention logits are those that reach
``torch.nn.functional.scaled_dot_product_attention`` (after QK-norm and rotary embeddings, scaled by
``1/sqrt(head_dim)``): ``LayerStats`` wraps that function while a block's attention runs, and nowhere else.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bigtrain_lab.llm.training import LMRun, train_lm

__all__ = ["LayerStats", "StabilityConfig", "StabilityResult", "default_configs", "find_spikes", "layer_series",
           "spike_onsets", "stability_runs", "unigram_loss"]

PER_LAYER_KEYS = ("grad_norm", "update_ratio", "act_rms", "attn_logit_max")
SCALAR_KEYS = ("logit_rms", "logit_max", "lse_mean", "ce")


def _blocks_of(model: nn.Module) -> list[nn.Module]:
    transformer = getattr(model, "transformer", None)
    blocks = getattr(transformer, "h", None) if transformer is not None else None
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        raise TypeError(f"{type(model).__name__} has no model.transformer.h block list (TinyGPT / LLM layout): "
                        f"pass blocks=[...] to LayerStats")
    return list(blocks)


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    return None


def _model_ce(model: nn.Module) -> float | None:
    aux = getattr(model, "aux", None)
    ce = aux.get("ce") if isinstance(aux, dict) else None
    if ce is None:
        return None
    return float(ce.detach()) if isinstance(ce, torch.Tensor) else float(ce)


def _max_attention_logit(q: torch.Tensor, k: torch.Tensor, *, attn_mask: torch.Tensor | None = None,
                         is_causal: bool = False, scale: float | None = None) -> float:
    """The largest pre-softmax score ``q . k / sqrt(E)`` (+ a float ``attn_mask``, e.g. ALiBi's bias) among the
    keys each query may see (a boolean ``attn_mask`` / SDPA's top-left causal mask)."""
    q, k = q.detach().float(), k.detach().float()
    if q.dim() >= 3 and k.dim() >= 3 and q.size(-3) != k.size(-3) and q.size(-3) % k.size(-3) == 0:
        k = k.repeat_interleave(q.size(-3) // k.size(-3), dim=-3)  # grouped-query attention
    scores = (q @ k.transpose(-2, -1)) * (scale if scale is not None else 1.0 / math.sqrt(q.size(-1)))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.float()
    if is_causal:
        L, S = scores.shape[-2:]
        allowed = torch.ones(L, S, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.max().item()


class LayerStats:
    """Per-block statistics of each training step, as an ``on_step`` hook of ``train_lm``.

    ``stats = LayerStats(model); run = train_lm(model, get_batch, steps, on_step=stats)``; then
    ``run.stats[i]`` holds, for the step ``run.stats[i]["step"]`` (one list entry per block):

    * ``grad_norm``: the L2 norm of the block's parameter gradients (before clipping: the hook runs between
      backward and the optimizer step);
    * ``update_ratio``: ``||w_t - w_{t-1}|| / ||w_{t-1}||`` of the block: the previous step's update (NaN at
      the first call); ``layer_series(stats, "update_ratio")`` aligns it with the step that made it;
    * ``act_rms``: the RMS of the block's output (the residual stream after the block);
    * ``attn_logit_max``: the largest pre-softmax attention logit of the block's attention (NaN if the block
      does not call ``F.scaled_dot_product_attention``);

    and scalars ``logit_rms``, ``logit_max`` (the largest |logit|), ``lse_mean`` (mean logsumexp of the
    output logits, the quantity z-loss squares) and ``ce`` (the model's cross-entropy part when it reports one
    in ``model.aux["ce"]``, as ``LLM`` does; absent otherwise: ``run.losses`` already holds the loss). ``every``: record every n-th step only (the others
    return None). Call ``remove()`` to take the hooks off (a ``with LayerStats(model) as stats:`` block does).
    """

    def __init__(self, model: nn.Module, *, blocks: Sequence[nn.Module] | None = None, every: int = 1):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.blocks = list(blocks) if blocks is not None else _blocks_of(model)
        self.every = every
        self._act_rms = [math.nan] * len(self.blocks)
        self._attn_max = [math.nan] * len(self.blocks)
        self._logits: dict[str, float] = {}
        self._previous: list[list[torch.Tensor]] | None = None
        self._previous_step: int | None = None
        self._handles: list[Any] = []
        self._layer: int | None = None
        self._sdpa: Callable[..., torch.Tensor] | None = None  # the function replaced while an attention runs
        self._original_sdpa = F.scaled_dot_product_attention
        for i, block in enumerate(self.blocks):
            self._handles.append(block.register_forward_hook(self._block_hook(i)))
            attn = getattr(block, "attn", None)
            if isinstance(attn, nn.Module):
                self._handles.append(attn.register_forward_pre_hook(self._attn_enter(i)))
                self._handles.append(attn.register_forward_hook(self._attn_exit, always_call=True))
        head = getattr(model, "lm_head", None)
        if isinstance(head, nn.Module):
            self._handles.append(head.register_forward_hook(self._head_hook))

    # forward hooks -------------------------------------------------------------------------------------
    def _block_hook(self, i: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            out = _first_tensor(output)
            if out is not None:
                self._act_rms[i] = out.detach().float().pow(2).mean().sqrt().item()
        return hook

    def _attn_enter(self, i: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any) -> None:
            self._layer = i
            self._attn_max[i] = math.nan
            if self._sdpa is None:
                self._sdpa = F.scaled_dot_product_attention
                F.scaled_dot_product_attention = self._recording_sdpa  # type: ignore[assignment]
        return hook

    def _attn_exit(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._sdpa is not None:
            F.scaled_dot_product_attention = self._sdpa  # type: ignore[assignment]
            self._sdpa = None
        self._layer = None

    def _recording_sdpa(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any,
                        **kwargs: Any) -> torch.Tensor:
        sdpa = self._sdpa if self._sdpa is not None else self._original_sdpa
        if self._layer is not None:
            with torch.no_grad():
                names = ("attn_mask", "dropout_p", "is_causal", "scale")
                given = {**dict(zip(names, args, strict=False)), **kwargs}
                logit = _max_attention_logit(query, key, attn_mask=given.get("attn_mask"),
                                             is_causal=bool(given.get("is_causal", False)), scale=given.get("scale"))
            previous = self._attn_max[self._layer]
            self._attn_max[self._layer] = logit if math.isnan(previous) else max(previous, logit)
        return sdpa(query, key, value, *args, **kwargs)

    def _head_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        logits = _first_tensor(output)
        if logits is None:
            return
        with torch.no_grad():
            z = logits.detach().float()
            self._logits = {"logit_rms": z.pow(2).mean().sqrt().item(), "logit_max": z.abs().max().item(),
                            "lse_mean": torch.logsumexp(z, dim=-1).mean().item()}

    # the on_step hook -------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, step: int, model: nn.Module) -> dict[str, Any] | None:
        record_now, snapshot = step % self.every == 0, (step + 1) % self.every == 0
        weights = [[p.detach().clone() for p in block.parameters()] for block in self.blocks] \
            if record_now or snapshot else None
        previous, previous_step = self._previous, self._previous_step
        self._previous, self._previous_step = (weights, step) if snapshot else (None, None)
        if not record_now or weights is None:
            return None
        grad_norm, update_ratio = [], []
        for i, block in enumerate(self.blocks):
            grads = [p.grad.detach().float() for p in block.parameters() if p.grad is not None]
            grad_norm.append(math.sqrt(sum(float((g * g).sum()) for g in grads)))
            if previous is None or previous_step != step - 1:
                update_ratio.append(math.nan)
            else:
                delta = sum(float((w - w0).float().pow(2).sum()) for w, w0 in zip(weights[i], previous[i], strict=True))
                size = sum(float(w0.float().pow(2).sum()) for w0 in previous[i])
                update_ratio.append(math.sqrt(delta) / max(math.sqrt(size), 1e-30))
        record: dict[str, Any] = {"grad_norm": grad_norm, "update_ratio": update_ratio,
                                  "act_rms": list(self._act_rms), "attn_logit_max": list(self._attn_max),
                                  **self._logits}
        ce = _model_ce(model)
        if ce is not None:
            record["ce"] = ce
        return record

    def remove(self) -> None:
        """Take every hook off the model."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._sdpa is not None:
            F.scaled_dot_product_attention = self._sdpa  # type: ignore[assignment]
            self._sdpa = None

    def __enter__(self) -> LayerStats:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def layer_series(stats: Sequence[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps (N,), values (N, n_layer))`` of one per-layer statistic from ``run.stats`` (or ``(N,)`` values of
    a scalar one). ``update_ratio`` is moved back one step, to the optimizer step that made the update (so the
    last recorded step has NaN)."""
    if key not in PER_LAYER_KEYS + SCALAR_KEYS:
        raise ValueError(f"unknown statistic {key!r}: expected one of {PER_LAYER_KEYS + SCALAR_KEYS}")
    rows = [s for s in stats if key in s]
    steps = np.array([s["step"] for s in rows], dtype=np.int64)
    values = np.array([s[key] for s in rows], dtype=np.float64)
    if key == "update_ratio" and len(rows):
        shifted = np.full_like(values, np.nan)
        consecutive = np.diff(steps) == 1
        shifted[:-1][consecutive] = values[1:][consecutive]
        values = shifted
    return steps, values


def _check_window(window: Any, threshold: Any) -> None:
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold > 0:
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")


def find_spikes(losses: Iterable[float], window: int = 10, threshold: float = 0.5) -> list[int]:
    """The steps whose loss is a spike: more than ``(1 + threshold)`` times the median of the ``window`` finite
    losses before it (fewer at the start; step 0 is never a spike), or not finite (NaN / inf: divergence).

    A relative threshold, so that one value serves early (loss ~5) and late (loss ~2) in training; the median,
    so that a spike does not raise its own reference; a short window, so that the reference follows the fast fall
    of the loss early in training (with a long one the median still remembers the initial loss and a spike
    during warmup goes unnoticed). Every step of a long spike is listed; ``spike_onsets`` keeps the first of each.
    """
    _check_window(window, threshold)
    values = [float(v) for v in losses]
    spikes, recent = [], []
    for step, loss in enumerate(values):
        if not math.isfinite(loss):
            spikes.append(step)
            continue
        if recent and loss > (1.0 + threshold) * statistics.median(recent[-window:]):
            spikes.append(step)
        recent.append(loss)
    return spikes


def spike_onsets(spikes: Sequence[int]) -> list[int]:
    """The first step of each run of consecutive spike steps (``find_spikes``' output)."""
    return [s for i, s in enumerate(spikes) if i == 0 or spikes[i - 1] != s - 1]


def unigram_loss(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy (nats per token) on ``val_ids`` of the training split's token frequencies (add-one smoothed):
    the loss of a model that ignores context."""
    counts = np.bincount(np.asarray(train_ids), minlength=vocab_size).astype(np.float64) + 1.0
    return float(-np.log(counts / counts.sum())[np.asarray(val_ids)].mean())


@dataclass(frozen=True)
class StabilityConfig:
    """One training setting of the stability experiment."""

    name: str
    lr: float
    clip: float | None = 1.0
    z_loss_weight: float = 0.0
    qk_norm: bool = False
    beta2: float = 0.95
    warmup: int | None = None  # train_lm's default: a tenth of the steps


def default_configs(base_lr: float = 3e-3, high_lr: float = 3e-2, very_high_lr: float = 3e-1
                    ) -> list[StabilityConfig]:
    """The lesson's settings: the kit's recipe at ``base_lr`` (warmup + cosine, clip 1, beta2 0.95); ``high_lr``
    without clipping, with clipping, with clipping plus z-loss (PaLM's weight 1e-4, and 1e-2), with clipping plus
    QK-norm, without clipping nor warmup; ``very_high_lr`` without clipping; both ``base_lr`` and ``high_lr``
    (clipped) with beta2 0.999."""
    return [
        StabilityConfig("base lr", base_lr),
        StabilityConfig("high lr, no clip", high_lr, clip=None),
        StabilityConfig("very high lr, no clip", very_high_lr, clip=None),
        StabilityConfig("high lr, clip 1", high_lr),
        StabilityConfig("high lr, clip + z-loss 1e-4", high_lr, z_loss_weight=1e-4),
        StabilityConfig("high lr, clip + z-loss 1e-2", high_lr, z_loss_weight=1e-2),
        StabilityConfig("high lr, clip + QK-norm", high_lr, qk_norm=True),
        StabilityConfig("high lr, no clip, no warmup", high_lr, clip=None, warmup=0),
        StabilityConfig("base lr, beta2 0.999", base_lr, beta2=0.999),
        StabilityConfig("high lr, clip, beta2 0.999", high_lr, beta2=0.999),
    ]


@dataclass
class StabilityResult:
    """What one configuration did over the seeds (lists: one entry per seed)."""

    config: StabilityConfig
    seeds: list[int]
    val_loss: list[float] = field(default_factory=list)
    losses: list[list[float]] = field(default_factory=list)  # the language-modelling loss per step
    grad_norms: list[list[float]] = field(default_factory=list)
    spikes: list[list[int]] = field(default_factory=list)  # find_spikes' steps
    diverged: list[bool] = field(default_factory=list)  # a non-finite loss
    stats: list[list[dict[str, Any]]] = field(default_factory=list)  # LayerStats per step (first seed only)
    seconds: float = 0.0

    @property
    def mean_val_loss(self) -> float:
        return float(np.mean(self.val_loss))

    @property
    def n_spikes(self) -> list[int]:
        """Spike events (onsets) per seed."""
        return [len(spike_onsets(s)) for s in self.spikes]

    def summary(self) -> dict[str, Any]:
        """A JSON-able row: the settings, mean and per-seed validation loss, spike events, divergences."""
        return {**asdict(self.config), "val_loss": self.mean_val_loss, "val_losses": list(self.val_loss),
                "spike_events": self.n_spikes, "diverged": sum(self.diverged),
                "max_loss": float(np.max([np.max(x) for x in self.losses])), "seconds": self.seconds}


def _default_model(vocab_size: int, *, block_size: int, n_layer: int, n_head: int, n_embd: int,
                   qk_norm: bool, z_loss_weight: float) -> nn.Module:
    from bigtrain_lab.llm.model import LLM, LLMConfig  # helper-written module, imported where it is used

    return LLM(LLMConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                         n_embd=n_embd, qk_norm=qk_norm, z_loss_weight=z_loss_weight))


def stability_runs(corpus: Any, configs: Sequence[StabilityConfig] | None = None, *, steps: int = 150,
                   seeds: Sequence[int] = (0,), block_size: int = 32, batch_size: int = 16, n_layer: int = 2,
                   n_head: int = 4, n_embd: int = 64, spike_window: int = 10, spike_threshold: float = 0.5,
                   record_stats: bool = True, model_fn: Callable[..., nn.Module] | None = None,
                   progress: bool = True) -> dict[str, StabilityResult]:
    """Train the same small character-level ``LLM`` on ``corpus`` (a ``bigtrain_lab.data.CharCorpus``) under each
    configuration, for each seed, and return ``{config.name: StabilityResult}``.

    Seed ``s`` fixes both the initial weights and the batches (``corpus_batches(seed=s)``): every configuration
    sees the same data in the same order, so a bump every run shares is a hard batch, not an instability.
    Validation loss: ``evaluate_lm`` on 8 fixed batches (cross-entropy only). ``record_stats``: ``LayerStats``
    on the first seed of each configuration. ``model_fn(vocab_size, block_size=, n_layer=, n_head=, n_embd=,
    qk_norm=, z_loss_weight=)`` replaces the ``LLM`` (e.g. a TinyGPT for settings without the switches).
    """
    from bigtrain_lab import seed_everything
    from bigtrain_lab.train import corpus_batches

    configs = default_configs() if configs is None else list(configs)
    if not configs:
        raise ValueError("configs is empty")
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"configuration names must be unique, got {names}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty")
    _check_window(spike_window, spike_threshold)
    make = model_fn if model_fn is not None else _default_model
    vocab_size = len(corpus.vocab)
    results: dict[str, StabilityResult] = {}
    bar = tqdm(total=len(configs) * len(seeds), desc="stability runs", disable=not progress, leave=False)
    for config in configs:
        result = StabilityResult(config=config, seeds=seeds)
        for k, seed in enumerate(seeds):
            seed_everything(seed)
            model = make(vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                         qk_norm=config.qk_norm, z_loss_weight=config.z_loss_weight)
            get_batch = corpus_batches(corpus, block_size, batch_size, seed=seed)
            hook = LayerStats(model) if record_stats and k == 0 else None
            try:
                run: LMRun = train_lm(model, get_batch, steps, lr=config.lr, betas=(0.9, config.beta2),
                                      warmup=config.warmup, clip=config.clip, on_step=hook if hook is not None else _ce_only, progress=False)
            finally:
                if hook is not None:
                    hook.remove()
            ce = {s["step"]: s["ce"] for s in run.stats if "ce" in s}
            losses = [ce.get(step, loss) for step, loss in enumerate(run.losses)]
            result.val_loss.append(run.val_loss)
            result.losses.append(losses)
            result.grad_norms.append(list(run.grad_norms))
            result.spikes.append(find_spikes(losses, spike_window, spike_threshold))
            result.diverged.append(run.diverged)
            if hook is not None:
                result.stats.append(run.stats)
            result.seconds += run.seconds
            bar.update(1)
        results[config.name] = result
    bar.close()
    return results


def _ce_only(step: int, model: nn.Module) -> dict[str, Any] | None:
    """The smallest ``on_step``: the model's cross-entropy part when it reports one (z-loss runs)."""
    ce = _model_ce(model)
    return None if ce is None else {"ce": ce}
