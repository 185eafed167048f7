"""Lesson 14's widgets (bigtrain_lab.widgets.llm): their plain functions (tokenize_view, decoding_view,
kv_cache_view) give the right numbers and refuse bad input, and each widget follows its controls. The
conformance harness (tests/test_widget_conformance.py) drives every control of the cases in
tests/widget_cases.py."""

import math

import pytest
import torch

from bigtrain_lab.llm.decoding import next_token_distribution
from bigtrain_lab.widgets.llm import (
    CONTEXTS,
    KV_PRESETS,
    SAMPLE_TEXT,
    DecodingExplorer,
    KVCacheCalculator,
    TokenizerPlayground,
    decoding_view,
    kv_cache_view,
    token_label,
    tokenize_view,
)
from tests import figure_lint
from tests.widget_cases import tiny_lm, tiny_tokenizers

GIB = 1024**3


# ---- tokenize_view ---------------------------------------------------------------------------------------


def test_token_label_shows_whitespace_and_split_characters():
    assert token_label(b" the") == "·the"
    assert token_label(b"\n\t") == "↵→"
    assert token_label("é".encode()) == "é"
    assert token_label("東".encode()[:2]) == "‹e6 9d›"


def test_tokenize_view_counts_and_ids():
    tokenizers = tiny_tokenizers()
    text = SAMPLE_TEXT
    d = tokenize_view(tokenizers, 350, text)
    assert d["ids"] == tokenizers[350].encode(text)
    assert d["n_tokens"] == len(d["ids"]) == len(d["labels"])
    assert d["n_chars"] == len(text) and d["n_bytes"] == len(text.encode("utf-8")) > d["n_chars"]
    assert d["chars_per_token"] == pytest.approx(d["n_chars"] / d["n_tokens"])
    assert d["bytes_per_token"] == pytest.approx(d["n_bytes"] / d["n_tokens"])
    assert d["round_trip"] is True
    # the labels are the tokens' bytes: put together they are the text again (whitespace made visible)
    shown = "".join(d["labels"])
    assert "‹" in shown  # 東京 is cut into bytes at this small vocabulary
    assert d["vocab_sizes"] == [256, 300, 350, 400]
    assert d["counts"][0] == d["n_bytes"]  # 256 tokens: one per byte
    assert d["counts"][2] == d["n_tokens"]
    assert "tokens</b> for" in d["summary"] and f"{d['chars_per_token']:.2f} characters" in d["summary"]
    assert d["chips"].count("<span") == d["n_tokens"]


def test_more_merges_never_need_more_tokens_on_the_training_text():
    from bigtrain_lab.data import load_text_corpus

    corpus = load_text_corpus(max_chars=8000)
    counts = tokenize_view(tiny_tokenizers(), 256, corpus.decode(corpus.train)[:3000])["counts"]
    assert counts == sorted(counts, reverse=True) and counts[-1] < 0.7 * counts[0]


def test_tokenize_view_empty_text_and_escaping():
    tokenizers = tiny_tokenizers()
    empty = tokenize_view(tokenizers, 300, "")
    assert empty["n_tokens"] == 0 and empty["chars_per_token"] is None and empty["bytes_per_token"] is None
    assert figure_lint.text_problems(empty["summary"]) == []
    tags = tokenize_view(tokenizers, 300, "a<b>&c")
    assert "<b>&" not in tags["chips"] and "&lt;" in tags["chips"] and "&amp;" in tags["chips"]
    many = tokenize_view(tokenizers, 256, "x" * 50, max_chips=10)
    assert many["chips"].count("<span") == 10 and "40 more" in many["chips"] and "…" in many["summary"]


def test_tokenize_view_refuses_bad_input():
    tokenizers = tiny_tokenizers()
    with pytest.raises(ValueError, match="vocab_size must be one of"):
        tokenize_view(tokenizers, 1000, "x")
    with pytest.raises(TypeError, match="text must be a str"):
        tokenize_view(tokenizers, 300, b"x")
    with pytest.raises(TypeError, match="non-empty mapping"):
        tokenize_view({}, 300, "x")
    with pytest.raises(ValueError, match="max_chips"):
        tokenize_view(tokenizers, 300, "x", max_chips=0)


