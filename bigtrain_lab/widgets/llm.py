"""The widgets of lesson 14 (inside a large language model), each a thin view over a plain function that the unit
tests call (``tests/test_llm_widgets.py``):

* ``TokenizerPlayground`` over ``tokenize_view(tokenizers, vocab_size, text)``: a text box and a vocabulary-size
  slider choosing among byte-level BPE tokenizers trained on the corpus (``bigtrain_lab.llm.bpe.train_bpe``);
  the tokens as coloured chips, their ids, the number of tokens, characters and UTF-8 bytes per token, and a bar
  chart of the text's token count at every vocabulary size against its characters and bytes.
* ``DecodingExplorer`` over ``decoding_view(model, encode, decode, prompt, ...)``: temperature, top-k, top-p and
  repetition-penalty sliders; the model's next-token distribution for the prompt before and after those
  transforms (``bigtrain_lab.llm.decoding.next_token_distribution``) as bars, and a few seeded samples
  (``bigtrain_lab.llm.decoding.sample``).
* ``KVCacheCalculator`` over ``kv_cache_view(...)``: layers, query heads, KV heads, head dimension, context,
  batch and element type, with presets of published models; the cache's bytes
  (``bigtrain_lab.llm.kv_cache.kv_cache_bytes``) and a line of bytes against context for MHA, the chosen GQA
  and MQA.

The constructors take objects already built (tokenizers, a trained model and its encode / decode), so the
notebook trains once and the widget trains nothing.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from bigtrain_lab.llm.decoding import next_token_distribution, sample
from bigtrain_lab.llm.kv_cache import kv_cache_bytes
from bigtrain_lab.memory import format_bytes

__all__ = ["CONTEXTS", "DTYPES", "KV_PRESETS", "SAMPLE_TEXT", "DecodingExplorer", "KVCacheCalculator",
           "TokenizerPlayground", "decoding_view", "kv_cache_view", "token_label", "tokenize_view"]

GIB = 1024**3
_CHOSEN, _OTHER, _BASE, _AFTER = "#d62728", "#1f77b4", "#7f7f7f", "#ff7f0e"
#: chip background colours (light, so the dark text stays readable), cycled over the tokens
_CHIP_COLOURS = ("#fde0dd", "#d4e6f1", "#d5f5e3", "#fcf3cf", "#e8daef", "#fae5d3", "#d1f2eb", "#ebedef")


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


# ---- tokenizer playground ----------------------------------------------------------------------------------

#: the playground's default text: code, English prose and a few non-ASCII characters (two bytes or more each)
SAMPLE_TEXT = 'def greet(name):\n    return f"Hello, {name}!"  # naïve café, 東京'


def token_label(piece: bytes) -> str:
    """How a token's bytes are shown: the text when they are whole UTF-8 characters, with whitespace made visible
    (space ``·``, newline ``↵``, tab ``→``), else their hex (``‹e6 9d›``: part of a multi-byte character).

    >>> token_label(b" the"), token_label(b"\\n"), token_label("東".encode()[:2])
    ('·the', '↵', '‹e6 9d›')
    """
    try:
        text = piece.decode("utf-8")
    except UnicodeDecodeError:
        return "‹" + " ".join(f"{b:02x}" for b in piece) + "›"
    return text.replace(" ", "·").replace("\n", "↵").replace("\t", "→")


def _token_bytes(tokenizer: Any, token_id: int) -> bytes:
    """The bytes of ``token_id``: ``tokenizer.token_bytes([id])`` (``BPETokenizer``), else ``tokenizer.vocab[id]``,
    else ``bpe_merges``' numbering (the bytes 0..255, then ``256 + i`` for merge ``i``)."""
    if callable(getattr(tokenizer, "token_bytes", None)):
        return bytes(tokenizer.token_bytes([token_id]))
    vocab = getattr(tokenizer, "vocab", None)
    if vocab is not None:
        return bytes(vocab[token_id])
    if token_id < 256:
        return bytes([token_id])
    left, right = tokenizer.merges[token_id - 256]
    return bytes(left) + bytes(right)


