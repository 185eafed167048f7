"""``bigtrain_lab.llm.model.LLM``: TinyGPT's equal, the KV-cache path, GQA / MQA, QK-norm, z-loss, MoE."""

import math

import pytest
import torch
import torch.nn.functional as F

from bigtrain_lab.data import load_text_corpus
from bigtrain_lab.llm.kv_cache import KVCache, kv_cache_bytes
from bigtrain_lab.llm.model import LLM, LLMConfig
from bigtrain_lab.llm.positions import context_length_losses
from bigtrain_lab.models import GPTConfig, TinyGPT

SHAPE = dict(vocab_size=40, block_size=16, n_layer=2, n_head=4, n_embd=32)
POSITIONS = ["learned", "sinusoidal", "rope", "alibi", "none"]


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return LLM(LLMConfig(**{**SHAPE, **kw})).eval()


def _tokens(B=3, T=16, seed=1):
    return torch.randint(0, SHAPE["vocab_size"], (B, T), generator=torch.Generator().manual_seed(seed))


def test_plain_llm_is_tinygpt():
    torch.manual_seed(0)
    tiny = TinyGPT(GPTConfig(**SHAPE)).eval()
    torch.manual_seed(0)
    llm = LLM(LLMConfig(**SHAPE)).eval()
    assert {k: v.shape for k, v in llm.state_dict().items()} == {k: v.shape for k, v in tiny.state_dict().items()}
    # the same modules created in the same order: one seed gives the same initial weights
    assert all(torch.equal(v, tiny.state_dict()[k]) for k, v in llm.state_dict().items())
    llm.load_state_dict(tiny.state_dict())
    idx = _tokens()
    (a, la), (b, lb) = tiny(idx, idx), llm(idx, idx)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert llm.num_parameters() == tiny.num_parameters()
    prompt = idx[:, :4]
    assert torch.equal(llm.generate(prompt, 20), tiny.generate(prompt, 20, temperature=0))
    sampled = [m.generate(prompt, 20, temperature=0.8, generator=torch.Generator().manual_seed(3)) for m in (llm, tiny)]
    assert torch.equal(*sampled)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("n_kv_head", [4, 2, 1])
def test_incremental_forward_with_cache_equals_full_forward(position, n_kv_head):
    model = _model(position=position, n_kv_head=n_kv_head, qk_norm=position == "rope")
    idx = _tokens()
    full = model(idx)[0]
    cache = KVCache(SHAPE["n_layer"])
    pieces = [model(idx[:, :5], cache=cache)[0]]  # the prompt at once, then token by token, then a chunk
    pieces += [model(idx[:, t:t + 1], cache=cache)[0] for t in range(5, 10)]
    pieces.append(model(idx[:, 10:], cache=cache)[0])
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 16
    assert cache.nbytes() == kv_cache_bytes(n_layer=2, n_kv_head=n_kv_head, head_dim=8, tokens=16, batch=3,
                                            bytes_per_element=4)


@pytest.mark.parametrize("position", POSITIONS)
def test_generate_with_and_without_cache_gives_the_same_tokens(position):
    model = _model(seed=2, position=position, n_kv_head=2)
    prompt = _tokens(B=2, T=3, seed=4)
    # 30 new tokens: past block_size 16, where the window slides
    assert torch.equal(model.generate(prompt, 30, use_cache=True), model.generate(prompt, 30, use_cache=False))
    sampled = [model.generate(prompt, 30, use_cache=c, temperature=1.0, generator=torch.Generator().manual_seed(5))
               for c in (True, False)]
    assert torch.equal(*sampled) and sampled[0].shape == (2, 33)
    assert [t.shape for t in model.stream(prompt, 2)] == [(2, 1), (2, 1)]
    assert model.training is False


def test_gqa_equals_mha_with_repeated_key_value_heads():
    gqa = _model(n_kv_head=2)
    mha = _model(n_kv_head=4)
    sd = gqa.state_dict()
    hd, C = 8, 32
    for i in range(2):
        w, b = sd[f"transformer.h.{i}.attn.c_attn.weight"], sd[f"transformer.h.{i}.attn.c_attn.bias"]
        q, k, v = w.split([C, 2 * hd, 2 * hd])
        qb, kb, vb = b.split([C, 2 * hd, 2 * hd])
        rep = lambda t: t.view(2, hd, *t.shape[1:]).repeat_interleave(2, dim=0).reshape(4 * hd, *t.shape[1:])  # noqa: E731
        sd[f"transformer.h.{i}.attn.c_attn.weight"] = torch.cat([q, rep(k), rep(v)])
        sd[f"transformer.h.{i}.attn.c_attn.bias"] = torch.cat([qb, rep(kb), rep(vb)])
    assert gqa.transformer.h[0].attn.c_attn.weight.shape == (C + 4 * hd, C)
    mha.load_state_dict(sd)
    idx = _tokens()
    torch.testing.assert_close(gqa(idx)[0], mha(idx)[0], atol=1e-5, rtol=1e-5)


def test_qk_norm_makes_attention_blind_to_the_scale_of_q_and_k():
    for kind in ("layernorm", "rmsnorm"):
        model = _model(position="rope", qk_norm=kind)
        idx = _tokens()

        def scale_q_and_k(factor, model=model):
            with torch.no_grad():
                for block in model.transformer.h:
                    block.attn.c_attn.weight[: 2 * 32] *= factor  # queries and keys (biases are 0 at init)

        scale_q_and_k(10.0)  # away from the tiny init, where the norms' eps still matters
        before = model(idx)[0]
        scale_q_and_k(30.0)
        torch.testing.assert_close(model(idx)[0], before, atol=1e-5, rtol=1e-5)
        assert model.transformer.h[0].attn.q_norm is not None
    plain = _model(position="rope")
    assert plain.transformer.h[0].attn.q_norm is None