def test_tokenizer_playground_follows_its_controls():
    w = TokenizerPlayground(tiny_tokenizers(), text="hello world", vocab_size=256)
    assert "<b>11 tokens</b>" in w.summary.value
    w.vocab_size.value = 400
    assert w.summary.value.startswith('<div class="bt-tokenizer">vocabulary 400:')
    assert "chosen: 400" in w.figure.layout.title.text
    chosen = next(t for t in w.figure.data if t.name == "tokens (chosen size)")
    assert list(chosen.x) == ["400"] and chosen.y[0] == len(tiny_tokenizers()[400].encode("hello world"))
    w.text.value = "東"
    assert "3 UTF-8 bytes" in w.summary.value
    assert figure_lint.lint_figure(w.figure) == [] and figure_lint.control_layout_problems(w) == []
    with pytest.raises(ValueError):
        TokenizerPlayground(tiny_tokenizers(), vocab_size=999)


# ---- decoding_view ---------------------------------------------------------------------------------------


def _logits(model, encode, prompt):
    with torch.no_grad():
        return model(torch.tensor([encode(prompt)]))[0][0, -1].float()


def test_decoding_view_without_settings_is_the_model():
    model, encode, decode = tiny_lm()
    d = decoding_view(model, encode, decode, "def ", n_samples=0, show=10)
    probs = torch.softmax(_logits(model, encode, "def "), -1)
    top = torch.argsort(probs, descending=True)[:10]
    assert d["ids"] == top.tolist()
    assert d["before"] == pytest.approx(probs[top].tolist())
    assert d["after"] == pytest.approx(d["before"], rel=1e-5)
    assert d["kept"] == d["vocab_size"] == 100
    assert d["entropy_after"] == pytest.approx(d["entropy_before"], rel=1e-5)
    assert d["samples"] == [] and d["labels"][0] in d["summary"]


def test_decoding_view_filters_match_next_token_distribution():
    model, encode, decode = tiny_lm()
    prompt = "aaa b"
    settings = {"temperature": 0.7, "top_k": 20, "top_p": 0.5, "repetition_penalty": 1.5}
    d = decoding_view(model, encode, decode, prompt, n_samples=0, show=100, **settings)
    expected = next_token_distribution(_logits(model, encode, prompt), previous=torch.tensor(encode(prompt)),
                                       **settings)
    assert d["after"] == pytest.approx(expected[d["ids"]].tolist(), abs=1e-7)
    assert d["kept"] == int((expected > 0).sum()) <= 20
    assert sum(d["after"]) == pytest.approx(1.0, abs=1e-5)
    # top-k alone keeps k tokens, renormalised
    k3 = decoding_view(model, encode, decode, prompt, top_k=3, n_samples=0, show=5)
    assert k3["kept"] == 3 and sum(k3["after"][:3]) == pytest.approx(1.0, abs=1e-6) and k3["after"][3:] == [0, 0]
    assert k3["after"][:3] == pytest.approx([p / sum(k3["before"][:3]) for p in k3["before"][:3]], rel=1e-5)
    # temperature 0 is greedy: all the mass on the model's most likely token
    greedy = decoding_view(model, encode, decode, prompt, temperature=0.0, n_samples=0, show=3)
    assert greedy["kept"] == 1 and greedy["after"] == [1.0, 0.0, 0.0] and greedy["entropy_after"] == 0.0


def test_decoding_view_samples_are_seeded():
    model, encode, decode = tiny_lm()
    kwargs = {"temperature": 1.0, "n_samples": 2, "max_new_tokens": 8}
    a = decoding_view(model, encode, decode, "def ", seed=3, **kwargs)["samples"]
    assert a == decoding_view(model, encode, decode, "def ", seed=3, **kwargs)["samples"]
    assert a != decoding_view(model, encode, decode, "def ", seed=4, **kwargs)["samples"]
    assert len(a) == 2 and all(len(s) == 8 for s in a) and a[0] != a[1]
    # greedy: every sample is the model's own greedy continuation
    greedy = decoding_view(model, encode, decode, "def ", temperature=0.0, n_samples=2, max_new_tokens=8)
    reference = model.generate(torch.tensor([encode("def ")]), 8, temperature=0.0)[0, 4:]
    assert greedy["samples"] == [decode(reference)] * 2


