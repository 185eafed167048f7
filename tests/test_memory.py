"""The memory calculator against memory measured on real models, and the instruments themselves."""

import contextlib

import pytest
import torch

from bigtrain_lab.grading import get_exercise
from bigtrain_lab.memory import (
    LiveTensorPeak,
    MemoryBreakdown,
    SavedTensorBytes,
    bytes_per_parameter,
    format_bytes,
    gpt_activation_bytes,
    gpt_num_parameters,
    measure_model_states,
    measure_sharded_model_states,
    model_state_bytes,
    storage_nbytes,
    training_memory,
)
from bigtrain_lab.models import GPTConfig, TinyGPT

SHAPES = [  # n_layer, n_embd, n_head, vocab, seq_len, batch
    (4, 128, 4, 222, 64, 12),
    (2, 64, 2, 50, 16, 3),
    (1, 96, 3, 30, 20, 5),
]


def tiny(n_layer=2, n_embd=64, n_head=2, vocab=50, block=16, **kw):
    torch.manual_seed(0)
    return TinyGPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                             **kw))


def test_bytes_per_parameter_is_the_zero_papers():
    assert bytes_per_parameter("mixed", "adamw") == (2, 2, 12)
    assert bytes_per_parameter("fp32", "adamw") == (4, 4, 8)
    assert bytes_per_parameter("fp32", "sgd_momentum") == (4, 4, 4)
    assert bytes_per_parameter("mixed", "sgd") == (2, 2, 4)  # the fp32 master copy stays
    assert bytes_per_parameter("autocast", "adamw") == (4, 4, 8)  # fp32 parameters are the master copy


def test_the_two_mixed_recipes_shard_differently():
    # same 16 bytes unsharded and under ZeRO-3; under ZeRO-1 autocast keeps fp32 weights and gradients
    n, N = 1000, 8
    for stage in (0, 3):
        assert (model_state_bytes(n, precision="autocast", zero_stage=stage, world_size=N).total
                == model_state_bytes(n, precision="mixed", zero_stage=stage, world_size=N).total)
    assert model_state_bytes(n, precision="autocast", zero_stage=1, world_size=N).total == n * (8 + 8 / N)
    assert model_state_bytes(n, precision="mixed", zero_stage=1, world_size=N).total == n * (4 + 12 / N)
    assert model_state_bytes(n, precision="autocast", zero_stage=2, world_size=N).total == n * (4 + 12 / N)


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
@pytest.mark.parametrize("world_size", [1, 2, 3, 64])
def test_model_states_agree_with_the_graded_reference(stage, world_size):
    reference = get_exercise("memory.adam_training_bytes").reference
    for n in (0, 1, 1001, 7_500_000_000):
        ours = model_state_bytes(n, zero_stage=stage, world_size=world_size).total
        assert ours == pytest.approx(reference(n, zero_stage=stage, world_size=world_size), rel=1e-12)


def test_zero_paper_figure_1():
    got = [model_state_bytes(7_500_000_000, zero_stage=s, world_size=64).total / 1e9 for s in range(4)]
    assert [round(g, 1) for g in got] == [120.0, 31.4, 16.6, 1.9]


def test_stages_shard_what_they_should():
    full = model_state_bytes(1000, zero_stage=0, world_size=4)
    s1, s2, s3 = (model_state_bytes(1000, zero_stage=s, world_size=4) for s in (1, 2, 3))
    assert (s1.parameters, s1.gradients, s1.optimizer_states) == (2000, 2000, 3000)
    assert (s2.parameters, s2.gradients, s2.optimizer_states) == (2000, 500, 3000)
    assert (s3.parameters, s3.gradients, s3.optimizer_states) == (500, 500, 3000)
    assert full.total == 16000


@pytest.mark.parametrize("bad", [dict(zero_stage=4), dict(zero_stage=-1), dict(zero_stage=True),
                                 dict(world_size=0), dict(world_size=1.5), dict(precision="fp16"),
                                 dict(optimizer="adam8bit")])
def test_model_state_bytes_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        model_state_bytes(10, **bad)
    with pytest.raises(ValueError):
        model_state_bytes(-1)


def test_training_memory_adds_unsharded_activations():
    m = training_memory(1000, activations=5000, zero_stage=3, world_size=10)
    assert m.activations == 5000 and m.total == 1600 + 5000
    with pytest.raises(ValueError):
        training_memory(1000, activations=-1)


@pytest.mark.parametrize("shape", SHAPES)
def test_parameter_count_formula_matches_tinygpt(shape):
    L, C, H, V, T, _ = shape
    for bias in (True, False):
        model = tiny(L, C, H, V, T + 3, bias=bias)
        expected = model.num_parameters(non_embedding=False)
        assert gpt_num_parameters(n_layer=L, n_embd=C, vocab_size=V, block_size=T + 3, bias=bias) == expected


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_activation_formula_equals_the_saved_tensors_measured(shape, precision, checkpointing):
    L, C, H, V, T, B = shape
    model = tiny(L, C, H, V, T + 3, gradient_checkpointing=checkpointing)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with SavedTensorBytes(exclude=model.parameters()) as saved, autocast:
        _, loss = model(x, y)
    formula = gpt_activation_bytes(n_layer=L, n_embd=C, n_head=H, vocab_size=V, seq_len=T, batch_size=B,
                                   precision=precision, checkpointing=checkpointing)
    assert saved.nbytes == formula
    assert sum(saved.by_dtype.values()) == saved.nbytes
    loss.backward()  # the graph is intact: the hooks returned the tensors unchanged


