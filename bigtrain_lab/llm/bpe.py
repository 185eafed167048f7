"""Byte-level byte-pair encoding (BPE) from scratch, and the check against Hugging Face ``tokenizers``.

BPE (Sennrich et al., 2016; byte-level as in GPT-2, Radford et al., 2019) starts from the 256 byte values of
the UTF-8 text, so every string -- any script, emoji, binary junk -- has a tokenization: there is no unknown
token. Training repeats one step: count every adjacent pair of tokens, make the most frequent pair a new
token, replace its occurrences. Encoding replays the learned merges, lowest rank (earliest learned) first.

* ``bpe_merges(text, num_merges)``: the lesson's reference, on the whole text as one sequence. Ties between
  equally frequent pairs go to the smallest ``(left_id, right_id)``; ids are the byte values 0..255 and
  ``256 + i`` for the token made by merge ``i``. ``bpe_steps`` is the same loop, keeping every step to show.
* ``train_bpe(text, vocab_size, pattern=GPT2_SPLIT)``: the realistic trainer. The text is first cut into
  chunks by GPT-2's regular expression (words with their leading space, numbers, runs of punctuation, runs
  of whitespace); each distinct chunk is counted once with its frequency, merges never cross a chunk
  boundary, and after a merge only the chunks that held the pair are recounted (an index pair -> chunks and
  a heap of counts, as in Hugging Face's trainer). A token here is its byte string: a merge that makes bytes
  already in the vocabulary reuses that id (Hugging Face does the same), so ``vocab_size`` counts distinct
  byte strings.
* ``BPETokenizer``: ``encode`` (per-chunk cache, so a megabyte encodes in seconds), ``decode`` (exact round
  trip for every ``str``, lone surrogates included), ``merges``, ``vocab_size``, ``prefix(k)`` (the tokenizer
  of the first ``k`` merges: BPE is greedy, so that is exactly what training to ``256 + k`` tokens gives).

Tie order, and the check against Hugging Face. ``tokenizers``' ``BpeTrainer`` breaks count ties by its own
token ids, and its 256 base tokens are numbered in the order of GPT-2's printable stand-in characters
(``bytes_to_unicode``: ``!`` .. ``~`` first, then Latin-1 letters, then the control bytes and the space,
which GPT-2 maps to code points above 255). So the space byte is id 32 for us but id 220 for Hugging Face,
and ``(' ', 'x')`` loses a tie it would win under the lesson's byte order. ``tie_order="hf"`` ranks the
bytes the Hugging Face way; with it ``train_bpe`` gives Hugging Face's merges exactly (``hf_bpe_merges``
trains the reference; tests compare both, with and without the GPT-2 split, and the encodings too). Under
the lesson's ``tie_order="bytes"`` the same counts give the same choices except among equally frequent pairs,
which come in another order; as each merge changes the counts after it, the two lists drift apart from the
first such tie, and a few merges differ altogether. ``merge_order_differences`` counts it: on the first
300,000 characters of the corpus (90 % for training, 1024 tokens) 148 of the 768 merges sit at another
position, the first at merge 77, and 2 are not among Hugging Face's at all. (Where a merge re-creates a byte
string already in the vocabulary, Hugging Face's bookkeeping differs from this exact one -- it never lowers
the merged pair's own count -- which could only matter in that rare case; it does not occur on the corpus.)

Python's ``re`` has no ``\\p{L}`` / ``\\p{N}``, and its ``\\s`` also matches the ASCII separators
``\\x1c``-``\\x1f``: ``compile_split`` replaces them by explicit classes built from ``unicodedata``
(letters: categories L*; numbers: N*; whitespace: Unicode's White_Space, as Oniguruma, the engine of
Hugging Face's GPT-2 split, uses) so that ``GPT2_SPLIT`` cuts text exactly as GPT-2 and Hugging Face do.
"""

from __future__ import annotations

import functools
import heapq
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

__all__ = ["GPT2_SPLIT", "BPEStep", "BPETokenizer", "bpe_merges", "bpe_steps", "bytes_to_unicode",
           "compile_split", "hf_bpe_merges", "hf_byte_level_bpe", "hf_merges", "merge_order_differences",
           "split_chunks", "train_bpe"]

GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
"""GPT-2's pre-tokenization pattern (``encoder.py`` of openai/gpt-2; Hugging Face's ``ByteLevel(use_regex=True)``)."""

