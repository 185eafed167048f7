"""Byte-level BPE of lesson 14 (``bigtrain_lab.llm.bpe``) against hand-worked examples and Hugging Face
``tokenizers``, and the token streams / bits per byte of ``bigtrain_lab.llm.lm_data``."""

import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from bigtrain_lab.llm.bpe import (
    BPETokenizer,
    bpe_merges,
    bpe_steps,
    bytes_to_unicode,
    hf_bpe_merges,
    hf_byte_level_bpe,
    merge_order_differences,
    split_chunks,
    train_bpe,
)
from bigtrain_lab.llm.lm_data import (
    CharTokenizer,
    TokenStream,
    bits_per_byte,
    corpus_text,
    evaluate_stream,
    perplexity,
)


@pytest.fixture(scope="module")
def text() -> str:
    return corpus_text(150_000)


@pytest.fixture(scope="module")
def tokenizer(text) -> BPETokenizer:
    return train_bpe(text[:120_000], 600)


def _random_text(rng: random.Random, n: int, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# ------------------------------------------------------------------------------------------------
# bpe_merges, the exercise reference, by hand


def test_most_frequent_pair_first_and_ties_to_smallest_ids():
    # (a, a) occurs twice in "aaab"; then (aa, a) = (256, 97) and (a, b) = (97, 98) tie once each
    assert bpe_merges("aaab", 2) == [(b"a", b"a"), (b"a", b"b")]
    # every pair once: the smallest (left, right) byte values win, one after the other
    assert bpe_merges("dcba", 1) == [(b"b", b"a")]
    # "ab ab": (a, b) twice -> X; then (X, ' ') = (256, 32) and (' ', X) = (32, 256) tie: (32, 256) wins
    assert bpe_merges("ab ab", 2) == [(b"a", b"b"), (b" ", b"ab")]


def test_overlapping_pairs_are_counted_but_replaced_without_overlap():
    # "aaa" holds (a, a) twice; the merge makes [aa, a], not [aa, aa]
    assert bpe_merges("aaa", 2) == [(b"a", b"a"), (b"aa", b"a")]
    # "aaaa" -> [aa, aa] -> [aaaa] -> one token left: stops early after 2 merges
    assert bpe_merges("aaaa", 5) == [(b"a", b"a"), (b"aa", b"aa")]
    # "aaaaa": (a, a) counted 4 times, replaced twice -> [aa, aa, a]; then (aa, aa) = (256, 256) and
    # (aa, a) = (256, 97) occur once each: the tie goes to (aa, a)
    steps = bpe_steps("aaaaa", 2)
    assert [s.count for s in steps] == [4, 1] and steps[1].pair == (b"aa", b"a")
    assert steps[0].tokens == (b"aa", b"aa", b"a") and steps[1].tokens == (b"aa", b"aaa")


def test_bytes_not_characters():
    # é is two bytes (C3 A9): the first merge joins them, the second joins two é
    assert bpe_merges("éé", 2) == [(b"\xc3", b"\xa9"), (b"\xc3\xa9", b"\xc3\xa9")]
    # an emoji is four bytes (F0 9F 99 82): three pairs tie twice each and (99, 82) has the smallest ids; then
    # (9F, 9982) = (159, 256) beats (F0, 9F) = (240, 159); the third merge rebuilds the emoji
    assert bpe_merges("🙂🙂", 3) == [(b"\x99", b"\x82"), (b"\x9f", b"\x99\x82"), (b"\xf0", b"\x9f\x99\x82")]
    assert bpe_merges("中", 2)[-1] == (b"\xe4", b"\xb8\xad")


def test_early_stop_and_zero():
    assert bpe_merges("", 3) == [] and bpe_merges("a", 3) == [] and bpe_merges("abc", 0) == []
    assert len(bpe_merges("abcdef", 100)) == 5  # six single bytes need five merges to become one token


def test_bpe_merges_bad_inputs():
    with pytest.raises(TypeError, match="str"):
        bpe_merges(b"abc", 1)
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="num_merges"):
            bpe_merges("abc", bad)


def test_steps_replay_to_the_merges_and_the_text():
    rng = random.Random(0)
    for _ in range(20):
        s = _random_text(rng, rng.randint(0, 40), "ab é")
        steps = bpe_steps(s, 8)
        assert [st.pair for st in steps] == bpe_merges(s, 8)
        for st in steps:
            assert b"".join(st.tokens) == s.encode()
            assert st.new_id == 256 + steps.index(st)


# ------------------------------------------------------------------------------------------------
# train_bpe and the tokenizer


