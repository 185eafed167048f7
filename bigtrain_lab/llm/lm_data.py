"""Token streams of the kit's text corpus for language models, and the units that compare them.

* ``corpus_text(max_chars)``: the text of ``bigtrain_lab.data.load_text_corpus`` (the Python standard
  library's sources), as one ``str``.
* ``CharTokenizer``: one token per character, the vocabulary being the characters of a text. A character
  it never saw has no id (``ValueError``): the weakness byte-level BPE does not have.
* ``TokenStream.from_text(text, tokenizer)``: the text cut at one character position into train / validation
  text, each encoded, with their sizes in UTF-8 bytes. Two tokenizers given the same text and ``val_fraction``
  have the same validation text, so their losses can be compared per byte. ``batches(block_size,
  batch_size, seed)`` is the ``get_batch(split, step)`` that ``bigtrain_lab.llm.training.train_lm`` wants.
* ``perplexity(nats_per_token) = exp(nats_per_token)``: the effective number of equally likely next tokens.
  It depends on what a token is (a character, a word piece): perplexities of two tokenizers do not compare.
* ``bits_per_byte(nats_per_token, n_tokens, n_bytes) = nats_per_token * n_tokens / (n_bytes * ln 2)``: the
  total information the model needs to code the text, divided by the text's length in bytes. Any two
  tokenizers of the same text compare on it (it is the compressed size, in bits, per byte of text).
* ``evaluate_stream(model, stream, block_size)``: every validation token predicted exactly once (windows that
  tile the validation tokens; the first one's context is the last training token), so ``n_tokens`` and
  ``n_bytes`` above are exactly those of the validation text.

Batches: training batch ``step`` and validation batch ``step`` each come from a NumPy generator seeded with
``(seed, split, step)``: the same seed and step give the same batch in any order of calls.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CharTokenizer", "StreamEval", "TokenStream", "bits_per_byte", "corpus_text", "evaluate_stream",
           "perplexity"]


class Tokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def corpus_text(max_chars: int | None = None) -> str:
    """The kit's corpus (the standard library's ``.py`` files, see ``load_text_corpus``) as text: its first
    ``max_chars`` characters, or all of it (several MB) for None."""
    if max_chars is not None:
        _positive_int("max_chars", max_chars)
    from bigtrain_lab.data import load_text_corpus

    corpus = load_text_corpus(max_chars=max_chars)
    return corpus.decode(np.concatenate([corpus.train, corpus.val]))


class CharTokenizer:
    """Characters as tokens: ids ``0 .. len(vocab) - 1`` for the sorted distinct characters of a text."""

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if any(not isinstance(ch, str) or len(ch) != 1 for ch in vocab) or len(set(vocab)) != len(vocab):
            raise ValueError("vocab must be distinct single characters")
        self.vocab = vocab
        self._stoi = {ch: i for i, ch in enumerate(vocab)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        try:
            return [self._stoi[ch] for ch in text]
        except KeyError as missing:
            ch = missing.args[0]
            raise ValueError(f"character {ch!r} (U+{ord(ch):04X}) is not in the vocabulary of "
                             f"{self.vocab_size} characters: a character-level vocabulary has no id for it") from None

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for position, i in enumerate(ids):
            if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i!r} at position {position} is outside [0, {self.vocab_size})")
            out.append(self.vocab[int(i)])
        return "".join(out)


def perplexity(nats_per_token: float) -> float:
    """``exp(nats_per_token)``: the mean cross-entropy (natural log) as an effective branching factor."""
    if isinstance(nats_per_token, bool) or not isinstance(nats_per_token, numbers.Real) \
            or not math.isfinite(nats_per_token) or nats_per_token < 0:
        raise ValueError(f"nats_per_token must be a finite number >= 0, got {nats_per_token!r}")
    return math.exp(nats_per_token)


def bits_per_byte(nats_per_token: float, n_tokens: int, n_bytes: int) -> float:
    """``nats_per_token * n_tokens / (n_bytes * ln 2)``: the bits needed per byte of text.

    ``n_tokens`` tokens were scored with mean cross-entropy ``nats_per_token`` and spell ``n_bytes`` bytes.
    """
    if isinstance(nats_per_token, bool) or not isinstance(nats_per_token, numbers.Real) \
            or not math.isfinite(nats_per_token) or nats_per_token < 0:
        raise ValueError(f"nats_per_token must be a finite number >= 0, got {nats_per_token!r}")
    _positive_int("n_tokens", n_tokens)
    _positive_int("n_bytes", n_bytes)
    return float(nats_per_token) * int(n_tokens) / (int(n_bytes) * math.log(2))


@dataclass(frozen=True)
class TokenStream:
    """Train / validation token ids of one text under one tokenizer, with the sizes bits per byte needs."""

    train: np.ndarray  # int64 ids
    val: np.ndarray
    vocab_size: int
    n_train_bytes: int  # UTF-8 bytes of the training text
    n_val_bytes: int  # UTF-8 bytes of the validation text
    n_val_chars: int = 0
    name: str = ""

    @classmethod
    def from_text(cls, text: str, tokenizer: Tokenizer, *, val_fraction: float = 0.1,
                  name: str = "") -> TokenStream:
        """Cut ``text`` at character ``int(len(text) * (1 - val_fraction))``; encode both parts."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real) \
                or not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
        if not hasattr(tokenizer, "encode") or not hasattr(tokenizer, "vocab_size"):
            raise TypeError(f"tokenizer needs encode() and vocab_size, got {type(tokenizer).__name__}")
        cut = int(len(text) * (1.0 - float(val_fraction)))
        train_text, val_text = text[:cut], text[cut:]
        if not train_text or not val_text:
            raise ValueError(f"text of {len(text)} characters is too short to split at val_fraction={val_fraction}")
        return cls(train=np.asarray(tokenizer.encode(train_text), dtype=np.int64),
                   val=np.asarray(tokenizer.encode(val_text), dtype=np.int64),
                   vocab_size=int(tokenizer.vocab_size),
                   n_train_bytes=len(train_text.encode("utf-8", "surrogatepass")),
                   n_val_bytes=len(val_text.encode("utf-8", "surrogatepass")),
                   n_val_chars=len(val_text), name=name)

    def __post_init__(self) -> None:
        for split in ("train", "val"):
            ids = np.asarray(getattr(self, split))
            if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
                raise ValueError(f"{split} must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
            if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
                raise ValueError(f"{split} holds ids outside [0, {self.vocab_size})")
            object.__setattr__(self, split, ids.astype(np.int64, copy=False))

    def __repr__(self) -> str:
        return (f"TokenStream({self.name or 'tokens'}: vocab_size={self.vocab_size}, train={len(self.train)}, "
                f"val={len(self.val)} tokens = {self.n_val_bytes} bytes)")

    @property
    def bytes_per_token(self) -> float:
        """Validation bytes per validation token."""
        return self.n_val_bytes / len(self.val)

    @property
    def chars_per_token(self) -> float:
        return self.n_val_chars / len(self.val)

    def batches(self, block_size: int, batch_size: int, seed: int = 0
                ) -> Callable[[str, int], tuple[torch.Tensor, torch.Tensor]]:
        """``get_batch(split, step) -> (x, y)``: ``batch_size`` random windows of ``block_size`` tokens,
        ``y`` being ``x`` shifted by one; batch ``step`` of a split is a pure function of ``(seed, step)``."""
        block_size = _positive_int("block_size", block_size)
        batch_size = _positive_int("batch_size", batch_size)
        for split in ("train", "val"):
            if len(getattr(self, split)) <= block_size:
                raise ValueError(f"block_size={block_size} needs more than {block_size} tokens, but the "
                                 f"{split!r} split has {len(getattr(self, split))}")
        offsets = np.arange(block_size + 1)

        def get_batch(split: str, step: int) -> tuple[torch.Tensor, torch.Tensor]:
            if split not in ("train", "val"):
                raise ValueError(f"split must be 'train' or 'val', got {split!r}")
            data = self.train if split == "train" else self.val
            rng = np.random.default_rng([seed, split == "val", step])
            starts = rng.integers(0, len(data) - block_size, size=batch_size)
            windows = torch.from_numpy(data[starts[:, None] + offsets])
            return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()

        return get_batch


@dataclass(frozen=True)
class StreamEval:
    """``evaluate_stream``'s result: the validation text's total cross-entropy and what it gives."""

    nats: float  # summed over every validation token
    n_tokens: int
    n_bytes: int

    @property
    def nats_per_token(self) -> float:
        return self.nats / self.n_tokens

    @property
    def perplexity(self) -> float:
        return perplexity(self.nats_per_token)

    @property
    def bits_per_byte(self) -> float:
        return bits_per_byte(self.nats_per_token, self.n_tokens, self.n_bytes)


@torch.no_grad()
def evaluate_stream(model: nn.Module, stream: TokenStream, block_size: int, *, batch_size: int = 32) -> StreamEval:
    """Cross-entropy of ``model`` on every validation token, each predicted once with up to ``block_size``
    tokens of context (windows tiling ``[last training token] + val``). ``model(x)`` returns ``(logits, ...)``."""
    block_size = _positive_int("block_size", block_size)
    batch_size = _positive_int("batch_size", batch_size)
    seq = torch.from_numpy(np.concatenate([stream.train[-1:], stream.val]))
    n = len(seq) - 1  # targets: all of val
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        starts = list(range(0, n, block_size))
        full = [s for s in starts if s + block_size <= n]
        for i in range(0, len(full), batch_size):
            rows = full[i:i + batch_size]
            x = torch.stack([seq[s:s + block_size] for s in rows])
            y = torch.stack([seq[s + 1:s + block_size + 1] for s in rows])
            logits = model(x)[0]
            total += F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1),
                                     reduction="sum").item()
        if len(full) < len(starts):  # the last, shorter window
            s = starts[-1]
            logits = model(seq[None, s:n])[0]
            total += F.cross_entropy(logits[0].float(), seq[s + 1:n + 1], reduction="sum").item()
    finally:
        model.train(was_training)
    return StreamEval(nats=total, n_tokens=n, n_bytes=stream.n_val_bytes)
