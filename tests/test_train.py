"""The training loop: learning, gradient accumulation, precision, clipping, exact resume, schedules and
the live plot's data. Tiny models on a tiny in-memory corpus (CPU, fp32 unless stated)."""

import contextlib
import copy
import types

import numpy as np
import pytest
import torch

import bigtrain_lab.train as train_module
from bigtrain_lab import seed_everything
from bigtrain_lab.data import CharCorpus
from bigtrain_lab.models import MLP, GPTConfig, TinyGPT
from bigtrain_lab.train import (
    TrainConfig,
    TrainResult,
    autocast_context,
    bare_train_loop,
    configure_adamw,
    corpus_batches,
    cosine_schedule,
    default_loss_fn,
    load_checkpoint,
    loss_curves,
    train,
    train_step,
    wsd_schedule,
)

TEXT = "".join(f"the cat sat on mat {i % 7}.\n" for i in range(300))
BLOCK = 16


@pytest.fixture(scope="module")
def corpus() -> CharCorpus:
    vocab = sorted(set(TEXT))
    ids = np.array([vocab.index(c) for c in TEXT], dtype=np.uint16)
    n_train = int(len(ids) * 0.9)
    return CharCorpus(train=ids[:n_train], val=ids[n_train:], vocab=vocab)


def tiny_gpt(vocab_size: int, seed: int = 0, dropout: float = 0.0) -> TinyGPT:
    torch.manual_seed(seed)
    return TinyGPT(GPTConfig(vocab_size=vocab_size, block_size=BLOCK, n_layer=2, n_head=2, n_embd=32,
                             dropout=dropout))


def test_loss_decreases_on_a_tiny_corpus(corpus):
    model = tiny_gpt(corpus.vocab_size)
    config = TrainConfig(steps=60, batch_size=8, lr=1e-2, eval_every=30, eval_steps=2, log_every=20)
    result = train(model, corpus_batches(corpus, BLOCK, 8, seed=0), config, progress=False)
    assert isinstance(result, TrainResult) and result.step == 60
    assert len(result.losses) == len(result.lrs) == len(result.grad_norms) == 60
    assert np.mean(result.losses[-10:]) < result.losses[0] - 1.0
    assert [e["step"] for e in result.evals] == [30, 60]
    assert result.final_val_loss < result.evals[0]["val_loss"] + 0.5
    assert result.tokens == 60 * 8 * BLOCK and result.tokens_per_second > 0
    assert "tokens/s" in str(result)


