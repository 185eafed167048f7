"""Text transfer: TinyGPT pretrained on the standard-library corpus (Python code), fine-tuned on English prose.

The prose is Python's own help text, ``pydoc_data.topics`` (the ``help("topics")`` pages), which the
pretraining slice of the corpus does not contain (``prose_corpus`` checks it). Pretraining is cached in the kit
home like the CNNs (``bigtrain_lab.transfer.cache``). The measure is the validation loss on held-out prose,
in bits per character, of the pretrained model fine-tuned for ``steps`` steps vs a randomly initialised one
trained for the same steps.
"""

from __future__ import annotations

import math
from pydoc_data.topics import topics
from typing import Any

import numpy as np
import torch

from bigtrain_lab.data import CharCorpus, load_text_corpus
from bigtrain_lab.models import GPTConfig, TinyGPT
from bigtrain_lab.reproducibility import fast_mode
from bigtrain_lab.train import bare_train_loop, corpus_batches
from bigtrain_lab.transfer.cache import cached_state_dict

__all__ = ["bits_per_char", "gpt_recipe", "pretrained_gpt", "prose_corpus", "text_transfer"]


def gpt_recipe(fast: bool) -> dict[str, Any]:
    """Everything that determines the pretrained TinyGPT (its cache key is a hash of this)."""
    return {"model": "bigtrain_lab.models.TinyGPT", "block_size": 32, "n_layer": 2, "n_head": 2, "n_embd": 64,
            "data": "load_text_corpus(max_chars=...) train split (stdlib .py files in sorted path order)",
            "max_chars": 100_000 if fast else 1_000_000, "steps": 60 if fast else 300, "batch_size": 32,
            "optimizer": "AdamW (bare_train_loop, nanoGPT betas and weight decay)", "lr": 3e-3, "seed": 0,
            "fast": bool(fast), "torch": torch.__version__}


def _model(recipe: dict[str, Any], vocab_size: int) -> TinyGPT:
    return TinyGPT(GPTConfig(vocab_size=vocab_size, block_size=recipe["block_size"], n_layer=recipe["n_layer"],
                             n_head=recipe["n_head"], n_embd=recipe["n_embd"]))


def pretrained_gpt(*, fast: bool | None = None) -> tuple[TinyGPT, CharCorpus]:
    """A fresh TinyGPT pretrained on the stdlib corpus (cached), and the corpus (its vocabulary)."""
    recipe = gpt_recipe(fast_mode() if fast is None else fast)
    corpus = load_text_corpus(max_chars=recipe["max_chars"])

    def train() -> dict[str, torch.Tensor]:
        with torch.random.fork_rng():
            torch.manual_seed(recipe["seed"])
            model = _model(recipe, corpus.vocab_size)
            batches = corpus_batches(corpus, recipe["block_size"], recipe["batch_size"], seed=recipe["seed"])
            bare_train_loop(model, batches, recipe["steps"], lr=recipe["lr"])
        return model.state_dict()

    model = _model(recipe, corpus.vocab_size)
    model.load_state_dict(cached_state_dict("tinygpt_stdlib", {**recipe, "vocab_size": corpus.vocab_size}, train))
    return model, corpus


def prose_corpus(corpus: CharCorpus, *, chars: int = 40_000) -> CharCorpus:
    """The first ``chars`` characters of the help topics (in sorted topic order) in ``corpus``'s vocabulary
    (characters outside it dropped), split half train, half validation."""
    text = "\n\n".join(topics[k] for k in sorted(topics))
    if "# ---- pydoc_data" in corpus.decode(corpus.train):
        raise ValueError("the pretraining slice contains pydoc_data: it would not be a different text")
    known = set(corpus.vocab)
    ids = np.array(corpus.encode("".join(ch for ch in text if ch in known)[:chars]), dtype=np.uint16)
    half = len(ids) // 2
    return CharCorpus(train=ids[:half], val=ids[half:], vocab=corpus.vocab)


@torch.no_grad()
def bits_per_char(model: TinyGPT, corpus: CharCorpus, *, batches: int = 8, batch_size: int = 32) -> float:
    """Mean validation loss over fixed batches, in bits per character (nats / ln 2)."""
    model.eval()
    get = corpus_batches(corpus, model.config.block_size, batch_size, seed=1234)
    loss = np.mean([float(model(*get("val", i))[1]) for i in range(batches)])
    return float(loss / math.log(2))


def text_transfer(steps: int, *, fast: bool | None = None, seed: int = 0) -> dict[str, float]:
    """Bits per char on held-out prose: the pretrained model before fine-tuning, after ``steps`` fine-tuning
    steps, and a random init after the same ``steps`` (same batches, same optimizer)."""
    pretrained, corpus = pretrained_gpt(fast=fast)
    prose = prose_corpus(corpus)
    out = {"pretrained, no fine-tuning": bits_per_char(pretrained, prose)}
    recipe = gpt_recipe(fast_mode() if fast is None else fast)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        scratch = _model(recipe, corpus.vocab_size)
    for name, model in (("fine-tuned from pretrained", pretrained), ("from scratch", scratch)):
        bare_train_loop(model, corpus_batches(prose, recipe["block_size"], 32, seed=seed), steps, lr=recipe["lr"])
        out[name] = bits_per_char(model, prose)
    return out