def _chips_html(labels: Sequence[str], ids: Sequence[int], limit: int) -> str:
    chips = []
    for k, (label, token_id) in enumerate(zip(labels[:limit], ids[:limit], strict=True)):
        colour = _CHIP_COLOURS[k % len(_CHIP_COLOURS)]
        chips.append(f'<span title="id {token_id}" style="background:{colour};border-radius:4px;padding:1px 3px;'
                     f'margin:1px;display:inline-block;font-family:monospace;white-space:pre">'
                     f"{html.escape(label)}</span>")
    more = f" … and {len(ids) - limit} more" if len(ids) > limit else ""
    return '<div class="bt-token-chips" style="line-height:1.9">' + "".join(chips) + more + "</div>"


def tokenize_view(tokenizers: Mapping[int, Any], vocab_size: int, text: str, *, max_chips: int = 300
                  ) -> dict[str, Any]:
    """What the playground shows for ``text`` under ``tokenizers[vocab_size]``.

    tokenizers: vocabulary size -> a tokenizer with ``encode(str) -> list[int]``, ``decode(list[int]) -> str``
    and ``merges`` (``bigtrain_lab.llm.bpe.BPETokenizer``). Returns a dict: ``ids``, ``labels`` (each token's
    text, see ``token_label``), ``n_tokens``, ``n_chars``, ``n_bytes`` (UTF-8), ``chars_per_token`` and
    ``bytes_per_token`` (None for an empty text), ``round_trip`` (decode(encode(text)) == text), ``vocab_sizes``
    and ``counts`` (the text's token count under every tokenizer, in increasing vocabulary size), ``chips``
    (HTML: the first ``max_chips`` tokens as coloured chips) and ``summary`` (HTML).
    """
    if not isinstance(tokenizers, Mapping) or not tokenizers:
        raise TypeError("tokenizers must be a non-empty mapping vocab_size -> tokenizer")
    if isinstance(vocab_size, bool) or vocab_size not in tokenizers:
        raise ValueError(f"vocab_size must be one of {sorted(tokenizers)}, got {vocab_size!r}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    _check_int("max_chips", max_chips, 1)
    tokenizer = tokenizers[vocab_size]
    ids = [int(i) for i in tokenizer.encode(text)]
    labels = [token_label(_token_bytes(tokenizer, i)) for i in ids]
    n_chars, n_bytes, n = len(text), len(text.encode("utf-8")), len(ids)
    sizes = sorted(tokenizers)
    counts = [n if v == vocab_size else len(tokenizers[v].encode(text)) for v in sizes]
    chars_per_token = n_chars / n if n else None
    bytes_per_token = n_bytes / n if n else None
    ratio = (f"{chars_per_token:.2f} characters and {bytes_per_token:.2f} UTF-8 bytes per token" if n
             else "no tokens: the text is empty")
    shown_ids = ", ".join(str(i) for i in ids[:max_chips]) + (", …" if n > max_chips else "")
    summary = (f'<div class="bt-tokenizer">vocabulary {vocab_size}: <b>{n} tokens</b> for {n_chars} characters '
               f"({n_bytes} UTF-8 bytes): {ratio}"
               f"<br><span style='font-family:monospace;font-size:12px'>ids: [{shown_ids}]</span></div>")
    return {"vocab_size": vocab_size, "ids": ids, "labels": labels, "n_tokens": n, "n_chars": n_chars,
            "n_bytes": n_bytes, "chars_per_token": chars_per_token, "bytes_per_token": bytes_per_token,
            "round_trip": tokenizer.decode(ids) == text, "vocab_sizes": sizes, "counts": counts,
            "chips": _chips_html(labels, ids, max_chips), "summary": summary}


class TokenizerPlayground(widgets.VBox):
    """A text box and a vocabulary-size slider over BPE tokenizers trained at several sizes: the text's tokens as
    chips, their ids and counts, and its token count at every size."""

    def __init__(self, tokenizers: Mapping[int, Any], *, text: str = SAMPLE_TEXT, vocab_size: int | None = None,
                 max_chips: int = 300) -> None:
        self.tokenizers = dict(tokenizers)
        self.max_chips = max_chips
        sizes = sorted(self.tokenizers)
        vocab_size = sizes[len(sizes) // 2] if vocab_size is None else vocab_size
        tokenize_view(self.tokenizers, vocab_size, text, max_chips=max_chips)  # refuse bad arguments here
        self.vocab_size = widgets.SelectionSlider(description="vocabulary size", options=[(str(v), v) for v in sizes],
                                                  value=vocab_size, continuous_update=False,
                                                  style={"description_width": "initial"},
                                                  layout=widgets.Layout(width="460px"))
        self.text = widgets.Textarea(value=text, description="text", continuous_update=False,
                                     layout=widgets.Layout(width="760px", height="80px"))
        self.summary = widgets.HTML()
        self.chips = widgets.HTML()
        fig = go.Figure()
        fig.update_layout(width=760, height=320, margin={"l": 60, "r": 30, "t": 50, "b": 80}, barmode="overlay",
                          legend={"orientation": "h", "y": -0.3})
        fig.update_xaxes(title_text="vocabulary size", type="category")
        fig.update_yaxes(title_text="tokens", rangemode="tozero")
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[self.text, self.vocab_size, self.summary, self.chips, self.figure])
        self._show()
        for control in (self.vocab_size, self.text):
            control.observe(lambda _change: self._show(), names="value")

    def data(self) -> dict[str, Any]:
        return tokenize_view(self.tokenizers, self.vocab_size.value, self.text.value, max_chips=self.max_chips)

    def _show(self) -> None:
        d = self.data()
        self.summary.value = d["summary"]
        self.chips.value = d["chips"]
        labels = [str(v) for v in d["vocab_sizes"]]
        others = [(lab, c) for v, lab, c in zip(d["vocab_sizes"], labels, d["counts"], strict=True)
                  if v != d["vocab_size"]]
        traces = [
            go.Bar(x=[lab for lab, _ in others], y=[c for _, c in others], name="tokens (other sizes)",
                   marker={"color": _OTHER}, hovertemplate="vocabulary %{x}: %{y} tokens<extra></extra>"),
            go.Bar(x=[str(d["vocab_size"])], y=[d["n_tokens"]], name="tokens (chosen size)",
                   marker={"color": _CHOSEN}, hovertemplate="vocabulary %{x}: %{y} tokens<extra></extra>"),
            go.Scatter(x=labels, y=[d["n_bytes"]] * len(labels), mode="lines", name="UTF-8 bytes",
                       line={"color": _BASE, "dash": "dot"}),
            go.Scatter(x=labels, y=[d["n_chars"]] * len(labels), mode="lines", name="characters",
                       line={"color": _BASE, "dash": "dash"}),
        ]
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(traces)
            self.figure.layout.xaxis.categoryorder = "array"
            self.figure.layout.xaxis.categoryarray = labels
            self.figure.layout.title = f"this text's tokens at each vocabulary size (chosen: {d['vocab_size']})"


# ---- decoding explorer -------------------------------------------------------------------------------------


def _block_size(model: Any) -> int | None:
    config = getattr(model, "config", None)
    return getattr(config, "block_size", None)


def decoding_view(model: torch.nn.Module, encode: Callable[[str], Sequence[int]],
                  decode: Callable[[Sequence[int]], str], prompt: str, *, temperature: float = 1.0,
                  top_k: int = 0, top_p: float = 1.0, repetition_penalty: float = 1.0, seed: int = 0,
                  n_samples: int = 3, max_new_tokens: int = 40, show: int = 20) -> dict[str, Any]:
    """The model's next-token distribution after ``prompt``, before and after the decoding transforms, and
    ``n_samples`` continuations of ``max_new_tokens`` tokens sampled with them (sample ``i`` from a
    ``torch.Generator`` seeded ``seed + i``).

    ``top_k`` 0 and ``top_p`` 1 switch those filters off; ``temperature`` 0 is greedy. The prompt's tokens are
    the ``previous`` tokens of the repetition penalty. Returns a dict: ``ids`` / ``labels`` (the ``show``
    most probable tokens of the model, most probable first, labelled by ``decode``), ``before`` (softmax of the
    raw logits) and ``after`` (the distribution sampled from) of those tokens, ``kept`` (tokens left with
    probability > 0), ``vocab_size``, ``entropy_before`` / ``entropy_after`` (nats), ``samples`` (decoded
    continuations) and ``summary`` (HTML).
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    try:
        ids = [int(i) for i in encode(prompt)]
    except (KeyError, ValueError) as error:  # a character outside the vocabulary
        raise ValueError(f"the tokenizer cannot encode the prompt: {error}") from error
    if not ids:
        raise ValueError("the prompt has no tokens: type at least one character")
    for name, value in (("n_samples", n_samples), ("max_new_tokens", max_new_tokens), ("show", show),
                        ("top_k", top_k)):
        _check_int(name, value, 0 if name in ("top_k", "n_samples", "max_new_tokens") else 1)
    block = _block_size(model)
    idx = torch.tensor([ids[-block:] if block else ids], dtype=torch.long)
    settings = {"temperature": float(temperature), "top_k": int(top_k) or None,
                "top_p": float(top_p), "repetition_penalty": float(repetition_penalty)}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(idx)[0][0, -1].float()
        before = torch.softmax(logits, dim=-1)
        after = next_token_distribution(logits, previous=idx[0], **settings).float()
        samples = []
        for i in range(n_samples):
            generator = torch.Generator().manual_seed(seed + i)
            out = sample(model, idx, max_new_tokens, generator=generator, **settings)
            samples.append(decode([int(t) for t in out[0, idx.shape[1]:]]))
    finally:
        model.train(was_training)
    vocab = int(logits.numel())
    order = torch.argsort(before, descending=True, stable=True)[: min(show, vocab)]
    top_ids = [int(i) for i in order]
    labels = [token_label(decode([i]).encode("utf-8")) or f"#{i}" for i in top_ids]
    seen: dict[str, int] = {}
    for k, label in enumerate(labels):  # distinct category labels (two tokens may decode alike)
        if label in seen:
            labels[k] = f"{label} #{top_ids[k]}"
        seen[label] = k

    def entropy(p: torch.Tensor) -> float:
        nz = p[p > 0]
        return float(-(nz * nz.log()).sum())

    kept = int((after > 0).sum())
    h0, h1 = entropy(before), entropy(after)
    shown_settings = (f"temperature {temperature:.2f}, top-k {top_k or 'off'}, top-p {top_p:.2f}, "
                      f"repetition penalty {repetition_penalty:.2f}")
    rows = "".join(f"<li style='white-space:pre-wrap;font-family:monospace'>{html.escape(prompt)}"
                   f"<b>{html.escape(s)}</b></li>" for s in samples)
    summary = (f'<div class="bt-decoding">{shown_settings}: <b>{kept} of {vocab} tokens</b> can be drawn; '
               f"entropy {h1:.2f} nats (model: {h0:.2f}); most likely next token "
               f"<code>{html.escape(labels[0])}</code> {float(before[top_ids[0]]):.3f} → "
               f"{float(after[top_ids[0]]):.3f}<ol style='margin:4px 0'>{rows}</ol></div>")
    return {"ids": top_ids, "labels": labels, "before": [float(before[i]) for i in top_ids],
            "after": [float(after[i]) for i in top_ids], "kept": kept, "vocab_size": vocab,
            "entropy_before": h0, "entropy_after": h1, "samples": samples, "summary": summary}


class DecodingExplorer(widgets.VBox):
    """Temperature, top-k, top-p and repetition-penalty sliders over a trained model's next-token distribution
    for a prompt, and a few seeded samples."""

    def __init__(self, model: torch.nn.Module, encode: Callable[[str], Sequence[int]],
                 decode: Callable[[Sequence[int]], str], *, prompt: str = "def ", temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, repetition_penalty: float = 1.0, seed: int = 0,
                 n_samples: int = 3, max_new_tokens: int = 40, show: int = 20) -> None:
        self.model, self.encode, self.decode = model, encode, decode
        self.settings = {"n_samples": n_samples, "max_new_tokens": max_new_tokens, "show": show}
        # refuse bad arguments here (a prompt the model cannot read, a top-k below 0), and learn the vocabulary
        vocab = decoding_view(model, encode, decode, prompt, temperature=temperature, top_k=top_k, top_p=top_p,
                              repetition_penalty=repetition_penalty, seed=seed, n_samples=0, max_new_tokens=0,
                              show=show)["vocab_size"]
        style, wide = {"description_width": "initial"}, widgets.Layout(width="400px")
        self.prompt = widgets.Text(value=prompt, description="prompt", continuous_update=False,
                                   layout=widgets.Layout(width="400px"))
        self.temperature = widgets.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.05,
                                               description="temperature", continuous_update=False,
                                               readout_format=".2f", style=style, layout=wide)
        self.top_k = widgets.IntSlider(value=top_k, min=0, max=vocab, description="top-k (0 = off)",
                                       continuous_update=False, style=style, layout=wide)
        self.top_p = widgets.FloatSlider(value=top_p, min=0.05, max=1.0, step=0.05, description="top-p",
                                         continuous_update=False, readout_format=".2f", style=style, layout=wide)
        self.repetition_penalty = widgets.FloatSlider(value=repetition_penalty, min=1.0, max=2.0, step=0.05,
                                                      description="repetition penalty", continuous_update=False,
                                                      readout_format=".2f", style=style, layout=wide)
        self.seed = widgets.IntText(value=seed, description="seed", layout=widgets.Layout(width="200px"))
        self.summary = widgets.HTML()
        fig = go.Figure()
        fig.update_layout(width=800, height=380, margin={"l": 60, "r": 30, "t": 50, "b": 80}, barmode="group",
                          legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"})
        fig.update_xaxes(title_text="next token (the model's most likely first)", type="category")
        fig.update_yaxes(title_text="probability", rangemode="tozero")
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[
            widgets.HBox([self.prompt, self.seed]), widgets.HBox([self.temperature, self.top_k]),
            widgets.HBox([self.top_p, self.repetition_penalty]), self.summary, self.figure])
        self._show()
        for control in (self.prompt, self.temperature, self.top_k, self.top_p, self.repetition_penalty, self.seed):
            control.observe(lambda _change: self._show(), names="value")

    def data(self) -> dict[str, Any]:
        return decoding_view(self.model, self.encode, self.decode, self.prompt.value,
                             temperature=self.temperature.value, top_k=self.top_k.value, top_p=self.top_p.value,
                             repetition_penalty=self.repetition_penalty.value, seed=self.seed.value,
                             **self.settings)

    def _show(self) -> None:
        try:
            d = self.data()
        except ValueError as error:  # a prompt the tokenizer cannot encode, or an empty one
            self.summary.value = f'<div class="bt-decoding">cannot decode this prompt: {html.escape(str(error))}</div>'
            with self.figure.batch_update():
                self.figure.data = ()
                self.figure.layout.title = "no distribution: fix the prompt"
            return
        self.summary.value = d["summary"]
        traces = [go.Bar(x=d["labels"], y=d["before"], name="model (temperature 1, no filter)",
                         marker={"color": _BASE}, hovertemplate="%{x}: %{y:.3f}<extra></extra>"),
                  go.Bar(x=d["labels"], y=d["after"], name="sampled from (after the settings)",
                         marker={"color": _AFTER}, hovertemplate="%{x}: %{y:.3f}<extra></extra>")]
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(traces)
            self.figure.layout.title = f"next token: {d['kept']} of {d['vocab_size']} can be drawn"


# ---- KV-cache calculator -----------------------------------------------------------------------------------

#: bytes per element of the cache's keys and values, by the name the calculator shows
DTYPES: dict[str, int] = {"fp32": 4, "bf16 / fp16": 2, "fp8 / int8": 1}
#: the context lengths of the bytes-against-context line (256 .. 128 Ki tokens)
CONTEXTS: tuple[int, ...] = tuple(2**k for k in range(8, 18))
#: Published attention shapes (``n_layer``, ``n_head``, ``n_kv_head``, ``head_dim``, and ``context``: the
#: context length the model was trained with), from the papers and the models' configuration files:
#:
#: * Llama-2-7B and Llama-2-70B: Touvron et al. 2023, "Llama 2: Open Foundation and Fine-Tuned Chat Models"
#:   (4k context; grouped-query attention for the 34B and 70B models only), and ``config.json`` of
#:   meta-llama/Llama-2-7b-hf (32 layers, 32 heads, 32 KV heads, hidden 4096) and Llama-2-70b-hf (80 layers,
#:   64 heads, 8 KV heads, hidden 8192).
#: * Mistral-7B: Jiang et al. 2023, "Mistral 7B", Table 1 (n_layers 32, head_dim 128, n_heads 32, n_kv_heads 8,
#:   context_len 8192; its 4096-token sliding window would cap a rolling cache, not modelled here).
#: * Llama-3-8B: Llama Team, AI @ Meta 2024, "The Llama 3 Herd of Models", Table 3 (32 layers, model dimension
#:   4096, 32 attention heads, 8 key/value heads), and Meta's Llama 3 model card (8k context).
#: * Falcon-7B: Almazrouei et al. 2023, "The Falcon Series of Open Language Models", and ``config.json`` of
#:   tiiuae/falcon-7b (32 layers, 71 heads of 64 dimensions, multi-query: one KV head, 2048 context).
KV_PRESETS: dict[str, dict[str, int]] = {
    "Llama-2-7B": {"n_layer": 32, "n_head": 32, "n_kv_head": 32, "head_dim": 128, "context": 4096},
    "Llama-2-70B": {"n_layer": 80, "n_head": 64, "n_kv_head": 8, "head_dim": 128, "context": 4096},
    "Mistral-7B": {"n_layer": 32, "n_head": 32, "n_kv_head": 8, "head_dim": 128, "context": 8192},
    "Llama-3-8B": {"n_layer": 32, "n_head": 32, "n_kv_head": 8, "head_dim": 128, "context": 8192},
    "Falcon-7B": {"n_layer": 32, "n_head": 71, "n_kv_head": 1, "head_dim": 64, "context": 2048},
}
_SHAPE_KEYS = ("n_layer", "n_head", "n_kv_head", "head_dim")
_KINDS = {"MHA": "#1f77b4", "GQA": "#ff7f0e", "MQA": "#2ca02c"}


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _kind(n_head: int, n_kv_head: int) -> str:
    return "MHA" if n_kv_head == n_head else "MQA" if n_kv_head == 1 else "GQA"


def kv_cache_view(*, n_layer: int, n_head: int, n_kv_head: int, head_dim: int, context: int, batch: int = 1,
                  dtype: str = "bf16 / fp16", contexts: Sequence[int] = CONTEXTS) -> dict[str, Any]:
    """The KV cache of one configuration: ``2 * n_layer * n_kv_head * head_dim * context * batch * bytes``
    (``kv_cache_bytes``; the 2 is one key and one value per head), and the same cache against context length
    for multi-head (one KV head per query head), the chosen grouped-query and multi-query (one KV head)
    attention.

    Returns a dict: ``bytes``, ``bytes_per_token`` (one sequence), ``kind`` ("MHA", "GQA" or "MQA"),
    ``group`` (query heads per KV head), ``mha_bytes`` (the same model with n_kv_head = n_head), ``contexts``,
    ``curves`` (legend name -> bytes at each context, batch included), ``presets`` (the published models of
    ``KV_PRESETS`` with these layers and heads: Mistral-7B and Llama-3-8B share theirs), ``formula`` and
    ``summary`` (HTML).
    ValueError on a count below 1, a ``n_kv_head`` that does not divide ``n_head`` or an unknown dtype.
    """
    for name, value in (("n_layer", n_layer), ("n_head", n_head), ("n_kv_head", n_kv_head),
                        ("head_dim", head_dim), ("context", context), ("batch", batch)):
        _check_int(name, value, 1)
    if n_head % n_kv_head != 0:
        raise ValueError(f"n_kv_head ({n_kv_head}) must divide n_head ({n_head}): each KV head serves a group "
                         f"of query heads")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    contexts = [_check_int("contexts[i]", c, 1) for c in contexts]
    per_element = DTYPES[dtype]

    def size(kv: int, tokens: int, b: int = batch) -> int:
        return kv_cache_bytes(n_layer=n_layer, n_kv_head=kv, head_dim=head_dim, tokens=tokens, batch=b,
                              bytes_per_element=per_element)

    kind = _kind(n_head, n_kv_head)
    heads = {"MHA": n_head, "GQA": n_kv_head, "MQA": 1}
    curves = {}
    for name, kv in heads.items():
        if name == "GQA" and kind != "GQA":
            continue
        label = f"{name}: {kv} KV head{'s' if kv > 1 else ''}"
        curves[label] = [size(kv, c) for c in contexts]
    total, per_token, mha = size(n_kv_head, context), size(n_kv_head, 1, 1), size(n_head, context)
    shape = {"n_layer": n_layer, "n_head": n_head, "n_kv_head": n_kv_head, "head_dim": head_dim}
    presets = [name for name, p in KV_PRESETS.items() if all(p[k] == shape[k] for k in _SHAPE_KEYS)]
    formula = (f"2 × {n_layer} layers × {n_kv_head} KV head{'s' if n_kv_head > 1 else ''} × {head_dim} dims × {context} tokens × batch {batch} "
               f"× {per_element} B")
    saving = (f"; MHA would need {format_bytes(mha)} ({n_head // n_kv_head}× more)" if kind != "MHA"
              else f"; GQA with 8 KV heads would need {n_head // 8}× less" if n_head % 8 == 0 and n_head > 8
              else "")
    summary = (f'<div class="bt-kv-cache">{" = ".join(presets) or "custom model"}, {kind} '
               f"({n_head} query heads, {n_kv_head} KV head{'s' if n_kv_head > 1 else ''}): "
               f"<b>{format_bytes(total)}</b> at {context} tokens × batch {batch} in {dtype}, "
               f"{format_bytes(per_token)} per token{saving}<br><code>{formula}</code></div>")
    return {"bytes": total, "bytes_per_token": per_token, "kind": kind, "group": n_head // n_kv_head,
            "mha_bytes": mha, "contexts": contexts, "curves": curves, "presets": presets, "formula": formula,
            "summary": summary}


def _context_label(tokens: int) -> str:
    return f"{tokens // 1024}k" if tokens >= 1024 and tokens % 1024 == 0 else str(tokens)


class KVCacheCalculator(widgets.VBox):
    """Layers, heads, KV heads, head dimension, context, batch and element type -> the KV cache's bytes, with
    presets of published models and the bytes against context for MHA, GQA and MQA."""

    def __init__(self, preset: str = "Llama-2-7B", *, batch: int = 1, dtype: str = "bf16 / fp16",
                 context: int | None = None, gpu_gib: float = 80.0) -> None:
        if preset not in KV_PRESETS:
            raise ValueError(f"preset must be one of {list(KV_PRESETS)}, got {preset!r}")
        p = KV_PRESETS[preset]
        context = p["context"] if context is None else context
        kv_cache_view(**{k: p[k] for k in _SHAPE_KEYS}, context=context, batch=batch, dtype=dtype)
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {list(CONTEXTS)}, got {context!r}")
        self.gpu_gib = gpu_gib
        self._quiet = False
        style = {"description_width": "initial"}
        self.preset = widgets.Dropdown(options=[*KV_PRESETS, "custom"], value=preset, description="preset",
                                       layout=widgets.Layout(width="300px"))
        self.dtype = widgets.Dropdown(options=list(DTYPES), value=dtype, description="dtype",
                                      layout=widgets.Layout(width="240px"))
        self.n_layer = widgets.IntSlider(value=p["n_layer"], min=1, max=128, description="layers",
                                         continuous_update=False, style=style, layout=widgets.Layout(width="400px"))
        self.head_dim = widgets.IntSlider(value=p["head_dim"], min=8, max=256, step=8, description="head dim",
                                          continuous_update=False, style=style, layout=widgets.Layout(width="400px"))
        self.n_head = widgets.IntSlider(value=p["n_head"], min=1, max=128, description="query heads",
                                        continuous_update=False, style=style, layout=widgets.Layout(width="400px"))
        self.n_kv_head = widgets.Dropdown(options=_divisors(p["n_head"]), value=p["n_kv_head"],
                                          description="KV heads", style=style, layout=widgets.Layout(width="240px"))
        self.context = widgets.SelectionSlider(options=[(str(c), c) for c in CONTEXTS], value=context,
                                               description="context (tokens)", continuous_update=False,
                                               style=style, layout=widgets.Layout(width="400px"))
        self.batch = widgets.IntSlider(value=batch, min=1, max=256, description="batch", continuous_update=False,
                                       style=style, layout=widgets.Layout(width="400px"))
        self.summary = widgets.HTML()
        fig = go.Figure()
        fig.update_layout(width=800, height=400, margin={"l": 70, "r": 30, "t": 50, "b": 60},
                          legend={"orientation": "h", "y": -0.22})
        fig.update_xaxes(title_text="context (tokens, log scale)", type="log", tickvals=list(CONTEXTS),
                         ticktext=[_context_label(c) for c in CONTEXTS])
        fig.update_yaxes(title_text="KV cache (GiB, log scale)", type="log")
        self.figure = go.FigureWidget(fig)
        super().__init__(children=[
            widgets.HBox([self.preset, self.dtype]), widgets.HBox([self.n_layer, self.head_dim]),
            widgets.HBox([self.n_head, self.n_kv_head]), widgets.HBox([self.context, self.batch]),
            self.summary, self.figure])
        self._show()
        self.preset.observe(self._on_preset, names="value")
        self.n_head.observe(self._on_heads, names="value")
        for control in (self.n_layer, self.head_dim, self.n_kv_head, self.context, self.batch, self.dtype):
            control.observe(self._on_change, names="value")

    def _on_preset(self, change: dict) -> None:
        if self._quiet or change["new"] not in KV_PRESETS:
            return  # "custom": keep the sliders as they are
        p = KV_PRESETS[change["new"]]
        self._quiet = True
        try:
            self.n_layer.value, self.head_dim.value, self.n_head.value = p["n_layer"], p["head_dim"], p["n_head"]
            self._set_kv_options(p["n_head"], p["n_kv_head"])
            self.context.value = p["context"]
        finally:
            self._quiet = False
        self._show()

    def _set_kv_options(self, n_head: int, n_kv_head: int) -> None:
        options = _divisors(n_head)
        if list(self.n_kv_head.options) != options:
            self.n_kv_head.options = options
        self.n_kv_head.value = n_kv_head

    def _on_heads(self, change: dict) -> None:
        if self._quiet:
            return
        old = self.n_kv_head.value
        self._quiet = True
        try:  # keep the KV heads where they still divide the query heads, else the largest divisor below them
            self._set_kv_options(change["new"], max(d for d in _divisors(change["new"]) if d <= old))
        finally:
            self._quiet = False
        self._on_change(change)

    def _on_change(self, _change: dict) -> None:
        if self._quiet:
            return
        matched = self.data()["presets"]
        self._quiet = True
        try:  # the preset says which published model the sliders describe, "custom" for none
            if self.preset.value not in matched:
                self.preset.value = matched[0] if matched else "custom"
        finally:
            self._quiet = False
        self._show()

    def data(self) -> dict[str, Any]:
        return kv_cache_view(n_layer=self.n_layer.value, n_head=self.n_head.value, n_kv_head=self.n_kv_head.value,
                             head_dim=self.head_dim.value, context=self.context.value, batch=self.batch.value,
                             dtype=self.dtype.value)

    def _show(self) -> None:
        d = self.data()
        self.summary.value = d["summary"]
        traces = [go.Scatter(x=d["contexts"], y=[b / GIB for b in ys], mode="lines", name=name,
                             line={"color": _KINDS[name.split(":")[0]], "width": 3 if name.startswith(d["kind"]) else 2},
                             hovertemplate="%{x} tokens: %{y:.3g} GiB<extra>" + name + "</extra>")
                  for name, ys in d["curves"].items()]
        traces.append(go.Scatter(x=[d["contexts"][0], d["contexts"][-1]], y=[self.gpu_gib] * 2, mode="lines",
                                 name=f"{self.gpu_gib:g} GiB (one large GPU)", line={"color": _BASE, "dash": "dash"}))
        traces.append(go.Scatter(x=[self.context.value], y=[d["bytes"] / GIB], mode="markers", name="this setting",
                                 marker={"color": _CHOSEN, "size": 12, "symbol": "circle-open", "line": {"width": 3}}))
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(traces)
            self.figure.layout.title = (f"{d['kind']} KV cache: {format_bytes(d['bytes'])} at "
                                        f"{_context_label(self.context.value)} tokens × batch {self.batch.value}")