_NOT_A_MERGE = (sys.maxsize, -1)
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"  # Unicode White_Space


# ----------------------------------------------------------------------------------------------------
# The lesson's reference: BPE on one byte sequence


def _check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text


def _to_bytes(text: str) -> bytes:
    # surrogatepass: a str holding lone surrogates (e.g. '\ud800') still has bytes, and decodes back to itself
    return text.encode("utf-8", "surrogatepass")


def _count_pairs(ids: Sequence[int]) -> Counter:
    """Adjacent pairs over overlapping windows: ``[a, a, a]`` holds ``(a, a)`` twice."""
    return Counter(pairwise(ids))


def _merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace ``pair`` by ``new_id``, left to right, without overlap (``a a a`` -> ``aa a``)."""
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


@dataclass(frozen=True)
class BPEStep:
    """One merge of ``bpe_steps``: the pair (as bytes and as ids), how often it occurred, the new token's
    id and the sequence after the merge (as the byte strings of its tokens)."""

    pair: tuple[bytes, bytes]
    pair_ids: tuple[int, int]
    count: int
    new_id: int
    tokens: tuple[bytes, ...]


def bpe_steps(text: str, num_merges: int) -> list[BPEStep]:
    """``bpe_merges`` keeping every step: which pair, its count, the new id and the sequence after it."""
    _check_text(text)
    if isinstance(num_merges, bool) or not isinstance(num_merges, int) or num_merges < 0:
        raise ValueError(f"num_merges must be an integer >= 0, got {num_merges!r}")
    ids = list(_to_bytes(text))
    vocab = {i: bytes([i]) for i in range(256)}
    steps: list[BPEStep] = []
    for i in range(num_merges):
        counts = _count_pairs(ids)
        if not counts:  # fewer than two tokens left: nothing to merge
            break
        # the most frequent pair; ties -> the smallest (left_id, right_id)
        pair = min(counts, key=lambda p: (-counts[p], p))
        new_id = 256 + i
        ids = _merge_pair(ids, pair, new_id)
        vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
        steps.append(BPEStep((vocab[pair[0]], vocab[pair[1]]), pair, counts[pair], new_id,
                             tuple(vocab[t] for t in ids)))
    return steps


def bpe_merges(text: str, num_merges: int) -> list[tuple[bytes, bytes]]:
    """The first ``num_merges`` merges of byte-level BPE trained on ``text`` as one sequence.

    Each step counts adjacent pairs over overlapping windows, takes the most frequent pair (ties -> the
    smallest ``(left_id, right_id)``, ids being the byte values and ``256 + i`` for merge ``i``'s token) and
    replaces it left to right without overlap. Stops early when fewer than two tokens are left.

    >>> bpe_merges("aaab", 2)  # (a, a) twice; then (aa, a) and (a, b) tie: ids (256, 97) > (97, 98)
    [(b'a', b'a'), (b'a', b'b')]
    """
    _check_text(text)
    if isinstance(num_merges, bool) or not isinstance(num_merges, int) or num_merges < 0:
        raise ValueError(f"num_merges must be an integer >= 0, got {num_merges!r}")
    ids = list(text.encode("utf-8", "surrogatepass"))
    vocab = {i: bytes([i]) for i in range(256)}  # id -> the bytes it stands for
    merges = []
    for i in range(num_merges):
        counts = _count_pairs(ids)
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))  # most frequent, then smallest ids
        ids = _merge_pair(ids, pair, 256 + i)
        vocab[256 + i] = vocab[pair[0]] + vocab[pair[1]]
        merges.append((vocab[pair[0]], vocab[pair[1]]))
    return merges


# ----------------------------------------------------------------------------------------------------
# Pre-tokenization: GPT-2's split with Python's re


def _ranges(first_letters: str, letter: str) -> str:
    """The code points whose category starts with ``letter``, as the inside of a class: ``A-Za-z...``."""
    return "".join(re.escape(chr(m.start())) if m.end() - m.start() == 1
                   else f"{re.escape(chr(m.start()))}-{re.escape(chr(m.end() - 1))}"
                   for m in re.finditer(f"{letter}+", first_letters))


@functools.cache
def _unicode_classes() -> dict[str, str]:
    # one letter per code point (L, N, M, P, S, Z, C), runs found by re: ~0.3 s once per process
    first_letters = "".join([unicodedata.category(chr(cp))[0] for cp in range(sys.maxunicode + 1)])
    return {"L": _ranges(first_letters, "L"), "N": _ranges(first_letters, "N"), "s": _WHITE_SPACE}


@functools.cache
def compile_split(pattern: str) -> re.Pattern:
    """``pattern`` compiled with Python's ``re``, after replacing ``\\p{L}``, ``\\p{N}``, ``\\s`` and ``\\S``
    by explicit Unicode classes (inside ``[...]`` by their ranges, outside by a bracketed class)."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str, got {type(pattern).__name__}")
    if not any(token in pattern for token in (r"\p{", r"\s", r"\S")):
        return re.compile(pattern)
    classes = _unicode_classes()
    out, i, in_class = [], 0, False
    while i < len(pattern):
        if pattern.startswith(r"\p{L}", i) or pattern.startswith(r"\p{N}", i):
            ranges = classes[pattern[i + 3]]
            out.append(ranges if in_class else f"[{ranges}]")
            i += 5
        elif pattern.startswith(r"\s", i) or pattern.startswith(r"\S", i):
            negated = pattern[i + 1] == "S"
            if negated and in_class:
                raise ValueError(r"\S inside a character class is not supported")
            out.append(classes["s"] if in_class else f"[{'^' if negated else ''}{classes['s']}]")
            i += 2
        elif pattern[i] == "\\":
            out.append(pattern[i:i + 2])
            i += 2
        elif pattern[i] == "[" and not in_class:
            j = i + 1 + pattern.startswith("^", i + 1)
            j += pattern.startswith("]", j)  # a ']' first in a class is a literal
            out.append(pattern[i:j])
            in_class, i = True, j
        else:
            in_class = in_class and pattern[i] != "]"
            out.append(pattern[i])
            i += 1
    return re.compile("".join(out))