def test_train_without_split_equals_the_reference():
    rng = random.Random(1)
    texts = ["aaaa", "abab", "aaaaaaa", "abababab ab aab", "é" * 9, "the cat sat on the mat"]
    texts += [_random_text(rng, rng.randint(2, 60), "aab c") for _ in range(30)]
    for s in texts:
        for k in (1, 3, 10):
            assert train_bpe(s, 256 + k, pattern=None).merges == bpe_merges(s, k), (s, k)


def test_gpt2_split_matches_hugging_face(text):
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    decode = {c: b for b, c in bytes_to_unicode().items()}
    tricky = ("Hello world's  123 foo!!\n\n  x = 1\t\n naïve café 中文 😀 Ⅻ ½ ²3 ٣٤ x\u00a0y\u2003z "
              "\x1c\x1d a\x85b \u200b\u2028 I'LL it's   \n\n\n")
    for s in (tricky, text[:30_000]):
        ours = split_chunks(s)
        theirs = [bytes(decode[c] for c in w).decode() for w, _ in pre.pre_tokenize_str(s)]
        assert ours == theirs
        assert "".join(ours) == s


def test_round_trip_any_unicode(tokenizer):
    rng = random.Random(2)
    pools = [range(0x20, 0x7F), range(0x80, 0x800), range(0x4E00, 0x4F00), range(0x1F600, 0x1F650),
             range(0x0300, 0x0370), range(0, 0x20), range(0xD800, 0xE000)]  # ... lone surrogates too
    for _ in range(200):
        s = "".join(chr(rng.choice(rng.choice(pools))) for _ in range(rng.randint(0, 30)))
        ids = tokenizer.encode(s)
        assert all(0 <= i < tokenizer.vocab_size for i in ids)
        assert tokenizer.decode(ids) == s
    assert tokenizer.encode("") == [] and tokenizer.decode([]) == ""
    # ids that cut a character in two decode to the replacement character, never raise
    assert tokenizer.decode(list("é".encode())[:1]) == "\ufffd"


def test_encode_learns_the_corpus(tokenizer, text):
    held_out = text[120_000:]
    ids = tokenizer.encode(held_out)
    assert tokenizer.decode(ids) == held_out
    assert len(held_out.encode()) / len(ids) > 2.0  # 600 tokens already halve Python source
    assert tokenizer.vocab_size == 600 and len(tokenizer.merges) == 344


def test_prefix_is_training_to_fewer_merges(tokenizer, text):
    small = train_bpe(text[:120_000], 300)
    assert tokenizer.prefix(44).merges == small.merges
    assert tokenizer.prefix(44).encode(text[-2000:]) == small.encode(text[-2000:])


def test_tokenizer_bad_inputs(tokenizer):
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe("abc", 255)
    with pytest.raises(ValueError, match="tie_order"):
        train_bpe("abc", 300, tie_order="alphabetical")
    with pytest.raises(TypeError, match="str"):
        train_bpe(["abc"], 300)
    with pytest.raises(TypeError, match="str"):
        tokenizer.encode(b"abc")
    with pytest.raises(ValueError, match="outside"):
        tokenizer.decode([tokenizer.vocab_size])
    with pytest.raises(ValueError, match="outside"):
        tokenizer.decode([-1])
    with pytest.raises(ValueError, match="no earlier merge"):
        BPETokenizer([(b"ab", b"c")])
    with pytest.raises(ValueError, match="num_merges"):
        tokenizer.prefix(10_000)


# ------------------------------------------------------------------------------------------------
# Hugging Face tokenizers


def test_hf_tie_order_equals_hugging_face_without_split(text):
    s = text[:6000]
    ours = train_bpe(s, 256 + 120, pattern=None, tie_order="hf").merges
    assert ours == hf_bpe_merges(s, 256 + 120, use_regex=False)
    # a three-way tie of single pairs: byte order takes (' ', 'a') = (32, 97); Hugging Face numbers the space
    # after the printable bytes (its stand-in is U+0120), so it takes (a, b)
    assert bpe_merges("ab a", 1) == [(b" ", b"a")]
    assert train_bpe("ab a", 257, pattern=None, tie_order="hf").merges == [(b"a", b"b")]
    assert hf_bpe_merges("ab a", 257, use_regex=False) == [(b"a", b"b")]


def test_hf_tie_order_equals_hugging_face_with_gpt2_split(text):
    s = text[:120_000]
    ours = train_bpe(s, 900, tie_order="hf")
    hf = hf_byte_level_bpe(s, 900)
    from bigtrain_lab.llm.bpe import hf_merges

    assert ours.merges == hf_merges(hf)
    # the encodings agree too (ids differ in numbering: compare the bytes of each token)
    held_out = text[120_000:135_000]
    theirs = [bytes({c: b for b, c in bytes_to_unicode().items()}[ch] for ch in tok)
              for tok in hf.encode(held_out).tokens]
    assert [ours.vocab[i] for i in ours.encode(held_out)] == theirs
    # under the lesson's byte order the same text gives the merges in another order
    diff = merge_order_differences(train_bpe(s, 900).merges, ours.merges)
    assert diff["positions"] > 0 and diff["first_difference"] > 0