def test_z_loss_and_aux_parts():
    model = _model(z_loss_weight=0.1)
    idx = _tokens()
    logits, loss = model(idx, idx)
    ce = F.cross_entropy(logits.view(-1, 40), idx.view(-1))
    z = torch.logsumexp(logits.view(-1, 40), dim=-1).pow(2).mean()
    torch.testing.assert_close(loss, ce + 0.1 * z)
    assert math.isclose(model.aux["ce"], ce.item(), rel_tol=1e-6)
    assert math.isclose(model.aux["z_loss"], z.item(), rel_tol=1e-6)
    loss.backward()


def test_learned_positions_stop_at_block_size_others_go_on():
    idx = _tokens(B=2, T=32)
    with pytest.raises(ValueError, match="learned positions"):
        _model()(idx)
    cache = KVCache(2)
    _model()(idx[:, :16], cache=cache)
    with pytest.raises(ValueError, match="learned positions"):
        _model()(idx[:, 16:17], cache=cache)
    for position in ("sinusoidal", "rope", "alibi", "none"):
        assert _model(position=position)(idx)[0].shape == (2, 32, 40)


def test_context_length_losses():
    corpus = load_text_corpus(max_chars=20_000)
    shape = {**SHAPE, "vocab_size": len(corpus.vocab)}
    torch.manual_seed(0)
    learned, rope = LLM(LLMConfig(**shape)), LLM(LLMConfig(**shape, position="rope"))
    got = context_length_losses(rope, corpus, [8, 16, 32], batch_size=2, batches=2)
    assert list(got) == [8, 16, 32] and all(math.isfinite(v) for v in got.values())
    assert abs(got[16] - math.log(len(corpus.vocab))) < 0.5  # untrained: about uniform
    mixed = context_length_losses(learned, corpus, [16, 32], batch_size=2, batches=1, on_error="nan")
    assert math.isfinite(mixed[16]) and math.isnan(mixed[32])
    with pytest.raises(ValueError):
        context_length_losses(learned, corpus, [32], batch_size=2, batches=1)


def test_moe_llm_trains_a_step():
    model = _model(n_experts=4, expert_top_k=2, capacity_factor=2.0, moe_aux_weight=0.01).train()
    idx = _tokens()
    logits, loss = model(idx, idx)
    assert set(model.aux) >= {"ce", "z_loss", "moe_balance", "moe_router_z", "moe_dropped_fraction",
                              "moe_expert_load"}
    assert model.aux["moe_expert_load"].shape == (2, 4)
    assert int(model.aux["moe_expert_load"].sum()) == 2 * 3 * 16 * 2  # layers x tokens x k
    torch.testing.assert_close(loss.detach(), torch.tensor(model.aux["ce"] + 0.01 * model.aux["moe_balance"]))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss.backward()
    assert model.transformer.h[0].mlp.router.weight.grad.abs().sum() > 0
    opt.step()
    assert model(idx, idx)[1].item() < loss.item()
    cache = KVCache(2)  # the cache path does not care what the MLP is
    model.eval()
    torch.testing.assert_close(torch.cat([model(idx[:, :8], cache=cache)[0], model(idx[:, 8:9], cache=cache)[0]], 1),
                               model(idx[:, :9])[0], atol=1e-5, rtol=1e-5)


def test_config_errors():
    with pytest.raises(ValueError, match="multiple of n_kv_head"):
        LLMConfig(**{**SHAPE, "n_kv_head": 3})
    with pytest.raises(ValueError, match="position"):
        LLMConfig(**SHAPE, position="relative")
    with pytest.raises(ValueError, match="qk_norm"):
        LLMConfig(**SHAPE, qk_norm="batchnorm")
    with pytest.raises(ValueError, match="expert_top_k"):
        LLMConfig(**SHAPE, n_experts=2, expert_top_k=3)
    with pytest.raises(ValueError, match="even"):
        LLMConfig(**{**SHAPE, "n_embd": 12}, position="rope")
    with pytest.raises(ValueError, match="z_loss_weight"):
        LLMConfig(**SHAPE, z_loss_weight=-1.0)
    assert LLMConfig(**SHAPE).n_kv_head == 4
    with pytest.raises(TypeError):
        LLM(GPTConfig())
    with pytest.raises(ValueError):
        _model()(torch.zeros(3, dtype=torch.long))


def test_sinusoidal_input_is_scaled_embeddings_plus_the_table():
    from bigtrain_lab.llm.positions import sinusoidal_table

    model = _model(position="sinusoidal")
    seen = {}
    model.transformer.drop.register_forward_hook(lambda mod, args, out: seen.setdefault("x", args[0]))
    idx = _tokens(T=8)
    model(idx)
    expected = model.transformer.wte(idx) * math.sqrt(32) + sinusoidal_table(8, 32)
    torch.testing.assert_close(seen["x"], expected)
    assert "wpe" not in model.transformer


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("position", POSITIONS)
def test_cached_forward_on_the_gpu(position):
    model = _model(position=position, n_kv_head=2).cuda()
    idx = _tokens().cuda()
    cache = KVCache(SHAPE["n_layer"])
    pieces = [model(idx[:, :9], cache=cache)[0]] + [model(idx[:, t:t + 1], cache=cache)[0] for t in range(9, 16)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), model(idx)[0], atol=1e-4, rtol=1e-4)
    assert torch.equal(model.generate(idx[:, :3], 20), model.generate(idx[:, :3], 20, use_cache=False))