def split_chunks(text: str, pattern: str | None = GPT2_SPLIT) -> list[str]:
    """The pre-tokenization chunks of ``text``: ``re.findall`` of ``pattern``, or ``[text]`` without one.
    Concatenated they give ``text`` back for ``GPT2_SPLIT`` (its last alternative matches any whitespace
    and the others everything else)."""
    _check_text(text)
    if pattern is None:
        return [text] if text else []
    return compile_split(pattern).findall(text)


# ----------------------------------------------------------------------------------------------------
# The realistic trainer and the tokenizer


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character: printable Latin-1 bytes stand for themselves,
    the other 68 (controls, space, DEL, NBSP, soft hyphen) are shifted to ``chr(256 + n)`` in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, n = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + n)
            n += 1
    return mapping


@functools.cache
def _hf_byte_rank() -> tuple[int, ...]:
    """Hugging Face's id of each byte: its rank when the 256 stand-in characters are sorted by code point."""
    by_char = sorted(range(256), key=lambda b: ord(bytes_to_unicode()[b]))
    rank = [0] * 256
    for r, b in enumerate(by_char):
        rank[b] = r
    return tuple(rank)


def _tie_key(tie_order: str):
    if tie_order == "bytes":
        return lambda token_id: token_id
    if tie_order == "hf":
        rank = _hf_byte_rank()
        return lambda token_id: rank[token_id] if token_id < 256 else token_id
    raise ValueError(f"tie_order must be 'bytes' or 'hf', got {tie_order!r}")