def test_merge_order_differences_counts():
    a = [(b"a", b"b"), (b"c", b"d"), (b"e", b"f")]
    b = [(b"c", b"d"), (b"a", b"b"), (b"x", b"y")]
    assert merge_order_differences(a, b) == {"n": 3, "positions": 3, "first_difference": 0, "only_in_a": 1,
                                             "only_in_b": 1}
    assert merge_order_differences(a, a, 2)["positions"] == 0
    assert merge_order_differences(a, a, 2)["first_difference"] == -1


# ------------------------------------------------------------------------------------------------
# lm_data: streams, bits per byte, perplexity


def test_bits_per_byte_and_perplexity_arithmetic():
    assert bits_per_byte(math.log(2), 10, 10) == pytest.approx(1.0)
    assert bits_per_byte(math.log(256), 1000, 1000) == pytest.approx(8.0)  # uniform over bytes
    # the same total information spread over fewer, longer tokens: per-token loss triples, bpb does not
    assert bits_per_byte(3 * 1.2, 100, 300) == pytest.approx(bits_per_byte(1.2, 300, 300))
    assert perplexity(0.0) == 1.0 and perplexity(math.log(5)) == pytest.approx(5.0)
    for bad in (float("nan"), -0.1, float("inf"), "1"):
        with pytest.raises(ValueError, match="nats_per_token"):
            bits_per_byte(bad, 1, 1)
        with pytest.raises(ValueError, match="nats_per_token"):
            perplexity(bad)
    with pytest.raises(ValueError, match="n_tokens"):
        bits_per_byte(1.0, 0, 1)
    with pytest.raises(ValueError, match="n_bytes"):
        bits_per_byte(1.0, 1, 2.5)


def test_streams_share_the_validation_text(text, tokenizer):
    s = text[:20_000] + "naïve 中文\n"
    chars = TokenStream.from_text(s, CharTokenizer.from_text(s), val_fraction=0.2, name="char")
    bpe = TokenStream.from_text(s, tokenizer, val_fraction=0.2, name="bpe")
    assert chars.n_val_bytes == bpe.n_val_bytes == len(s[int(len(s) * 0.8):].encode())
    assert tokenizer.decode(bpe.val.tolist()) == s[int(len(s) * 0.8):]
    assert chars.bytes_per_token > 1.0 and bpe.bytes_per_token > 2 * chars.chars_per_token
    get = bpe.batches(16, 4, seed=3)
    x, y = get("train", 7)
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(get("train", 7)[0], x) and not torch.equal(get("train", 8)[0], x)
    assert torch.equal(bpe.batches(16, 4, seed=3)("val", 0)[1], get("val", 0)[1])
    with pytest.raises(ValueError, match="split"):
        get("test", 0)
    with pytest.raises(ValueError, match="block_size"):
        bpe.batches(len(bpe.val), 4)
    with pytest.raises(ValueError, match="val_fraction"):
        TokenStream.from_text(s, tokenizer, val_fraction=1.0)


def test_char_vocabulary_has_no_id_for_unseen_characters(tokenizer):
    chars = CharTokenizer.from_text("def f(x):\n    return x\n")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        chars.encode("中")
    assert tokenizer.decode(tokenizer.encode("中")) == "中"
    assert chars.decode(chars.encode("def f")) == "def f"


class _Uniform(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, idx, targets=None):
        return torch.zeros(*idx.shape, self.vocab_size), None


def test_evaluate_stream_scores_every_validation_token_once(text, tokenizer):
    s = text[:5000]
    stream = TokenStream.from_text(s, tokenizer, val_fraction=0.3)
    ev = evaluate_stream(_Uniform(stream.vocab_size), stream, block_size=32, batch_size=5)
    assert ev.n_tokens == len(stream.val) and ev.n_bytes == stream.n_val_bytes
    assert ev.nats_per_token == pytest.approx(math.log(stream.vocab_size))
    assert ev.perplexity == pytest.approx(stream.vocab_size)
    assert ev.bits_per_byte == pytest.approx(math.log2(stream.vocab_size) / stream.bytes_per_token)

    from bigtrain_lab.models import GPTConfig, TinyGPT

    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=stream.vocab_size, block_size=len(stream.val), n_layer=1, n_head=2,
                              n_embd=16))
    seq = torch.from_numpy(np.concatenate([stream.train[-1:], stream.val]))
    with torch.no_grad():
        _, loss = model(seq[None, :-1], seq[None, 1:])
    one_window = evaluate_stream(model, stream, block_size=len(stream.val))
    assert one_window.nats_per_token == pytest.approx(loss.item(), rel=1e-5)