def accumulation_run(corpus, k, b, *, unscaled=False):
    """One SGD step over the same k*b sequences: as k micro-batches of b (k > 1) or one batch (k = 1)."""
    x, y = corpus.get_batch("train", k * b, BLOCK, generator=torch.Generator().manual_seed(5))
    calls = iter(range(k))

    def get_batch(split, step):
        i = next(calls)
        return x[i * b:(i + 1) * b], y[i * b:(i + 1) * b]

    model = tiny_gpt(corpus.vocab_size)
    mean_loss = default_loss_fn(model)

    def loss_fn(m, xb, yb):
        # unscaled: the classic mistake, undoing the loop's division by grad_accum_steps
        return mean_loss(m, xb, yb) * (k if unscaled else 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    config = TrainConfig(steps=1, batch_size=b, grad_accum_steps=k, grad_clip=0.0)
    result = train(model, get_batch, config, optimizer=optimizer, loss_fn=loss_fn, progress=False)
    return model, result


def max_param_diff(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_grad_accumulation_equals_one_big_batch_and_the_unscaled_loss_does_not(corpus):
    big, big_result = accumulation_run(corpus, k=1, b=12)
    accumulated, acc_result = accumulation_run(corpus, k=4, b=3)
    assert max_param_diff(big, accumulated) < 1e-6
    assert acc_result.losses[0] == pytest.approx(big_result.losses[0], abs=1e-6)
    assert acc_result.grad_norms[0] == pytest.approx(big_result.grad_norms[0], rel=1e-5)
    mistaken, mistaken_result = accumulation_run(corpus, k=4, b=3, unscaled=True)
    assert mistaken_result.grad_norms[0] == pytest.approx(4 * big_result.grad_norms[0], rel=1e-5)
    assert max_param_diff(big, mistaken) > 1e-3


def test_train_step_syncs_gradients_once_and_leaves_the_loss_on_the_device(corpus):
    """One step over 3 micro-batches: grad_sync(last) is asked for each, True only for the last; the
    returned loss is the mean of the micro-batch losses; the gradients are gone after the step."""
    model = tiny_gpt(corpus.vocab_size)
    before = copy.deepcopy(model)
    batches = [corpus.get_batch("train", 2, BLOCK, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    syncs = []

    def grad_sync(last):
        syncs.append(last)
        return contextlib.nullcontext()

    optimizer = configure_adamw(model, 1e-3, 0.1, (0.9, 0.95))
    params = list(model.parameters())
    loss, norm = train_step(model, batches, optimizer, default_loss_fn(model), params=params, grad_clip=1.0,
                            scaler=torch.amp.GradScaler("cpu", enabled=False),
                            autocast=autocast_context(torch.device("cpu"), "fp32"), grad_sync=grad_sync)
    assert syncs == [False, False, True]
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and norm.dim() == 0
    expected = torch.stack([before(x, y)[1] for x, y in batches]).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert all(p.grad is None for p in params) and max_param_diff(model, before) > 0


def test_configure_adamw_is_fused_and_decays_only_matrices(corpus):
    model = tiny_gpt(corpus.vocab_size)
    optimizer = configure_adamw(model, 1e-3, 0.1, (0.9, 0.95))
    decayed, plain = optimizer.param_groups
    assert optimizer.defaults["fused"] and decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() < 2 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_the_first_step_is_timed_apart_from_the_throughput(corpus, monkeypatch):
    """On a clock the test drives (no real timing, so a loaded machine cannot fail it): each step's batch
    takes 1 s and the first step 100 s more, as compilation would."""
    batches = corpus_batches(corpus, BLOCK, 4, seed=0)
    clock = [0.0]
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def slow_first_step(split, step):
        clock[0] += 1.0 + (100.0 if split == "train" and step == 0 else 0.0)
        return batches(split, step)

    result = train(tiny_gpt(corpus.vocab_size), slow_first_step, TrainConfig(steps=6, log_every=2), progress=False)
    per_step = result.tokens / 6
    assert result.warmup_seconds == 101.0 and result.wall_time_s == 106.0
    assert result.tokens_per_second == pytest.approx(per_step)  # five steps in 5 s, not 6 steps in 106 s
    monkeypatch.undo()
    one = train(tiny_gpt(corpus.vocab_size), batches, TrainConfig(steps=1), progress=False)
    assert np.isfinite(one.tokens_per_second) and one.tokens_per_second > 0  # a one-step run times its step


@pytest.mark.slow
def test_compiled_training_matches_eager(corpus):
    def run(compile_):
        config = TrainConfig(steps=4, batch_size=4, compile=compile_, eval_every=4, eval_steps=1)
        return train(tiny_gpt(corpus.vocab_size), corpus_batches(corpus, BLOCK, 4, seed=0), config, progress=False)

    eager, compiled = run(False), run(True)
    np.testing.assert_allclose(compiled.losses, eager.losses, rtol=1e-4)
    assert compiled.final_val_loss == pytest.approx(eager.final_val_loss, rel=1e-4)
    assert compiled.warmup_seconds > eager.warmup_seconds  # compilation is in the first step, not in tokens/s


def test_bf16_autocast_runs_on_cpu_and_fp16_needs_cuda(corpus):
    model = tiny_gpt(corpus.vocab_size)
    batches = corpus_batches(corpus, BLOCK, 4, seed=0)
    result = train(model, batches, TrainConfig(steps=3, precision="bf16", eval_every=3, eval_steps=1),
                   progress=False)
    assert all(np.isfinite(result.losses)) and np.isfinite(result.final_val_loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast keeps fp32 weights
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16.*CUDA"):
            train(model, batches, TrainConfig(steps=1, precision="fp16"), progress=False)


def test_clipping_reports_the_pre_clip_norm_of_clip_grad_norm_(corpus):
    x, y = corpus.get_batch("train", 6, BLOCK, generator=torch.Generator().manual_seed(2))
    model = tiny_gpt(corpus.vocab_size)
    reference = copy.deepcopy(model)
    config = TrainConfig(steps=1, grad_clip=0.05)
    result = train(model, lambda split, step: (x, y), config, progress=False,
                   optimizer=torch.optim.SGD(model.parameters(), lr=0.1))

    reference(x, y)[1].backward()
    params = list(reference.parameters())
    expected = torch.nn.utils.clip_grad_norm_(params, 0.05)
    torch.optim.SGD(params, lr=0.1).step()
    assert expected.item() > 0.05  # clipping was active
    assert result.grad_norms[0] == pytest.approx(expected.item(), rel=1e-6)
    assert max_param_diff(model, reference) < 1e-7


def test_resume_from_a_checkpoint_is_bit_identical(corpus, tmp_path):
    """N steps in one go == K steps, save, scrambled process state, resume to N (dropout on, so the RNG
    matters; gradient accumulation, a schedule and evaluations in both)."""
    N, K = 10, 4
    schedule = cosine_schedule(3e-3, 3e-4, warmup_steps=2, total_steps=N)

    def config(steps, **kw):
        return TrainConfig(steps=steps, batch_size=4, grad_accum_steps=2, eval_every=3, eval_steps=2,
                           log_every=3, seed=1, **kw)

    seed_everything(0)
    full_model = tiny_gpt(corpus.vocab_size, dropout=0.2)
    full = train(full_model, corpus_batches(corpus, BLOCK, 4, seed=0), config(N), schedule=schedule,
                 progress=False)

    path = tmp_path / "ckpt" / "run.pt"
    part_model = tiny_gpt(corpus.vocab_size, dropout=0.2)
    train(part_model, corpus_batches(corpus, BLOCK, 4, seed=0), config(K, checkpoint_path=path),
          schedule=schedule, progress=False)
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["run.pt"]  # no temp file left
    assert load_checkpoint(path)["step"] == K

    seed_everything(999)  # a "fresh process": other RNG states, another init, a data generator elsewhere
    resumed_model = tiny_gpt(corpus.vocab_size, seed=7, dropout=0.2)
    batches = corpus_batches(corpus, BLOCK, 4, seed=0)
    batches.generator.manual_seed(3)
    resumed = train(resumed_model, batches, config(N), schedule=schedule, progress=False, resume_from=path)

    assert resumed.step == N
    assert resumed.losses == full.losses  # exact equality, not approximate
    assert resumed.lrs == full.lrs and resumed.grad_norms == full.grad_norms
    for name, p in full_model.state_dict().items():
        assert torch.equal(p, resumed_model.state_dict()[name]), name
    # the extra evaluation at step K (end of the first part) moved no RNG
    assert [e for e in resumed.evals if e["step"] != K] == full.evals


def test_a_classifier_trains_with_cross_entropy_by_default():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(256, 8, generator=gen)
    y = (X[:, 0] + X[:, 1] > 0).long()
    torch.manual_seed(0)
    model = MLP(8, hidden=(16,), out_features=2)

    def get_batch(split, step):
        idx = torch.randint(256, (32,), generator=gen)
        return X[idx], y[idx]

    result = train(model, get_batch, TrainConfig(steps=40, lr=1e-2, weight_decay=0.0), progress=False)
    assert np.mean(result.losses[-5:]) < 0.5 * result.losses[0]
    assert result.tokens == 40 * 32  # samples, for a classifier


def test_bare_loop_trains_the_same_model(corpus):
    model = tiny_gpt(corpus.vocab_size)
    losses = bare_train_loop(model, corpus_batches(corpus, BLOCK, 8, seed=0), 20, lr=1e-2)
    assert len(losses) == 20 and losses[-1] < losses[0]


def test_schedules():
    cos = cosine_schedule(1.0, 0.1, warmup_steps=10, total_steps=110)
    assert cos(0) == pytest.approx(1 / 11) and cos(9) == pytest.approx(10 / 11) and cos(10) == 1.0
    assert cos(60) == pytest.approx(0.55) and cos(110) == cos(500) == 0.1
    wsd = wsd_schedule(1.0, 0.0, warmup_steps=0, total_steps=100, decay_fraction=0.2)
    assert wsd(0) == wsd(79) == 1.0 and wsd(90) == pytest.approx(0.5) and wsd(100) == 0.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(precision="fp8"), "precision"),
    (dict(grad_accum_steps=0), "grad_accum_steps"),
    (dict(lr=0), "lr"),
    (dict(checkpoint_every=5), "checkpoint_path"),
])
def test_bad_train_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_loss_curves_and_live_plot():
    result = TrainResult(losses=[3.0, 2.5, 2.0], evals=[{"step": 2, "val_loss": 2.6, "accuracy": 0.4}])
    curves = loss_curves(result)
    assert curves == {"train": ([1, 2, 3], [3.0, 2.5, 2.0]), "val_loss": ([2], [2.6])}
    from bigtrain_lab.widgets.training_viz import LiveCurves

    plot = LiveCurves(loss_curves, display=False)
    plot(result)
    assert list(plot.figure.data[0].y) == [3.0, 2.5, 2.0] and list(plot.figure.data[1].x) == [2]
