"""One training loop for the notebooks and the scripts, on CPU or GPU, in fp32, bf16 or fp16.

The loop is nanoGPT's ``train.py`` made into a function: for each optimizer step, ``grad_accum_steps``
micro-batches each add ``loss / grad_accum_steps`` to the gradients, the global gradient norm is clipped,
AdamW steps at the learning rate the schedule gives for that step. Around it: evaluation that never
changes the training trajectory, checkpoints that resume bit for bit, a progress bar and callbacks
(e.g. ``bigtrain_lab.widgets.training_viz.LiveCurves(loss_curves)``, a live loss curve in JupyterLab).

    from bigtrain_lab.data import load_text_corpus
    from bigtrain_lab.models import GPTConfig, TinyGPT
    from bigtrain_lab.train import TrainConfig, corpus_batches, cosine_schedule, train

    corpus = load_text_corpus(max_chars=200_000)
    model = TinyGPT(GPTConfig(vocab_size=corpus.vocab_size))
    batches = corpus_batches(corpus, block_size=64, batch_size=12, seed=0)
    result = train(model, batches, TrainConfig(steps=200), schedule=cosine_schedule(1e-3, 1e-4, 20, 200))

``bare_train_loop`` is the plainest loop that trains the same model; ``bench/train_gpt.py`` times both to
measure what the extras cost.
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

from bigtrain_lab.reproducibility import seed_everything

# The schedules live in bigtrain_lab.schedules; re-exported here, next to the loop that takes them.
from bigtrain_lab.schedules import constant_schedule, cosine_schedule, wsd_schedule  # noqa: F401, E402

GetBatch = Callable[[str, int], tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
PRECISIONS = ("fp32", "bf16", "fp16")
CHECKPOINT_FORMAT = "bigtrain_lab.train/1"


@dataclass
class TrainConfig:
    """Everything the loop needs besides the model, the data and the schedule.

    steps: optimizer steps to reach (a resumed run continues up to this number).
    batch_size: sequences (or samples) per micro-batch. ``get_batch`` draws the batches, so the loop only
        records it; ``corpus_batches`` takes it. Tokens per optimizer step =
        batch_size * grad_accum_steps * block_size.
    grad_accum_steps: micro-batches whose gradients are summed before each optimizer step.
    lr: the default optimizer's learning rate (a ``schedule`` overrides it). weight_decay: AdamW's (decoupled) decay, applied to
        the >= 2-D parameters only. betas: AdamW's.
    grad_clip: clip the global gradient norm to this (0 disables clipping; the norm is still recorded).
    precision: "fp32"; "bf16" (autocast on CPU or CUDA); "fp16" (autocast and a GradScaler, CUDA only).
    compile: run the model through ``torch.compile`` (the first steps then include compilation).
    eval_every: evaluate every this many steps and at the last step (0: never). eval_steps: validation
        batches per evaluation.
    checkpoint_every: save a checkpoint every this many steps (0: only at the end when checkpoint_path
        is set). checkpoint_path: where.
    seed: seeds Python, NumPy and torch at the start of a fresh run (dropout masks; the model is already
        initialised, so seed before building it too). A resumed run restores the saved RNG states instead.
    log_every: update the progress bar, the recorded losses and the callbacks every this many steps.
    """

    steps: int = 100
    batch_size: int = 12
    grad_accum_steps: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    precision: str = "fp32"
    compile: bool = False
    eval_every: int = 0
    eval_steps: int = 20
    checkpoint_every: int = 0
    checkpoint_path: str | None = None
    seed: int = 0
    log_every: int = 10

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


@dataclass
class TrainResult:
    """What a run did. ``losses[i]``, ``lrs[i]`` and ``grad_norms[i]`` belong to optimizer step ``i``
    (0-based; ``losses[i]`` is the mean loss over that step's micro-batches); ``evals`` holds dicts
    ``{"step": n_steps_done, "val_loss": ..., ...}``. ``tokens_per_second`` counts target tokens (samples,
    for a classifier) per second of training, leaving out the run's first step (warm-up, compilation),
    evaluation and checkpointing; ``wall_time_s`` is the whole call."""

    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    step: int = 0
    tokens: int = 0
    tokens_per_second: float = float("nan")
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
                    *, fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW with weight decay on the >= 2-D parameters (matmul weights, embeddings) and none on the
    1-D ones (biases, LayerNorm gains), as nanoGPT does: decaying a gain or a bias towards 0 only
    fights the normalisation, it does not regularise. ``fused`` defaults to True on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    if fused is None:
        fused = bool(params) and params[0].device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None)


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
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    device = params[0].device
    if config.precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA device (fp16 without a GradScaler underflows and "
                         "CPUs gain nothing from it); use 'bf16' or 'fp32'")
    if data_generator is None:
        data_generator = getattr(get_batch, "generator", None)
    if optimizer is None:
        optimizer = configure_adamw(model, config.lr, config.weight_decay, config.betas)
    if loss_fn is None:
        loss_fn = default_loss_fn(model)
    # fp16's narrow exponent range flushes small gradients to zero: scale the loss up before backward
    # and the gradients back down before the step. bf16 has fp32's range and needs no scaler.
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
    accum = config.grad_accum_steps

    result = TrainResult()
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        for name, values in state["history"].items():
            setattr(result, name, values)
        result.step = state["step"]
        set_rng_state(state["rng"], data_generator)
    else:
        seed_everything(config.seed)

    def checkpoint_state() -> dict[str, Any]:
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

    run_model = torch.compile(model) if config.compile else model
    autocast = autocast_context(device, config.precision)

    def run_evaluation() -> None:
        model.eval()
        with preserved_rng(data_generator), torch.no_grad(), autocast:
            if evaluate is not None:
                metrics = dict(evaluate(run_model))
            else:
                losses = [loss_fn(run_model, *_to(get_batch("val", i), device)).item()
                          for i in range(config.eval_steps)]
                metrics = {"val_loss": sum(losses) / len(losses)}
        model.train()
        result.evals.append({"step": result.step, **{k: float(v) for k, v in metrics.items()}})

    # Losses and norms stay on the device until a log point: .item() every step would make the CPU
    # wait for the GPU every step.
    pending_losses: list[torch.Tensor] = []
    pending_norms: list[torch.Tensor] = []

    def flush() -> None:
        if pending_losses:
            result.losses += torch.stack(pending_losses).float().tolist()
            result.grad_norms += torch.stack(pending_norms).float().tolist()
            pending_losses.clear()
            pending_norms.clear()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    timed_tokens, timed_seconds, first_step, run_tokens = 0, 0.0, True, 0
    # `with`: the bar is closed even when a step raises (a notebook would keep a dead bar otherwise)
    with tqdm(total=config.steps, initial=result.step, desc="train", disable=not progress,
              dynamic_ncols=True) as bar:
        model.train()
        clock = time.perf_counter()
        while result.step < config.steps:
            step = result.step
            if schedule is not None:
                for group in optimizer.param_groups:
                    group["lr"] = schedule(step)
            lr = optimizer.param_groups[0]["lr"]
            step_loss = torch.zeros((), device=device)
            step_tokens = 0
            for _ in range(accum):
                x, y = _to(get_batch("train", step), device)
                with autocast:
                    loss = loss_fn(run_model, x, y)
                # Each micro-batch loss is a mean over its own samples; dividing by the number of micro-batches
                # makes the summed gradient that of the mean over all of them, i.e. of one batch k times as
                # big. Without it the gradient (and, through clipping and the lr, the update) is k times too
                # large.
                loss = loss / accum
                scaler.scale(loss).backward()
                step_loss += loss.detach().float()
                step_tokens += y.numel()
            scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
            if config.grad_clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            else:
                norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            scaler.step(optimizer)  # skips the step when fp16 gradients overflowed
            scaler.update()
            optimizer.zero_grad(set_to_none=True)

            result.step += 1
            result.tokens += step_tokens
            run_tokens += step_tokens
            result.lrs.append(float(lr))
            pending_losses.append(step_loss)
            pending_norms.append(norm.detach())
            bar.update(1)
            if first_step:  # leave the first step (allocation, compilation) out of the throughput
                sync()
                clock, first_step = time.perf_counter(), False
            else:
                timed_tokens += step_tokens

            done = result.step == config.steps
            log = result.step % config.log_every == 0 or done
            evaluate_now = config.eval_every > 0 and (result.step % config.eval_every == 0 or done)
            save_now = config.checkpoint_path is not None and (
                done or (config.checkpoint_every > 0 and result.step % config.checkpoint_every == 0))
            if log or evaluate_now or save_now:
                flush()
                sync()
                timed_seconds += time.perf_counter() - clock
                if timed_seconds > 0 and timed_tokens > 0:
                    result.tokens_per_second = timed_tokens / timed_seconds
                if evaluate_now:
                    run_evaluation()
                if save_now:
                    save_checkpoint(config.checkpoint_path, checkpoint_state())
                postfix = {"loss": f"{result.losses[-1]:.4f}", "lr": f"{lr:.2e}"}
                if result.final_val_loss is not None:
                    postfix["val"] = f"{result.final_val_loss:.4f}"
                if not math.isnan(result.tokens_per_second):
                    postfix["tok/s"] = f"{result.tokens_per_second:,.0f}"
                bar.set_postfix(postfix, refresh=False)
                for callback in callbacks:
                    callback(result)
                clock = time.perf_counter()  # evaluation and checkpointing are not training time
    flush()
    if math.isnan(result.tokens_per_second) and run_tokens:
        # a single-step run: its one step is all there is to time
        result.tokens_per_second = run_tokens / max(time.perf_counter() - wall_start, 1e-9)
    result.wall_time_s = time.perf_counter() - wall_start
    return result


def _to(batch: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def bare_train_loop(model: nn.Module, get_batch: GetBatch, steps: int, *, lr: float = 1e-3,
                    weight_decay: float = 0.1, betas: tuple[float, float] = (0.9, 0.99)) -> list[float]:
    """The plainest PyTorch loop for a model whose ``forward(x, y)`` returns ``(logits, loss)``: no
    schedule, clipping, accumulation, autocast, evaluation or bookkeeping. Returns the loss per step.
    The benchmark compares it with ``train`` to measure what the extras cost."""
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
# A live loss curve for JupyterLab


def loss_curves(result: TrainResult) -> dict[str, tuple[list[int], list[float]]]:
    """The data of a loss plot: ``{"train": (steps, losses), "<metric>": (steps, values), ...}`` with
    one entry per evaluated metric whose name ends in ``loss``. Steps count from 1 (after step i)."""
    curves = {"train": (list(range(1, len(result.losses) + 1)), list(result.losses))}
    names = sorted({k for e in result.evals for k in e if k != "step" and k.endswith("loss")})
    for name in names:
        points = [(int(e["step"]), e[name]) for e in result.evals if name in e]
        curves[name] = ([s for s, _ in points], [v for _, v in points])
    return curves
