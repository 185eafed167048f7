"""Lesson 10's text transfer (prose outside the pretraining slice), the HF-convention toy classifier, and the
transfer bench at its quick size."""

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

from bigtrain_lab.data import load_text_corpus
from bigtrain_lab.transfer.seqcls import TinySequenceClassifier, toy_sentences
from bigtrain_lab.transfer.text import prose_corpus

ROOT = Path(__file__).resolve().parent.parent


def test_the_prose_is_a_different_text_from_the_pretraining_slice():
    corpus = load_text_corpus(max_chars=20_000)
    prose = prose_corpus(corpus, chars=4_000)
    text = prose.decode(prose.train) + prose.decode(prose.val)
    assert len(text) == 4_000 and text not in corpus.decode(corpus.train) and "the" in text


def test_the_toy_classifier_returns_a_loss_only_with_labels():
    ids, mask, labels = toy_sentences(16)
    assert ids.shape == mask.shape == (16, 12) and set(labels.tolist()) <= {0, 1}
    model = TinySequenceClassifier()
    out = model(input_ids=ids, attention_mask=mask)
    assert out.loss is None and out.logits.shape == (16, 2)
    with pytest.raises(AttributeError, match="backward"):
        out.loss.backward()
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))


def test_the_bench_runs_at_its_quick_size(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # as when run as a script: conditions.py is beside it
    monkeypatch.delitem(sys.modules, "conditions", raising=False)  # bench/conditions.py, not a cached one
    monkeypatch.setattr(sys, "argv", ["transfer.py", "--quick", "--out-dir", str(tmp_path)])
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(ROOT / "bench" / "transfer.py"), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
    result = json.loads((tmp_path / "transfer.json").read_text())
    assert result["budgets"] == [2] and set(result["accuracy"]) == {"scratch", "probe"}
    assert result["pretraining"]["fast"] is True and "conditions" in result
    assert result["shifted"]["budgets"] == [2] and set(result["shifted"]["accuracy"]) == {"scratch", "probe"}
    assert result["shifted_pretraining"]["recipe"] == "digits_0_4_shifted"
    assert "saved" in capsys.readouterr().out