def test_decoding_view_crops_long_prompts_and_restores_training_mode():
    model, encode, decode = tiny_lm()
    model.train()
    try:
        d = decoding_view(model, encode, decode, "x" * 50, n_samples=1, max_new_tokens=3)  # block size 32
        assert model.training
    finally:
        model.eval()
    cropped = decoding_view(model, encode, decode, "x" * 32, n_samples=0)
    assert d["before"] == pytest.approx(cropped["before"])


def test_decoding_view_refuses_bad_input():
    model, encode, decode = tiny_lm()
    with pytest.raises(ValueError, match="no tokens"):
        decoding_view(model, encode, decode, "")
    with pytest.raises(ValueError, match="cannot encode the prompt"):
        decoding_view(model, encode, decode, "é")
    with pytest.raises(TypeError, match="prompt must be a str"):
        decoding_view(model, encode, decode, 3)
    with pytest.raises(ValueError, match="top_k"):
        decoding_view(model, encode, decode, "a", top_k=-1)
    with pytest.raises(ValueError, match="top_p"):
        decoding_view(model, encode, decode, "a", top_p=0.0, n_samples=0)
    with pytest.raises(ValueError, match="temperature"):
        decoding_view(model, encode, decode, "a", temperature=-1.0, n_samples=0)


def test_decoding_explorer_follows_its_controls():
    w = DecodingExplorer(*tiny_lm(), prompt="def ", n_samples=2, max_new_tokens=5, show=8)
    assert "100 of 100 tokens" in w.summary.value and len(w.figure.data) == 2
    assert w.top_k.max == 100
    w.top_k.value = 4
    assert "4 of 100 tokens" in w.summary.value and w.figure.layout.title.text == "next token: 4 of 100 can be drawn"
    after = next(t for t in w.figure.data if t.name.startswith("sampled from"))
    assert sum(1 for p in after.y if p > 0) == 4
    w.temperature.value = 0.0
    assert "1 of 100 tokens" in w.summary.value
    w.prompt.value = "é"  # outside the vocabulary: a message, no exception
    assert "cannot decode this prompt" in w.summary.value and len(w.figure.data) == 0
    w.prompt.value = "x"
    assert "1 of 100 tokens" in w.summary.value
    assert figure_lint.lint_figure(w.figure) == [] and figure_lint.control_layout_problems(w) == []


# ---- kv_cache_view ---------------------------------------------------------------------------------------


def test_kv_cache_of_published_models():
    """2 x layers x KV heads x head dim x bytes per token: Llama-2-7B 512 KiB per token in bf16 (2 GiB at its 4k
    context), Llama-2-70B 320 KiB (GQA, 8 KV heads: 8x less than MHA), Mistral-7B and Llama-3-8B 128 KiB,
    Falcon-7B 8 KiB (MQA)."""
    def view(name, **kw):
        p = KV_PRESETS[name]
        return kv_cache_view(n_layer=p["n_layer"], n_head=p["n_head"], n_kv_head=p["n_kv_head"],
                             head_dim=p["head_dim"], context=p["context"], **kw)

    llama7 = view("Llama-2-7B")
    assert llama7["bytes_per_token"] == 512 * 1024 and llama7["bytes"] == 2 * GIB
    assert llama7["kind"] == "MHA" and llama7["mha_bytes"] == llama7["bytes"] and llama7["presets"] == ["Llama-2-7B"]
    llama70 = view("Llama-2-70B")
    assert llama70["bytes_per_token"] == 320 * 1024 and llama70["kind"] == "GQA" and llama70["group"] == 8
    assert llama70["mha_bytes"] == 8 * llama70["bytes"]
    mistral = view("Mistral-7B")
    assert mistral["bytes_per_token"] == 128 * 1024 and mistral["bytes"] == GIB
    assert mistral["presets"] == ["Mistral-7B", "Llama-3-8B"]  # the same attention shape
    falcon = view("Falcon-7B")
    assert falcon["bytes_per_token"] == 8 * 1024 and falcon["kind"] == "MQA" and falcon["group"] == 71
    assert view("Llama-2-7B", dtype="fp32")["bytes"] == 4 * GIB
    assert view("Llama-2-7B", batch=8, dtype="fp8 / int8")["bytes"] == 8 * GIB


