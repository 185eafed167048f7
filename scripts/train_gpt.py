"""Train TinyGPT, a character-level GPT, on the standard library's source (or any UTF-8 text) and
sample from it. The model defaults are nanoGPT's CPU configuration for shakespeare-char; the optimizer
and schedule are the kit's recipe (--recipe nanogpt for nanoGPT's).

    python scripts/train_gpt.py --steps 200                          # a couple of minutes on 2 cores
    python scripts/train_gpt.py --steps 20 --n-layer 2 --n-embd 32 --max-chars 50000   # seconds
    python scripts/train_gpt.py --text-file book.txt --checkpoint runs/book.pt
    python scripts/train_gpt.py --text-file book.txt --checkpoint runs/book.pt --resume --steps 4000

Prints the training and validation loss, tokens/s (the first step, with torch.compile's compilation, is
timed apart), the estimated MFU (model FLOPs utilisation: the model's 6N + 12LHQT FLOPs per token times
tokens/s, over the hardware's peak) and a sample. The model, training and optimizer flags are generated
from GPTConfig, TrainConfig and Recipe (bigtrain_lab.recipes.add_dataclass_arguments).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from bigtrain_lab import get_device, seed_everything
from bigtrain_lab.models import GPTConfig, TinyGPT
from bigtrain_lab.precision import cpu_peak_flops, parse_cpuinfo
from bigtrain_lab.recipes import (
    RECIPE_FIELDS,
    Recipe,
    add_dataclass_arguments,
    add_recipe_arguments,
    dataclass_kwargs,
    flag_names,
    recipe_from_args,
)
from bigtrain_lab.train import TrainConfig, TrainResult, corpus_batches, load_checkpoint, train

if TYPE_CHECKING:
    from bigtrain_lab.data import CharCorpus

VAL_FRACTION = 0.1
#: where this script's defaults differ from TrainConfig's: a longer run, logged and evaluated less often
TRAIN_DEFAULTS = {"steps": 2000, "eval_every": 250, "log_every": 50}

# Dense (no sparsity) bf16/fp16 tensor-core peaks from NVIDIA's datasheets, in TFLOP/s. Matched in this
# order against torch.cuda.get_device_name(), so the more specific names come first.
GPU_PEAK_TFLOPS = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10G", None),  # no published figure: pass --peak-tflops
    ("A10", 125.0),
    ("V100", 125.0),
    ("T4", 65.0),
    ("RTX 4090", 165.2),
    ("RTX 3090", 71.0),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(p.add_argument_group("model (bigtrain_lab.models.GPTConfig)"), GPTConfig,
                            skip={"vocab_size"})
    t = p.add_argument_group("training (bigtrain_lab.train.TrainConfig)")
    add_dataclass_arguments(t, TrainConfig, skip={*RECIPE_FIELDS, "checkpoint_path", "checkpoint_every"},
                            defaults=TRAIN_DEFAULTS)
    t.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    t.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="save a checkpoint here at every evaluation and at the end")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    add_recipe_arguments(p, default="kit")
    d = p.add_argument_group("data and output")
    d.add_argument("--text-file", metavar="PATH", default=None,
                   help="train on this UTF-8 text instead of the standard library's source")
    d.add_argument("--max-chars", type=int, default=None, help="use only the first MAX_CHARS characters")
    d.add_argument("--sample-chars", type=int, default=300, help="characters to sample at the end (0: none)")
    d.add_argument("--temperature", type=float, default=0.8)
    d.add_argument("--top-k", type=int, default=None)
    d.add_argument("--peak-tflops", type=float, default=None,
                   help="the hardware's peak TFLOP/s for MFU (default: a table of GPUs, or a CPU estimate)")
    return p


def train_config(args: argparse.Namespace, recipe: Recipe) -> TrainConfig:
    """The ``TrainConfig`` the flags describe: their training fields and the recipe's optimizer settings."""
    return TrainConfig(**dataclass_kwargs(args, TrainConfig, skip=RECIPE_FIELDS), **recipe.train_settings(),
                       checkpoint_path=args.checkpoint, checkpoint_every=args.eval_every if args.checkpoint else 0)


def model_config(args: argparse.Namespace, vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, **dataclass_kwargs(args, GPTConfig, skip={"vocab_size"}))


def corpus_from_text_file(path: str, max_chars: int | None) -> CharCorpus:
    """A character corpus of a UTF-8 file, its vocabulary the file's own characters."""
    from bigtrain_lab.data import CharCorpus

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"--text-file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if max_chars is not None:
        text = text[:max_chars]
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    vocab, ids = np.unique(codepoints, return_inverse=True)
    if len(vocab) > 2**16:
        raise ValueError(f"--text-file {path} has {len(vocab)} distinct characters, more than 65536")
    ids = ids.astype(np.uint16)
    n_train = int(len(ids) * (1 - VAL_FRACTION))
    return CharCorpus(train=ids[:n_train], val=ids[n_train:], vocab=[chr(c) for c in vocab])