@dataclass
class BPETokenizer:
    """A byte-level BPE tokenizer: ``merges`` in rank order, the split ``pattern`` (None: no split).

    Token ids: 0..255 are the bytes; then each merge's token in the order first made (a merge whose bytes
    already have an id reuses it). Build one with ``train_bpe``, or directly from a list of merges.
    """

    merges: list[tuple[bytes, bytes]]
    pattern: str | None = GPT2_SPLIT
    vocab: list[bytes] = field(init=False, repr=False)
    _ranks: dict[tuple[int, int], tuple[int, int]] = field(init=False, repr=False)
    _cache: dict[str, list[int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.merges = [(bytes(a), bytes(b)) for a, b in self.merges]
        self.vocab = [bytes([b]) for b in range(256)]
        index = {v: i for i, v in enumerate(self.vocab)}
        self._ranks = {}
        for rank, (a, b) in enumerate(self.merges):
            if a not in index or b not in index:
                raise ValueError(f"merge {rank} ({a!r}, {b!r}) uses a token no earlier merge made")
            if a + b not in index:
                index[a + b] = len(self.vocab)
                self.vocab.append(a + b)
            self._ranks.setdefault((index[a], index[b]), (rank, index[a + b]))
        self._cache = {}
        if self.pattern is not None:
            compile_split(self.pattern)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, pattern={'GPT-2' if self.pattern == GPT2_SPLIT else self.pattern!r})"

    def prefix(self, num_merges: int) -> BPETokenizer:
        """The tokenizer of the first ``num_merges`` merges (what training to that many merges gives)."""
        if isinstance(num_merges, bool) or not isinstance(num_merges, int) or not 0 <= num_merges <= len(self.merges):
            raise ValueError(f"num_merges must be an integer in [0, {len(self.merges)}], got {num_merges!r}")
        return BPETokenizer(self.merges[:num_merges], self.pattern)

    def _encode_chunk(self, chunk: str) -> list[int]:
        ids = list(_to_bytes(chunk))
        while len(ids) >= 2:
            # the adjacent pair learned earliest; merge all its occurrences, left to right
            pair = min(pairwise(ids), key=lambda p: self._ranks.get(p, _NOT_A_MERGE)[0])
            if pair not in self._ranks:
                break
            ids = _merge_pair(ids, pair, self._ranks[pair][1])
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (each distinct chunk is encoded once and cached)."""
        out: list[int] = []
        cache = self._cache
        for chunk in split_chunks(text, self.pattern):
            ids = cache.get(chunk)
            if ids is None:
                ids = self._encode_chunk(chunk)
                if len(chunk) < 256:  # long chunks (no split) are not worth keeping
                    cache[chunk] = ids
            out.extend(ids)
        return out

    def token_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes the ids stand for, concatenated. ValueError on an id outside ``[0, vocab_size)``."""
        out = []
        for position, i in enumerate(ids):
            if isinstance(i, bool) or not isinstance(i, int) and not hasattr(i, "__index__"):
                raise ValueError(f"token ids must be integers, got {i!r} at position {position}")
            i = int(i)
            if not 0 <= i < len(self.vocab):
                raise ValueError(f"token id {i} at position {position} is outside [0, {len(self.vocab)})")
            out.append(self.vocab[i])
        return b"".join(out)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``. Exact inverse of ``encode``; ids that cut a character in two decode it to U+FFFD."""
        data = self.token_bytes(ids)
        try:
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace")


def _merge_counting(word: list[int], pair: tuple[int, int], new_id: int, weight: int, delta: Counter,
                    created: list[tuple[int, int]]) -> list[int]:
    """``_merge_pair`` that also records how the pair counts change, looking only around each occurrence.

    Merging ``a b`` into ``X`` inside ``p a b q`` removes ``(p, a)``, ``(a, b)``, ``(b, q)`` and adds ``(p, X)``,
    ``(X, q)``; ``p`` is read from the merged output, so back-to-back occurrences (``a b a b``) come out right.
    Each change is multiplied by ``weight`` (how often the chunk occurs); new pairs go to ``created``.
    """
    a, b = pair
    out: list[int] = []
    i, n = 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == a and word[i + 1] == b:
            delta[pair] -= weight
            if out:
                delta[(out[-1], a)] -= weight
                delta[(out[-1], new_id)] += weight
                created.append((out[-1], new_id))
            if i + 2 < n:
                delta[(b, word[i + 2])] -= weight
                delta[(new_id, word[i + 2])] += weight
                created.append((new_id, word[i + 2]))
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def train_bpe(text: str, vocab_size: int, *, pattern: str | None = GPT2_SPLIT,
              tie_order: str = "bytes") -> BPETokenizer:
    """Train byte-level BPE on ``text`` until the vocabulary holds ``vocab_size`` tokens (or no pair is left).

    ``pattern``: the pre-tokenization split (None: the whole text is one chunk, as ``bpe_merges`` does).
    ``tie_order``: ``"bytes"`` (the lesson's: smallest ``(left_id, right_id)`` with the bytes as ids 0..255)
    or ``"hf"`` (bytes ranked as Hugging Face's ``BpeTrainer`` numbers them: its merges exactly).
    """
    _check_text(text)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256:
        raise ValueError(f"vocab_size must be an integer >= 256 (the 256 bytes come first), got {vocab_size!r}")
    key = _tie_key(tie_order)
    chunk_counts = Counter(split_chunks(text, pattern))
    words = [list(_to_bytes(chunk)) for chunk in chunk_counts]  # each distinct chunk once ...
    counts = list(chunk_counts.values())  # ... with how often it occurs
    vocab = [bytes([b]) for b in range(256)]
    index = {v: i for i, v in enumerate(vocab)}

    pair_counts: Counter = Counter()
    where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> chunks that (may) hold it
    for w, (word, count) in enumerate(zip(words, counts, strict=True)):
        for pair in pairwise(word):
            pair_counts[pair] += count
            where[pair].add(w)
    # a max-heap of (count, tie key) as a min-heap of (-count, key(left), key(right)); entries go stale when
    # a count falls, and are checked against pair_counts when they come out
    heap = [(-c, key(a), key(b), a, b) for (a, b), c in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[bytes, bytes]] = []
    while len(vocab) < vocab_size and heap:
        neg, _, _, a, b = heapq.heappop(heap)
        count = pair_counts.get((a, b), 0)
        if count != -neg:  # stale: requeue with the true count
            if count > 0:
                heapq.heappush(heap, (-count, key(a), key(b), a, b))
            continue
        new_bytes = vocab[a] + vocab[b]
        if new_bytes not in index:
            index[new_bytes] = len(vocab)
            vocab.append(new_bytes)
        new_id = index[new_bytes]
        merges.append((vocab[a], vocab[b]))
        delta: Counter = Counter()  # how each pair's count changes with this merge
        for w in where.pop((a, b)):
            created: list[tuple[int, int]] = []
            words[w] = _merge_counting(words[w], (a, b), new_id, counts[w], delta, created)
            for pair in created:
                where[pair].add(w)
        for pair, d in delta.items():
            if d:
                pair_counts[pair] += d
                if d > 0:  # a count that rose needs a fresh heap entry
                    heapq.heappush(heap, (-pair_counts[pair], key(pair[0]), key(pair[1]), *pair))
                elif pair_counts[pair] <= 0:
                    del pair_counts[pair]
    return BPETokenizer(merges, pattern)


def merge_order_differences(merges_a: Sequence[tuple[bytes, bytes]], merges_b: Sequence[tuple[bytes, bytes]],
                            n: int | None = None) -> dict[str, int]:
    """How two merge lists differ in their first ``n`` merges (all of the shorter list by default):
    ``positions`` where they differ, ``only_in_a`` / ``only_in_b`` merges the other list's first ``n`` lacks,
    and ``first_difference`` (the first differing position, -1 if none)."""
    if n is None:
        n = min(len(merges_a), len(merges_b))
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    a, b = list(merges_a[:n]), list(merges_b[:n])
    positions = [i for i in range(max(len(a), len(b))) if i >= len(a) or i >= len(b) or a[i] != b[i]]
    return {"n": n, "positions": len(positions), "first_difference": positions[0] if positions else -1,
            "only_in_a": len(set(a) - set(b)), "only_in_b": len(set(b) - set(a))}


# ----------------------------------------------------------------------------------------------------
# The reference: Hugging Face tokenizers


def hf_byte_level_bpe(text: str, vocab_size: int, *, use_regex: bool = True) -> Any:
    """A Hugging Face ``tokenizers.Tokenizer`` trained like ``train_bpe``: byte-level BPE, all 256 bytes in
    the alphabet, no special tokens, ``min_frequency`` 0, ``ByteLevel(add_prefix_space=False,
    use_regex=use_regex)`` (``use_regex=False``: the text is one sequence, like ``pattern=None``)."""
    _check_text(text)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256:
        raise ValueError(f"vocab_size must be an integer >= 256, got {vocab_size!r}")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=0, show_progress=False, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([text], trainer=trainer)
    return tokenizer


def hf_merges(tokenizer: Any) -> list[tuple[bytes, bytes]]:
    """A trained Hugging Face BPE tokenizer's merges as byte strings, in rank order."""
    decoder = {ch: b for b, ch in bytes_to_unicode().items()}
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    out = []
    for merge in merges:
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        out.append((bytes(decoder[c] for c in left), bytes(decoder[c] for c in right)))
    return out


def hf_bpe_merges(text: str, vocab_size: int, *, use_regex: bool = True) -> list[tuple[bytes, bytes]]:
    """Hugging Face's merges for ``text`` (see ``hf_byte_level_bpe``), as byte strings in rank order."""
    return hf_merges(hf_byte_level_bpe(text, vocab_size, use_regex=use_regex))
