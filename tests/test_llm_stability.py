"""Lesson 14's stability tools: the spike detector, the per-layer statistics hook and the experiment runner."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bigtrain_lab.data import load_text_corpus
from bigtrain_lab.llm.model import LLM, LLMConfig
from bigtrain_lab.llm.stability import (
    LayerStats,
    StabilityConfig,
    default_configs,
    find_spikes,
    layer_series,
    spike_onsets,
    stability_runs,
    unigram_loss,
)
from bigtrain_lab.llm.training import train_lm


def _batches(vocab: int, T: int = 8, B: int = 4):
    def get_batch(split: str, step: int):
        g = torch.Generator().manual_seed((0 if split == "train" else 1000) + step)
        x = torch.randint(vocab, (B, T + 1), generator=g)
        return x[:, :-1], x[:, 1:]
    return get_batch


def _llm(n_layer: int = 3, **kw) -> LLM:
    torch.manual_seed(0)
    return LLM(LLMConfig(vocab_size=11, block_size=8, n_layer=n_layer, n_head=2, n_embd=16, **kw))


def test_find_spikes_flags_jumps_relative_to_the_recent_median():
    losses = [3.0, 2.9, 2.8, 2.8, 2.7, 6.0, 5.9, 2.7, 2.6, float("nan"), 2.5]
    assert find_spikes(losses, window=4, threshold=0.5) == [5, 6, 9]
    assert spike_onsets([5, 6, 9]) == [5, 9]
    assert find_spikes(losses, window=4, threshold=2.0) == [9]  # only the non-finite loss
    assert find_spikes([5.0, 4.0, 3.0, 2.0], window=2, threshold=0.1) == []  # a falling loss never spikes
    assert find_spikes([10.0], window=3, threshold=0.1) == []  # step 0 has no reference
    # the median: one spike does not raise the reference of the next step
    assert find_spikes([1.0, 1.0, 1.0, 9.0, 1.6], window=4, threshold=0.5) == [3, 4]
    assert find_spikes(np.array([1.0, 2.0]), window=1, threshold=0.5) == [1]


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"window": 2.5}, {"threshold": 0}, {"threshold": -1.0},
                                    {"threshold": True}])
def test_find_spikes_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        find_spikes([1.0, 2.0], **{"window": 3, "threshold": 0.5, **kwargs})


def test_layer_stats_records_one_value_per_block_and_restores_sdpa():
    model = _llm(n_layer=3)
    original = F.scaled_dot_product_attention
    with LayerStats(model) as stats:
        run = train_lm(model, _batches(11), 4, lr=1e-2, on_step=stats, progress=False)
    assert F.scaled_dot_product_attention is original
    assert [s["step"] for s in run.stats] == [0, 1, 2, 3]
    for record in run.stats:
        for key in ("grad_norm", "update_ratio", "act_rms", "attn_logit_max"):
            assert len(record[key]) == 3
        assert all(g > 0 for g in record["grad_norm"])
        assert all(math.isfinite(a) and a > 0 for a in record["act_rms"])
        assert all(math.isfinite(a) for a in record["attn_logit_max"])
        assert record["ce"] > 0 and record["logit_rms"] > 0 and record["logit_max"] > 0
    assert all(math.isnan(u) for u in run.stats[0]["update_ratio"])
    assert all(0 < u < 1 for u in run.stats[1]["update_ratio"])
    steps, ratios = layer_series(run.stats, "update_ratio")  # moved back to the step that made the update
    assert ratios.shape == (4, 3) and steps.tolist() == [0, 1, 2, 3]
    assert np.allclose(ratios[0], run.stats[1]["update_ratio"]) and np.isnan(ratios[-1]).all()
    assert layer_series(run.stats, "lse_mean")[1].shape == (4,)
    with pytest.raises(ValueError, match="unknown statistic"):
        layer_series(run.stats, "nope")
    # with every=2 only even steps are recorded, and their update ratio is the one of the step before
    model = _llm(n_layer=2)
    with LayerStats(model, every=2) as stats:
        run = train_lm(model, _batches(11), 5, lr=1e-2, on_step=stats, progress=False)
    assert [s["step"] for s in run.stats] == [0, 2, 4]
    assert all(0 < u < 1 for u in run.stats[1]["update_ratio"])


def test_layer_stats_attention_logit_is_the_largest_causal_score():
    model = _llm(n_layer=1, qk_norm=True)
    x, _ = _batches(11)("train", 0)
    stats = LayerStats(model)
    model(x)
    stats.remove()
    attn = model.transformer.h[0].attn
    with torch.no_grad():
        h = model.transformer.h[0].ln_1(model.transformer.wte(x) + model.transformer.wpe(torch.arange(8)))
        q, k, _ = attn.c_attn(h).split(16, dim=2)
        q = attn.q_norm(q.view(4, 8, 2, 8).transpose(1, 2))
        k = attn.k_norm(k.view(4, 8, 2, 8).transpose(1, 2))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(8)
        expected = scores.masked_fill(~torch.ones(8, 8, dtype=torch.bool).tril(), -math.inf).max().item()
    assert stats._attn_max[0] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(TypeError, match="transformer.h"):
        LayerStats(torch.nn.Linear(2, 2))


def test_stability_runs_with_z_loss_and_qk_norm():
    corpus = load_text_corpus(max_chars=20_000)
    configs = [StabilityConfig("z-loss", 3e-3, z_loss_weight=1e-2), StabilityConfig("qk-norm", 3e-3, qk_norm=True),
               StabilityConfig("no clip, beta2 0.999", 3e-3, clip=None, beta2=0.999)]
    results = stability_runs(corpus, configs, steps=3, seeds=(0, 1), block_size=8, batch_size=2, n_layer=2,
                             n_head=2, n_embd=16, progress=False)
    assert list(results) == ["z-loss", "qk-norm", "no clip, beta2 0.999"]
    for result in results.values():
        assert len(result.val_loss) == 2 and all(math.isfinite(v) for v in result.val_loss)
        assert len(result.losses[0]) == 3 and result.diverged == [False, False]
        assert len(result.stats) == 1 and len(result.stats[0][0]["grad_norm"]) == 2
        row = result.summary()
        assert row["diverged"] == 0 and len(row["spike_events"]) == 2
    # z-loss runs report the cross-entropy part, not the total loss
    assert results["z-loss"].losses[0][0] == pytest.approx(results["z-loss"].stats[0][0]["ce"])
    assert results["qk-norm"].stats[0][0]["attn_logit_max"][0] < 10
    with pytest.raises(ValueError, match="unique"):
        stability_runs(corpus, [configs[0], configs[0]], steps=1)
    assert len({c.name for c in default_configs()}) == len(default_configs())


def test_unigram_loss():
    assert unigram_loss(np.arange(4).repeat(10), np.array([0, 1, 2, 3]), 4) == pytest.approx(math.log(4))
    assert unigram_loss(np.zeros(98, dtype=int), np.zeros(3, dtype=int), 2) == pytest.approx(-math.log(99 / 100))