def check_corpus_length(corpus: CharCorpus, block_size: int, source: str) -> None:
    shortest = min(len(corpus.train), len(corpus.val))
    if shortest <= block_size:
        needed = math.ceil((block_size + 1) / VAL_FRACTION) + 1
        raise ValueError(
            f"{source} is too short: {len(corpus):,} characters leave {len(corpus.val):,} for validation "
            f"(the last {VAL_FRACTION:.0%}), but a window needs block_size + 1 = {block_size + 1}. "
            f"Use at least about {needed:,} characters, or a smaller --block-size.")


def peak_flops(device: torch.device, peak_tflops: float | None) -> tuple[float | None, str]:
    """(peak FLOP/s, how it was obtained) for the MFU figure."""
    if peak_tflops is not None:
        return peak_tflops * 1e12, f"{peak_tflops:g} TFLOP/s (--peak-tflops)"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in GPU_PEAK_TFLOPS:
            if key in name:
                if tflops is None:
                    break
                return tflops * 1e12, f"{tflops:g} TFLOP/s, the datasheet's dense bf16 peak of {name}"
        return None, f"unknown peak for {name}: pass --peak-tflops"
    if device.type == "cpu":
        cpuinfo = Path("/proc/cpuinfo")
        text = cpuinfo.read_text(encoding="utf-8") if cpuinfo.exists() else ""
        return cpu_peak_flops(parse_cpuinfo(text), torch.get_num_threads())
    return None, f"no peak figure for {device.type}: pass --peak-tflops"


class PrintProgress:
    """Callback: one line per log point and per evaluation."""

    def __init__(self, steps: int, start_step: int = 0):
        self.steps = steps
        self.printed_step = start_step
        self.printed_evals: int | None = None  # evaluations of a resumed run's past are not reprinted

    def __call__(self, result: TrainResult) -> None:
        if self.printed_evals is None:
            self.printed_evals = sum(1 for e in result.evals if e["step"] <= self.printed_step)
        width = len(str(self.steps))
        if result.step != self.printed_step and result.losses:
            speed = "" if math.isnan(result.tokens_per_second) else f" | {result.tokens_per_second:,.0f} tokens/s"
            print(f"step {result.step:>{width}}/{self.steps} | loss {result.losses[-1]:.4f} | "
                  f"lr {result.lrs[-1]:.2e}{speed}", flush=True)
            self.printed_step = result.step
        for e in result.evals[self.printed_evals:]:
            print(f"step {int(e['step']):>{width}}/{self.steps} | val loss {e['val_loss']:.4f}", flush=True)
        self.printed_evals = len(result.evals)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ValueError as exc:  # bad input: one line that names the flag, not a traceback
        parser.exit(2, f"{parser.prog}: error: {flag_names(str(exc))}\n")
    return 2


def run(args: argparse.Namespace) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # samples may hold characters the terminal cannot show
    check_flags(args)
    device = open_device(args)
    # The configurations first: their errors are cheaper than loading the corpus.
    recipe = recipe_from_args(args, args.steps)
    config = train_config(args, recipe)
    model_config(args, vocab_size=1)

    corpus, source = load_corpus(args)
    seed_everything(args.seed)
    model = TinyGPT(model_config(args, corpus.vocab_size)).to(device)
    metadata = {"model_config": asdict(model.config), "vocab": "".join(corpus.vocab)}
    start_step = resume_step(args.checkpoint, metadata) if args.resume else 0
    describe(args, source, corpus, model, device, recipe)

    batches = corpus_batches(corpus, args.block_size, args.batch_size, seed=args.seed, device=device)
    result = train(model, batches, config, schedule=recipe.make_schedule(args.steps), progress=False,
                   callbacks=[PrintProgress(args.steps, start_step)], metadata=metadata,
                   resume_from=args.checkpoint if args.resume else None)

    if result.step == start_step:
        print(f"nothing to train: the checkpoint is at step {start_step} and --steps is {args.steps}")
    report(result, model, device, args)
    if args.sample_chars:
        print_sample(model, corpus, device, args)
    return 0