def test_kv_cache_curves_are_linear_in_context_and_batch():
    d = kv_cache_view(n_layer=80, n_head=64, n_kv_head=8, head_dim=128, context=4096, batch=4)
    assert d["contexts"] == list(CONTEXTS)
    assert list(d["curves"]) == ["MHA: 64 KV heads", "GQA: 8 KV heads", "MQA: 1 KV head"]
    mha, gqa, mqa = d["curves"].values()
    i = CONTEXTS.index(4096)
    assert gqa[i] == d["bytes"] == 4 * 4096 * d["bytes_per_token"] and mha[i] == d["mha_bytes"]
    for curve in (mha, gqa, mqa):
        assert all(b == curve[0] * c // CONTEXTS[0] for b, c in zip(curve, CONTEXTS, strict=True))
    assert mha[0] == 8 * gqa[0] == 64 * mqa[0]
    # MHA and MQA configurations draw no separate GQA line
    assert len(kv_cache_view(n_layer=2, n_head=4, n_kv_head=4, head_dim=8, context=256)["curves"]) == 2
    assert len(kv_cache_view(n_layer=2, n_head=4, n_kv_head=1, head_dim=8, context=256)["curves"]) == 2
    assert "custom model" in kv_cache_view(n_layer=2, n_head=4, n_kv_head=2, head_dim=8, context=256)["summary"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_kv_head": 3}, "must divide n_head"),
    ({"n_layer": 0}, "n_layer must be an integer >= 1"),
    ({"head_dim": 64.0}, "head_dim must be an integer"),
    ({"batch": True}, "batch must be an integer"),
    ({"context": 0}, "context must be an integer >= 1"),
    ({"dtype": "int4"}, "dtype must be one of"),
])
def test_kv_cache_view_refuses_bad_input(kwargs, message):
    base = {"n_layer": 2, "n_head": 4, "n_kv_head": 2, "head_dim": 8, "context": 256}
    with pytest.raises(ValueError, match=message):
        kv_cache_view(**{**base, **kwargs})


def test_kv_cache_calculator_presets_and_heads():
    w = KVCacheCalculator("Llama-2-7B")
    assert "<b>2 GiB</b> at 4096 tokens" in w.summary.value
    assert w.figure.layout.title.text == "MHA KV cache: 2 GiB at 4k tokens × batch 1"
    w.preset.value = "Llama-2-70B"
    assert (w.n_layer.value, w.n_head.value, w.n_kv_head.value, w.head_dim.value) == (80, 64, 8, 128)
    assert list(w.n_kv_head.options) == [1, 2, 4, 8, 16, 32, 64] and "GQA" in w.summary.value
    w.preset.value = "Llama-3-8B"  # shares Mistral-7B's shape: the dropdown keeps the one picked
    assert w.preset.value == "Llama-3-8B" and w.context.value == 8192
    assert "Mistral-7B = Llama-3-8B" in w.summary.value
    w.n_head.value = 24  # 8 KV heads still divide 24
    assert w.n_kv_head.value == 8 and w.preset.value == "custom" and list(w.n_kv_head.options)[-1] == 24
    w.n_head.value = 71  # prime: the largest divisor below 8 is 1 (MQA)
    assert w.n_kv_head.value == 1 and "MQA" in w.summary.value
    w.head_dim.value, w.n_layer.value = 64, 32
    assert w.preset.value == "Falcon-7B"
    w.preset.value = "custom"  # keeps the sliders
    assert (w.n_head.value, w.n_kv_head.value) == (71, 1)
    marker = next(t for t in w.figure.data if t.name == "this setting")
    assert marker.x == (8192,) and math.isclose(marker.y[0], 2 * 32 * 64 * 8192 * 2 / GIB)
    assert figure_lint.lint_figure(w.figure) == [] and figure_lint.control_layout_problems(w) == []
    with pytest.raises(ValueError, match="preset must be one of"):
        KVCacheCalculator("GPT-5")
    with pytest.raises(ValueError, match="context must be one of"):
        KVCacheCalculator(context=1000)