def test_checkpointing_and_bf16_change_the_count_the_right_way():
    kw = dict(n_layer=4, n_embd=128, n_head=4, vocab_size=222, seq_len=64, batch_size=12)
    full = gpt_activation_bytes(**kw)
    assert gpt_activation_bytes(**kw, checkpointing=True) < full / 5
    assert gpt_activation_bytes(**kw, precision="bf16") < full
    assert gpt_activation_bytes(**{**kw, "batch_size": 24}) > 1.99 * full
    with pytest.raises(ValueError):
        gpt_activation_bytes(**kw, precision="fp16")
    with pytest.raises(ValueError):
        gpt_activation_bytes(**{**kw, "batch_size": 0})


def test_storage_nbytes_counts_shared_storage_once():
    a = torch.zeros(10)
    assert storage_nbytes([a, a[2:], a.view(2, 5)]) == 40
    assert storage_nbytes([a, torch.zeros(3, dtype=torch.float64)]) == 64
    with pytest.raises(TypeError):
        storage_nbytes([a, 3])


@pytest.mark.parametrize("optimizer_cls,states", [(torch.optim.AdamW, 2), (torch.optim.SGD, 1)])
def test_measured_fp32_model_states_match_the_calculator(optimizer_cls, states):
    model = tiny()
    kwargs = {"momentum": 0.9} if optimizer_cls is torch.optim.SGD else {}
    optimizer = optimizer_cls(model.parameters(), lr=1e-3, **kwargs)
    x = torch.randint(0, 50, (2, 16))
    model(x, x)[1].backward()
    optimizer.step()
    n = model.num_parameters(non_embedding=False)
    measured = measure_model_states(model, optimizer)
    predicted = model_state_bytes(n, precision="fp32", optimizer="adamw" if states == 2 else "sgd_momentum")
    assert measured.parameters == predicted.parameters == 4 * n  # the tied matrix is counted once
    assert measured.gradients == predicted.gradients
    n_tensors = len(list(model.parameters()))
    step_counters = 4 * n_tensors if optimizer_cls is torch.optim.AdamW else 0  # Adam's `step`, fp32 scalars
    assert measured.optimizer_states == predicted.optimizer_states + step_counters


def test_measured_autocast_model_states_match_the_autocast_recipe():
    # under torch.autocast the parameters and their gradients stay fp32: 4 + 4 + 8, not 2 + 2 + 12
    model = tiny()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 50, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(x, x)[1]
    loss.backward()
    optimizer.step()
    assert {p.dtype for p in model.parameters()} == {p.grad.dtype for p in model.parameters()} == {torch.float32}
    n = model.num_parameters(non_embedding=False)
    measured = measure_model_states(model, optimizer)
    predicted = model_state_bytes(n, precision="autocast")
    assert (measured.parameters, measured.gradients) == (predicted.parameters, predicted.gradients) == (4 * n, 4 * n)
    assert measured.optimizer_states == predicted.optimizer_states + 4 * len(list(model.parameters()))
    assert measured.parameters != model_state_bytes(n, precision="mixed").parameters


def test_live_tensor_peak_sees_activations_grads_and_frees():
    model = tiny(4, 128, 4, 222, 64)
    x = torch.randint(0, 222, (12, 64))
    with SavedTensorBytes(exclude=model.parameters()) as saved:
        pass
    with LiveTensorPeak() as live:
        logits, loss = model(x, x)
        after_forward = live.current
        loss.backward()
        del logits, loss
    grads = storage_nbytes([p.grad for p in model.parameters()])
    assert live.current == grads  # only the gradients remain
    assert live.peak >= after_forward > gpt_activation_bytes(n_layer=4, n_embd=128, n_head=4, vocab_size=222,
                                                               seq_len=64, batch_size=12) - 20_000
    assert saved.nbytes == 0


def test_checkpointing_lowers_the_measured_peak():
    peaks = {}
    for ckpt in (False, True):
        model = tiny(4, 128, 4, 222, 64, gradient_checkpointing=ckpt)
        x = torch.randint(0, 222, (12, 64))
        with LiveTensorPeak() as live:
            model(x, x)[1].backward()
        peaks[ckpt] = live.peak
    assert peaks[True] < 0.6 * peaks[False]


def test_sharded_states_on_a_fake_process_group():
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=64)
    n = TinyGPT(config).num_parameters(non_embedding=False)
    got = measure_sharded_model_states(config, world_size=2, backend="fake")
    assert set(got) == {"ddp", "zero1", "fsdp"} and all(len(v) == 2 for v in got.values())
    for rank in got["ddp"]:
        assert rank["parameters"] == rank["gradients"] == 4 * n
    # ZeRO-1: the Adam states are split between the ranks, parameters and gradients are not
    assert sum(r["optimizer_states"] for r in got["zero1"]) == pytest.approx(got["ddp"][0]["optimizer_states"])
    assert all(r["parameters"] == 4 * n for r in got["zero1"])
    # FSDP2 (ZeRO-3): everything is split, up to padding
    for rank in got["fsdp"]:
        assert rank["parameters"] == rank["gradients"] == pytest.approx(2 * n, rel=0.01)
        assert rank["optimizer_states"] == pytest.approx(4 * n, rel=0.01)
    with pytest.raises(ValueError):
        measure_sharded_model_states(config, backend="nccl")


def test_breakdown_and_format():
    b = MemoryBreakdown(1, 2, 3, 4)
    assert (b.model_states, b.total) == (6, 10)
    assert "total" not in b.as_dict() and str(b).endswith("= 10 B")
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(3 * 1024**3) == "3 GiB"