def check_flags(args: argparse.Namespace) -> None:
    """The checks of the flags no configuration holds."""
    if args.text_file is not None and not Path(args.text_file).is_file():
        raise ValueError(f"--text-file {args.text_file}: no such file")
    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint PATH")
    if args.resume and not Path(args.checkpoint).is_file():
        raise ValueError(f"--resume: no checkpoint at {args.checkpoint}")
    for name, low in (("max_chars", 1), ("top_k", 1), ("sample_chars", 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")


def open_device(args: argparse.Namespace) -> torch.device:
    try:
        device = get_device(args.device)
        torch.empty(0, device=device)
    except RuntimeError as exc:
        raise ValueError(f"--device {args.device}: {exc}") from None
    if args.precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs a CUDA device; use bf16 or fp32")
    return device


def load_corpus(args: argparse.Namespace) -> tuple[CharCorpus, str]:
    """The corpus (``--text-file`` or the standard library's) and a description of its source."""
    if args.text_file is not None:
        corpus = corpus_from_text_file(args.text_file, args.max_chars)
        source = f"--text-file {args.text_file}"
    else:
        from bigtrain_lab.data import load_text_corpus  # here: it imports scikit-learn (a second)

        corpus = load_text_corpus(max_chars=args.max_chars, val_fraction=VAL_FRACTION)
        source = f"the standard library corpus ({corpus.n_files} files)"
    check_corpus_length(corpus, args.block_size, source)
    return corpus, source


def resume_step(path: str, metadata: dict) -> int:
    """The step of the checkpoint at ``path``, after checking it was trained on this text and model shape."""
    checkpoint = load_checkpoint(path)
    saved, step = checkpoint.get("metadata", {}), checkpoint["step"]
    if saved.get("vocab") != metadata["vocab"]:
        raise ValueError(f"--resume: {path} was trained on text with another vocabulary")
    then = saved.get("model_config", {})
    diff = {k: (v, then.get(k)) for k, v in metadata["model_config"].items() if then.get(k) != v}
    if diff:
        raise ValueError("--resume: the model flags differ from the checkpoint's: "
                         + ", ".join(f"{k}={now} (checkpoint: {was})" for k, (now, was) in diff.items()))
    return step


def describe(args: argparse.Namespace, source: str, corpus: CharCorpus, model: TinyGPT, device: torch.device,
             recipe: Recipe) -> None:
    c = model.config
    print(f"data: {source}: {len(corpus):,} characters, vocabulary {corpus.vocab_size} | "
          f"train {len(corpus.train):,} | val {len(corpus.val):,}")
    print(f"model: TinyGPT, {model.num_parameters() / 1e6:.2f} M parameters (non-embedding), "
          f"{c.n_layer} layers, {c.n_head} heads, {c.n_embd} dims, block {c.block_size} | "
          f"{model.flops_per_token() / 1e6:.2f} MFLOP per token (6N + 12LHQT)")
    print(f"training: {args.steps} steps on {device} | {args.precision}{' | compiled' if args.compile else ''} | "
          f"{args.batch_size} x {args.grad_accum_steps} x {c.block_size} = "
          f"{args.batch_size * args.grad_accum_steps * c.block_size:,} tokens/step | recipe {args.recipe}: "
          f"{recipe.schedule} lr {recipe.lr:g} -> {recipe.min_lr:g}, warm-up {recipe.warmup_steps}, "
          f"betas ({recipe.betas[0]:g}, {recipe.betas[1]:g}), weight decay {recipe.weight_decay:g}, "
          f"clip {recipe.grad_clip:g}")


def report(result: TrainResult, model: TinyGPT, device: torch.device, args: argparse.Namespace) -> None:
    val = result.final_val_loss
    speed = "n/a" if math.isnan(result.tokens_per_second) else f"{result.tokens_per_second:,.0f}"
    print(f"done: step {result.step} | train loss {result.losses[-1]:.4f} | "
          f"val loss {'n/a' if val is None else f'{val:.4f}'} | {speed} tokens/s | {result.wall_time_s:.1f} s")
    if not math.isnan(result.warmup_seconds):
        print(f"first step: {result.warmup_seconds:.1f} s ({'compilation, ' if args.compile else ''}warm-up; "
              f"left out of tokens/s)")
    peak, peak_label = peak_flops(device, args.peak_tflops)
    if peak is not None and not math.isnan(result.tokens_per_second):
        mfu = model.estimate_mfu(result.tokens_per_second, peak)
        print(f"MFU (estimate): {100 * mfu:.2f} % = {model.flops_per_token() * result.tokens_per_second / 1e12:.4f} "
              f"achieved TFLOP/s / peak {peak_label}")
    else:
        print(f"MFU (estimate): n/a ({peak_label})")
    if args.checkpoint:
        print(f"checkpoint: {args.checkpoint} (step {result.step})")


def print_sample(model: TinyGPT, corpus: CharCorpus, device: torch.device, args: argparse.Namespace) -> None:
    start = corpus.encode("\n") if "\n" in corpus.stoi else [0]
    idx = torch.tensor([start], dtype=torch.long, device=device)
    out = model.generate(idx, args.sample_chars, temperature=args.temperature, top_k=args.top_k,
                         generator=torch.Generator(device=device).manual_seed(args.seed))
    print(f"sample ({args.sample_chars} characters, temperature {args.temperature:g}):")
    print(corpus.decode(out[0, len(start):].tolist()))


if __name__ == "__main__":
    sys.exit(main())
