"""One training loop for the notebooks and the scripts, on CPU or GPU, in fp32, bf16 or fp16.

The loop is nanoGPT's ``train.py`` made into a function. Its core is ``train_step``: for each optimizer
step, ``grad_accum_steps`` micro-batches each add ``loss / grad_accum_steps`` to the gradients, the global
gradient norm is clipped, AdamW steps at the learning rate the schedule gives for that step. Around it, in
small helpers: evaluation that never changes the training trajectory, checkpoints that resume bit for bit,
a progress bar, callbacks (e.g. ``bigtrain_lab.widgets.training_viz.LiveCurves(loss_curves)``, a live loss
curve in JupyterLab) and a throughput that leaves out the first step (warm-up, compilation).

    from bigtrain_lab.data import load_text_corpus
    from bigtrain_lab.models import GPTConfig, TinyGPT
    from bigtrain_lab.train import TrainConfig, corpus_batches, cosine_schedule, train

    corpus = load_text_corpus(max_chars=200_000)
    model = TinyGPT(GPTConfig(vocab_size=corpus.vocab_size))
    batches = corpus_batches(corpus, block_size=64, batch_size=12, seed=0)
    result = train(model, batches, TrainConfig(steps=200), schedule=cosine_schedule(1e-3, 1e-4, 20, 200))

``TrainConfig``'s optimizer defaults are the kit's recipe (``bigtrain_lab.recipes.KIT``).
``bare_train_loop`` is the plainest loop that trains the same model; ``bench/train_gpt.py`` times both.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from bigtrain_lab.recipes import KIT, NANOGPT, NANOGPT_CPU_BATCH_SIZE
from bigtrain_lab.reproducibility import seed_everything

# The schedules live in bigtrain_lab.schedules; re-exported here, next to the loop that takes them.
from bigtrain_lab.schedules import constant_schedule, cosine_schedule, wsd_schedule  # noqa: F401

Batch = tuple[torch.Tensor, torch.Tensor]
GetBatch = Callable[[str, int], Batch]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
PRECISIONS = ("fp32", "bf16", "fp16")
CHECKPOINT_FORMAT = "bigtrain_lab.train/1"


@dataclass
class TrainConfig:
    """Everything the loop needs besides the model, the data and the schedule. The optimizer settings
    default to the kit's recipe (``bigtrain_lab.recipes.KIT``); each field's ``help`` says what it does."""

    steps: int = field(default=100, metadata={"help": "optimizer steps (a resumed run continues up to it)"})
    batch_size: int = field(default=NANOGPT_CPU_BATCH_SIZE, metadata={
        "help": "sequences (samples) per micro-batch; get_batch draws them, the loop only records it"})
    grad_accum_steps: int = field(default=1, metadata={"help": "micro-batches summed into each optimizer step"})
    lr: float = field(default=KIT.lr, metadata={"help": "the default optimizer's lr (a schedule overrides it)"})
    weight_decay: float = field(default=KIT.weight_decay, metadata={"help": "AdamW's, on >= 2-D weights only"})
    betas: tuple[float, float] = field(default=KIT.betas, metadata={"help": "AdamW's moment decays"})
    grad_clip: float = field(default=KIT.grad_clip, metadata={
        "help": "clip the global gradient norm to this (0: no clipping; the norm is still recorded)"})
    precision: str = field(default="fp32", metadata={
        "help": "bf16: autocast (CPU or CUDA); fp16: autocast and a GradScaler (CUDA only)", "choices": PRECISIONS})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile the model (its first step, compilation included, is timed apart)"})
    eval_every: int = field(default=0, metadata={"help": "evaluate every this many steps and at the end (0: never)"})
    eval_steps: int = field(default=20, metadata={"help": "validation batches per evaluation"})
    checkpoint_every: int = field(default=0, metadata={
        "help": "save a checkpoint every this many steps (0: only at the end, when checkpoint_path is set)"})
    checkpoint_path: str | None = field(default=None, metadata={"help": "where checkpoints go"})
    seed: int = field(default=0, metadata={
        "help": "seeds Python, NumPy and torch at the start of a fresh run (a resumed run restores its RNGs)"})
    log_every: int = field(default=10, metadata={
        "help": "record losses, update the progress bar and call the callbacks every this many steps"})

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "grad_accum_steps", "eval_steps", "log_every")
        non_negative = ("eval_every", "checkpoint_every")
        for name in positive + non_negative:
            value = getattr(self, name)
            low = 1 if name in positive else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"TrainConfig.{name} must be an integer >= {low}, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if not self.grad_clip >= 0:
            raise ValueError(f"TrainConfig.grad_clip must be >= 0 (0 disables), got {self.grad_clip!r}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.checkpoint_every and not self.checkpoint_path:
            raise ValueError("TrainConfig.checkpoint_every is set but checkpoint_path is not")
        if self.checkpoint_path is not None:
            self.checkpoint_path = os.fspath(self.checkpoint_path)  # a str, so the checkpoint stays plain data

    def logs_at(self, step: int) -> bool:
        """Whether the loop records losses and calls back after its ``step``-th optimizer step."""
        return step % self.log_every == 0 or step == self.steps

    def evaluates_at(self, step: int) -> bool:
        """Whether the loop evaluates after its ``step``-th optimizer step."""
        return self.eval_every > 0 and (step % self.eval_every == 0 or step == self.steps)

    def saves_at(self, step: int) -> bool:
        """Whether the loop writes a checkpoint after its ``step``-th optimizer step."""
        return self.checkpoint_path is not None and (
            step == self.steps or (self.checkpoint_every > 0 and step % self.checkpoint_every == 0))


@dataclass
class TrainResult:
    """What a run did. ``losses[i]``, ``lrs[i]`` and ``grad_norms[i]`` belong to optimizer step ``i``
    (0-based; ``losses[i]`` is the mean loss over that step's micro-batches); ``evals`` holds dicts
    ``{"step": n_steps_done, "val_loss": ..., ...}``. ``tokens_per_second`` counts target tokens (samples,
    for a classifier) per second of training, leaving out the run's first step, evaluation and
    checkpointing; ``warmup_seconds`` is that first step (allocation, ``torch.compile``'s compilation);
    ``wall_time_s`` is the whole call."""

    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    step: int = 0
    tokens: int = 0
    tokens_per_second: float = float("nan")
    warmup_seconds: float = float("nan")
    wall_time_s: float = 0.0

    @property
    def final_val_loss(self) -> float | None:
        """The last evaluation's ``val_loss``, if any."""
        vals = [e["val_loss"] for e in self.evals if "val_loss" in e]
        return vals[-1] if vals else None

    def __str__(self) -> str:
        val = self.final_val_loss
        loss = f"{self.losses[-1]:.4f}" if self.losses else "n/a"
        return (f"step {self.step} | loss {loss} | val loss {'n/a' if val is None else f'{val:.4f}'} | "
                f"{self.tokens_per_second:,.0f} tokens/s | {self.wall_time_s:.1f} s")


# ----------------------------------------------------------------------------------------------------
# Pieces of the loop


def configure_adamw(model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float],
                    *, fused: bool = True) -> torch.optim.AdamW:
    """AdamW with weight decay on the >= 2-D parameters (matmul weights, embeddings) and none on the
    1-D ones (biases, LayerNorm gains), as nanoGPT does: decaying a gain or a bias towards 0 only
    fights the normalisation, it does not regularise. ``fused``: one kernel updates every parameter
    (CPU, CUDA, MPS, XPU), instead of torch's default on CPU, about ten small operations per parameter."""
    params = trainable_parameters(model)
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that ``requires_grad`` (frozen layers, e.g. LoRA's base, are left out)."""
    return [p for p in model.parameters() if p.requires_grad]


def default_loss_fn(model: nn.Module) -> LossFn:
    """The loss for ``model``: its own when ``forward`` takes ``targets`` and returns ``(logits, loss)``
    (TinyGPT, nanoGPT), else cross-entropy on the logits it returns (classifiers)."""
    if "targets" in inspect.signature(model.forward).parameters:
        return lambda m, x, y: m(x, y)[1]
    return lambda m, x, y: F.cross_entropy(m(x), y)


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for bf16 / fp16, nothing for fp32. Autocast runs matmuls in the low precision
    and keeps reductions (softmax, losses) and the weights themselves in fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(batch: Batch, device: torch.device) -> Batch:
    """``(x, y)`` on ``device`` (asynchronously from pinned memory)."""
    x, y = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def set_lr(optimizer: torch.optim.Optimizer, schedule: Callable[[int], float] | None, step: int) -> float:
    """Set every parameter group's learning rate to ``schedule(step)`` (none: leave it); returns it."""
    if schedule is not None:
        for group in optimizer.param_groups:
            group["lr"] = schedule(step)
    return optimizer.param_groups[0]["lr"]


def corpus_batches(corpus: Any, block_size: int, batch_size: int, *, seed: int = 0,
                   device: str | torch.device = "cpu") -> CorpusBatches:
    """A ``get_batch(split, step)`` over a ``bigtrain_lab.data.CharCorpus`` (see ``CorpusBatches``)."""
    return CorpusBatches(corpus, block_size, batch_size, seed=seed, device=device)


class CorpusBatches:
    """Random windows of a character corpus, as ``train`` wants them: ``batches(split, step) -> (x, y)``.

    Training batches come from ``self.generator`` (seeded with ``seed``); ``train`` saves and restores
    its state in checkpoints. Validation batch ``i`` is drawn from a generator seeded with ``seed + i``:
    every evaluation sees the same batches, so val losses at different steps compare like with like.
    """

    def __init__(self, corpus: Any, block_size: int, batch_size: int, *, seed: int = 0,
                 device: str | torch.device = "cpu"):
        self.corpus = corpus
        self.block_size = block_size
        self.batch_size = batch_size
        self.seed = seed
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, split: str, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = self.generator if split == "train" else torch.Generator().manual_seed(self.seed + step)
        return self.corpus.get_batch(split, self.batch_size, self.block_size, generator=gen,
                                     device=self.device)


# ----------------------------------------------------------------------------------------------------
# RNG state and checkpoints


def get_rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random number generator a run draws from: Python, NumPy, torch CPU, each CUDA device and
    the data ``generator``. NumPy's key array is stored as a tensor so that the checkpoint loads with
    ``torch.load(weights_only=True)``."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "data": generator.get_state() if generator is not None else None,
    }
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what ``get_rng_state`` captured."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and state["data"] is not None:
        generator.set_state(state["data"])


@contextlib.contextmanager
def preserved_rng(generator: torch.Generator | None = None) -> Iterator[None]:
    """Run a block (an evaluation) without moving any RNG: evaluating more or less often then cannot
    change the training run, and a resumed run stays bit-identical."""
    state = get_rng_state(generator)
    try:
        yield
    finally:
        set_rng_state(state, generator)


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """``torch.save`` atomically: write a temporary file in the same folder, flush it to disk, then
    ``os.replace`` it over ``path``. A crash mid-write leaves the previous checkpoint intact, never half
    a file (``os.replace`` is atomic within one file system)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by ``train`` onto the CPU (``weights_only=True``: no pickled code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a checkpoint written by bigtrain_lab.train.train")
    return state


# ----------------------------------------------------------------------------------------------------
# The optimizer step


def train_step(model: nn.Module, batches: Sequence[Batch], optimizer: torch.optim.Optimizer, loss_fn: LossFn, *,
               params: Sequence[torch.Tensor], grad_clip: float, scaler: torch.amp.GradScaler,
               autocast: contextlib.AbstractContextManager,
               grad_sync: Callable[[bool], contextlib.AbstractContextManager] | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the step's micro-batches: forward and backward on each, clip, step, zero_grad.

    Returns the mean loss over the micro-batches and the gradient norm before clipping, both left on the
    device: reading them (``.item()``) every step would make the host wait for the device every step.
    ``grad_sync(last)`` is the context each micro-batch's forward and backward run in, e.g. DDP's
    ``no_sync()`` on all but the last, so that gradients are all-reduced once per step.
    """
    step_loss = torch.zeros((), device=batches[0][1].device)
    for i, (x, y) in enumerate(batches):
        with grad_sync(i == len(batches) - 1) if grad_sync else contextlib.nullcontext():
            with autocast:
                # Each micro-batch loss is a mean over its own samples; dividing by the number of micro-batches
                # makes the summed gradient that of the mean over all of them, i.e. of one batch k times as
                # big. Without it the gradient (and, through clipping and the lr, the update) is k times too large.
                loss = loss_fn(model, x, y) / len(batches)
            scaler.scale(loss).backward()
        step_loss += loss.detach().float()
    scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
    if grad_clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    scaler.step(optimizer)  # skips the step when fp16 gradients overflowed
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return step_loss, norm.detach()


class StepTimer:
    """Training time alone. The first step (allocation, ``torch.compile``'s compilation) is timed apart as
    ``warmup_seconds``; what runs while ``paused()`` (evaluation, checkpoints, logging) is left out. The
    device is synchronised only after the first step and when pausing, never on ordinary steps."""

    def __init__(self, device: torch.device):
        self.device = device
        self.steps, self.tokens, self.seconds = 0, 0, 0.0
        self.warmup_seconds, self.warmup_tokens = math.nan, 0
        self._clock = time.perf_counter()

    def step(self, tokens: int) -> None:
        """Count one optimizer step that trained on ``tokens`` tokens."""
        if self.warmup_tokens == 0:
            self._sync()
            now = time.perf_counter()
            self.warmup_seconds, self.warmup_tokens, self._clock = now - self._clock, tokens, now
        else:
            self.steps, self.tokens = self.steps + 1, self.tokens + tokens

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Leave the time spent in the block out."""
        self._sync()
        self.seconds += time.perf_counter() - self._clock
        try:
            yield
        finally:
            self._clock = time.perf_counter()

    @property
    def tokens_per_second(self) -> float:
        """Tokens per second over the timed steps (NaN before the second step)."""
        return self.tokens / self.seconds if self.tokens and self.seconds > 0 else math.nan

    @property
    def step_seconds(self) -> float:
        """Seconds per timed step (NaN before the second step)."""
        return self.seconds / self.steps if self.steps else math.nan

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


# ----------------------------------------------------------------------------------------------------
# The loop


def train(
    model: nn.Module,
    get_batch: GetBatch,
    config: TrainConfig,
    *,
    schedule: Callable[[int], float] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    callbacks: Sequence[Callable[[TrainResult], Any]] = (),
    progress: bool = True,
    resume_from: str | os.PathLike[str] | None = None,
    data_generator: torch.Generator | None = None,
    loss_fn: LossFn | None = None,
    metadata: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``config.steps`` optimizer steps and return a ``TrainResult``.

    get_batch: ``get_batch(split, step) -> (x, y)``, ``split`` "train" or "val". Called
        ``grad_accum_steps`` times per step for training (same ``step``), and with ``step = 0 ..
        eval_steps - 1`` for validation. Batches are moved to the model's device.
    schedule: ``step -> lr``, set on every parameter group before each step (default: none, the
        optimizer's own lr stays). optimizer: default ``configure_adamw`` with ``config.lr``.
    evaluate: ``evaluate(model) -> {"name": value}``; default: mean loss over ``eval_steps`` val batches,
        reported as ``val_loss``. Runs in eval mode, without gradients and without moving any RNG.
    callbacks: each is called with the ``TrainResult`` so far every ``log_every`` steps, after each
        evaluation and at the end (e.g. ``widgets.training_viz.LiveCurves(loss_curves)``).
    resume_from: a checkpoint written by this function: model, optimizer, GradScaler, step, histories
        and every RNG state are restored, and the run continues up to ``config.steps`` exactly as if it
        had never stopped.
    data_generator: the ``torch.Generator`` that ``get_batch`` draws training batches from, saved in
        checkpoints (default: ``get_batch.generator`` when it has one, as ``CorpusBatches`` does).
    loss_fn: ``loss_fn(model, x, y) -> scalar loss`` (default: ``default_loss_fn(model)``).
    metadata: plain data (str, numbers, lists, dicts) stored in checkpoints under ``"metadata"``, e.g. the
        model's configuration, so that a checkpoint describes itself.
    """
    wall_start = time.perf_counter()
    params = trainable_parameters(model)
    if not params:
        raise ValueError("the model has no trainable parameters")
    device = params[0].device
    if config.precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA device (fp16 without a GradScaler underflows and "
                         "CPUs gain nothing from it); use 'bf16' or 'fp32'")
    if data_generator is None:
        data_generator = getattr(get_batch, "generator", None)
    optimizer = optimizer or configure_adamw(model, config.lr, config.weight_decay, config.betas)
    loss_fn = loss_fn or default_loss_fn(model)
    evaluate = evaluate or mean_val_loss(get_batch, loss_fn, config.eval_steps, device)
    # fp16's narrow exponent range flushes small gradients to zero: scale the loss up before backward
    # and the gradients back down before the step. bf16 has fp32's range and needs no scaler.
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
    result = TrainResult()
    if resume_from is not None:
        _restore(load_checkpoint(resume_from), model, optimizer, scaler, result, data_generator)
    else:
        seed_everything(config.seed)
    run_model = torch.compile(model) if config.compile else model
    autocast = autocast_context(device, config.precision)
    pending: list[tuple[torch.Tensor, torch.Tensor]] = []  # (loss, grad norm) per step, on the device
    timer = StepTimer(device)

    # `with`: the bar is closed even when a step raises (a notebook would keep a dead bar otherwise)
    with tqdm(total=config.steps, initial=result.step, desc="train", disable=not progress,
              dynamic_ncols=True) as bar:
        model.train()
        while result.step < config.steps:
            lr = set_lr(optimizer, schedule, result.step)
            batches = [to_device(get_batch("train", result.step), device) for _ in range(config.grad_accum_steps)]
            loss, norm = train_step(run_model, batches, optimizer, loss_fn, params=params,
                                    grad_clip=config.grad_clip, scaler=scaler, autocast=autocast)
            tokens = sum(y.numel() for _, y in batches)
            result.step, result.tokens = result.step + 1, result.tokens + tokens
            result.lrs.append(float(lr))
            pending.append((loss, norm))
            timer.step(tokens)
            bar.update(1)

            step = result.step
            if config.logs_at(step) or config.evaluates_at(step) or config.saves_at(step):
                with timer.paused():  # evaluation, checkpoints and callbacks are not training time
                    _record(pending, result)
                    result.tokens_per_second = timer.tokens_per_second
                    if config.evaluates_at(step):
                        result.evals.append({"step": step, **_evaluate(run_model, evaluate, autocast,
                                                                       data_generator)})
                    if config.saves_at(step):
                        save_checkpoint(config.checkpoint_path, _checkpoint_state(
                            config, result, model, optimizer, scaler, data_generator, metadata))
                    bar.set_postfix(_postfix(result), refresh=False)
                    for callback in callbacks:
                        callback(result)
    result.warmup_seconds = timer.warmup_seconds
    if timer.steps == 0 and timer.warmup_tokens:  # a single-step run: its one step is all there is to time
        result.tokens_per_second = timer.warmup_tokens / timer.warmup_seconds
    result.wall_time_s = time.perf_counter() - wall_start
    return result


def mean_val_loss(get_batch: GetBatch, loss_fn: LossFn, eval_steps: int,
                  device: torch.device) -> Callable[[nn.Module], dict[str, float]]:
    """The default evaluation: ``{"val_loss": mean loss over validation batches 0 .. eval_steps - 1}``."""

    def evaluate(model: nn.Module) -> dict[str, float]:
        losses = [loss_fn(model, *to_device(get_batch("val", i), device)).item() for i in range(eval_steps)]
        return {"val_loss": sum(losses) / len(losses)}

    return evaluate


def _evaluate(model: nn.Module, evaluate: Callable[[nn.Module], dict[str, float]],
              autocast: contextlib.AbstractContextManager, generator: torch.Generator | None) -> dict[str, float]:
    """``evaluate(model)`` in eval mode, without gradients and moving no RNG: evaluating more or less often
    then cannot change the training run."""
    model.eval()
    try:
        with preserved_rng(generator), torch.no_grad(), autocast:
            metrics = evaluate(model)
    finally:
        model.train()
    return {name: float(value) for name, value in metrics.items()}


def _record(pending: list[tuple[torch.Tensor, torch.Tensor]], result: TrainResult) -> None:
    """Move the losses and gradient norms kept on the device into ``result`` (one host sync)."""
    if pending:
        losses, norms = zip(*pending, strict=True)
        result.losses += torch.stack(losses).tolist()
        result.grad_norms += torch.stack(norms).float().tolist()
        pending.clear()


def _postfix(result: TrainResult) -> dict[str, str]:
    postfix = {"loss": f"{result.losses[-1]:.4f}", "lr": f"{result.lrs[-1]:.2e}"}
    if result.final_val_loss is not None:
        postfix["val"] = f"{result.final_val_loss:.4f}"
    if not math.isnan(result.tokens_per_second):
        postfix["tok/s"] = f"{result.tokens_per_second:,.0f}"
    return postfix


def _checkpoint_state(config: TrainConfig, result: TrainResult, model: nn.Module,
                      optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                      data_generator: torch.Generator | None, metadata: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "step": result.step,  # also the schedule's position: the next lr is schedule(step)
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "train_config": asdict(config),
        "history": {"losses": result.losses, "lrs": result.lrs, "grad_norms": result.grad_norms,
                    "evals": result.evals, "tokens": result.tokens},
        "rng": get_rng_state(data_generator),
        "metadata": metadata or {},
    }


def _restore(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler, result: TrainResult, data_generator: torch.Generator | None) -> None:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    for name, values in state["history"].items():
        setattr(result, name, values)
    result.step = state["step"]
    set_rng_state(state["rng"], data_generator)


def bare_train_loop(model: nn.Module, get_batch: GetBatch, steps: int, *, lr: float = NANOGPT.lr,
                    weight_decay: float = NANOGPT.weight_decay,
                    betas: tuple[float, float] = NANOGPT.betas) -> list[float]:
    """The plainest PyTorch loop for a model whose ``forward(x, y)`` returns ``(logits, loss)``, with
    nanoGPT's optimizer settings: no schedule, clipping, accumulation, autocast, evaluation or bookkeeping.
    Returns the loss per step. The benchmark compares it with ``train`` to measure what the extras cost."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
    model.train()
    losses = []
    for step in range(steps):
        x, y = get_batch("train", step)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# ----------------------------------------------------------------------------------------------------
# The data of a live loss curve


def loss_curves(result: TrainResult) -> dict[str, tuple[list[int], list[float]]]:
    """The data of a loss plot: ``{"train": (steps, losses), "<metric>": (steps, values), ...}`` with
    one entry per evaluated metric whose name ends in ``loss``. Steps count from 1 (after step i)."""
    curves = {"train": (list(range(1, len(result.losses) + 1)), list(result.losses))}
    names = sorted({k for e in result.evals for k in e if k != "step" and k.endswith("loss")})
    for name in names:
        points = [(int(e["step"]), e[name]) for e in result.evals if name in e]
        curves[name] = ([s for s, _ in points], [v for _, v in points])
    return curves
