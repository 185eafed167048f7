"""The experiments of lesson 06 and ``bench/compression.py``, in one place so that both run the same code:
the digits models, the trade-off sweep (sparsity, bits, rank -> accuracy, size, latency), the summary
table of every method, and the TinyGPT runs (int8, LoRA vs full fine-tuning)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from bigtrain_lab.compress.digits import Digits, load_digits
from bigtrain_lab.compress.distillation import (
    UNLABELLED,
    agreement,
    distillation_loss_fn,
    kl_to,
    transfer_loss_fn,
    transfer_targets,
)
from bigtrain_lab.compress.lightweight import SeparableCNN
from bigtrain_lab.compress.lowrank import add_lora, factorize_linears, merge_lora
from bigtrain_lab.compress.measure import (
    count_parameters,
    gzipped_size,
    measure_latency,
    size_on_disk,
    sparsity,
)
from bigtrain_lab.compress.pruning import make_permanent, prune_unstructured, shrink_mlp
from bigtrain_lab.compress.quantization import (
    compile_frozen,
    int8_dynamic,
    int8_static,
    int8_weight_only,
    legacy_quantize_dynamic,
    prepare_qat,
    quantize_weights,
    strip_fake_quant,
)
from bigtrain_lab.fit import accuracy, fit_classifier
from bigtrain_lab.models import CNN, MLP, GPTConfig, TinyGPT
from bigtrain_lab.reproducibility import seed_everything


@dataclass
class Budget:
    """Training steps and timing repeats: ``Budget.full()`` for the bench, ``Budget.fast()`` for tests."""

    train_steps: int = 1200
    finetune_steps: int = 300
    latency_repeats: int = 50
    sparsities: tuple[float, ...] = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
    bits: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
    ranks: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256)
    gpt_pretrain_steps: int = 600
    gpt_finetune_steps: int = 300
    kd_teacher_steps: int = 400
    kd_student_steps: int = 600
    kd_temperatures: tuple[float, ...] = (2.0, 4.0)
    compile: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def full(cls) -> Budget:
        return cls()

    @classmethod
    def fast(cls) -> Budget:
        return cls(train_steps=300, finetune_steps=50, latency_repeats=10, sparsities=(0.0, 0.5, 0.9, 0.95),
                   bits=(2, 4, 8), ranks=(8, 32), gpt_pretrain_steps=80, gpt_finetune_steps=30,
                   kd_teacher_steps=150, kd_student_steps=400, kd_temperatures=(2.0,), compile=False)


TEACHER_HIDDEN = (512, 512)


def train_teacher(data: Digits, steps: int, *, seed: int = 0) -> MLP:
    """The digits MLP 64-512-512-10 every method starts from."""
    seed_everything(seed)
    model = MLP(64, TEACHER_HIDDEN, 10)
    fit_classifier(model, data.X_train, data.y_train, sampling="random", steps=steps, lr=2e-3, seed=seed)
    return model.eval()


def _finetune(model: nn.Module, data: Digits, steps: int, seed: int = 1) -> nn.Module:
    if steps:
        fit_classifier(model, data.X_train, data.y_train, sampling="random", steps=steps, lr=1e-3, seed=seed)
    return model.eval()


def _latency(model: nn.Module, data: Digits, batch: int, repeats: int) -> float:
    x = data.X_test[torch.arange(batch) % len(data.X_test)]
    return measure_latency(model, x, repeats=repeats, warmup=max(3, repeats // 5), threads=1).median_ms


def _weight_bytes(model: nn.Module, bits: int) -> int:
    """Storage of a b-bit per-channel weight format: b bits per weight, one fp32 scale per output channel,
    every other parameter (biases) in fp32."""
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            total += math.ceil(m.weight.numel() * bits / 8) + 4 * m.weight.shape[0]
            total += 0 if m.bias is None else 4 * m.bias.numel()
    return total


def sweep(teacher: nn.Module, data: Digits, budget: Budget, *, progress: bool = True) -> dict[str, Any]:
    """Accuracy, size and latency of the teacher under each knob: unstructured and structured sparsity
    (before / after fine-tuning), weight bits (per-channel round trip; size of that format) and SVD rank."""
    out: dict[str, Any] = {"dense": {
        "accuracy": accuracy(teacher, data.X_test, data.y_test), "size_bytes": size_on_disk(teacher),
        "gzip_bytes": gzipped_size(teacher), "params": count_parameters(teacher),
        "latency_ms_b64": _latency(teacher, data, 64, budget.latency_repeats)}}
    total = 2 * len(budget.sparsities) + len(budget.bits) + len(budget.ranks)
    bar = tqdm(total=total, desc="sweep", disable=not progress)
    rows: dict[str, list[dict[str, float]]] = {"unstructured": [], "structured": [], "bits": [], "rank": []}
    for s in budget.sparsities:
        pruned = prune_unstructured(copy.deepcopy(teacher), s, scope="global", skip_last=True)
        before = accuracy(pruned, data.X_test, data.y_test)
        after = accuracy(_finetune(pruned, data, budget.finetune_steps), data.X_test, data.y_test) if s else before
        make_permanent(pruned)
        rows["unstructured"].append({
            "value": s, "sparsity": sparsity(pruned), "accuracy": before, "accuracy_finetuned": after,
            "size_bytes": size_on_disk(pruned), "gzip_bytes": gzipped_size(pruned),
            "nonzero_params": count_parameters(pruned, nonzero=True),
            "latency_ms_b64": _latency(pruned, data, 64, budget.latency_repeats)})
        bar.update()
    for s in budget.sparsities:
        small = shrink_mlp(teacher, s)
        before = accuracy(small, data.X_test, data.y_test)
        after = accuracy(_finetune(small, data, budget.finetune_steps), data.X_test, data.y_test) if s else before
        rows["structured"].append({
            "value": s, "accuracy": before, "accuracy_finetuned": after, "size_bytes": size_on_disk(small),
            "params": count_parameters(small), "latency_ms_b64": _latency(small, data, 64, budget.latency_repeats)})
        bar.update()
    for b in budget.bits:
        q = quantize_weights(teacher, b)
        rows["bits"].append({"value": b, "accuracy": accuracy(q, data.X_test, data.y_test),
                             "size_bytes": _weight_bytes(teacher, b),
                             "latency_ms_b64": (_latency(int8_dynamic(teacher), data, 64, budget.latency_repeats)
                                                if b == 8 else float("nan"))})
        bar.update()
    for r in budget.ranks:
        low = factorize_linears(copy.deepcopy(teacher), r)
        before = accuracy(low, data.X_test, data.y_test)
        after = accuracy(_finetune(low, data, budget.finetune_steps), data.X_test, data.y_test)
        rows["rank"].append({"value": r, "accuracy": before, "accuracy_finetuned": after,
                             "size_bytes": size_on_disk(low), "params": count_parameters(low),
                             "latency_ms_b64": _latency(low, data, 64, budget.latency_repeats)})
        bar.update()
    bar.close()
    out.update(rows)
    return out


def measure_row(method: str, model: nn.Module, data: Digits, budget: Budget, *, params: int | None = None,
                note: str = "") -> dict[str, Any]:
    """One row of the summary table: test accuracy, size on disk, parameters (``params`` overrides the
    count, e.g. the fp32 count for a quantized model whose weights are packed), median latency at batch 1
    and 64 (one thread)."""
    return {
        "method": method,
        "accuracy": accuracy(model, data.X_test, data.y_test),
        "size_bytes": size_on_disk(model),
        "params": count_parameters(model) if params is None else params,
        "latency_ms_b1": _latency(model, data, 1, budget.latency_repeats),
        "latency_ms_b64": _latency(model, data, 64, budget.latency_repeats),
        "note": note,
    }


def summary_table(data: Digits, budget: Budget, *, teacher: nn.Module | None = None, progress: bool = True
                  ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every method on the digits models, measured the same way. Returns (rows, extra measurements)."""
    steps, ft = budget.train_steps, budget.finetune_steps
    bar = tqdm(total=12, desc="summary", disable=not progress)
    teacher = teacher if teacher is not None else train_teacher(data, steps)
    n = count_parameters(teacher)
    rows = [measure_row("MLP 64-512-512-10, fp32 (baseline)", teacher, data, budget)]
    bar.update()

    pruned = prune_unstructured(copy.deepcopy(teacher), 0.9, scope="global", skip_last=True)
    make_permanent(_finetune(pruned, data, ft))
    rows.append(measure_row("unstructured 90 % (global magnitude) + fine-tune", pruned, data, budget,
                     note=f"{count_parameters(pruned, nonzero=True)} non-zero; gzip {gzipped_size(pruned)} B"))
    bar.update()
    small = _finetune(shrink_mlp(teacher, 0.75), data, ft)
    rows.append(measure_row("structured: 75 % of hidden neurons removed + fine-tune", small, data, budget))
    bar.update()
    rows.append(measure_row("int8 dynamic (torchao)", int8_dynamic(teacher), data, budget, params=n))
    if budget.compile:  # torchao's CPU fast path: quantize_, then torch.compile with freezing
        rows.append(measure_row("int8 dynamic (torchao) + torch.compile (freezing)",
                                _compiled(int8_dynamic(teacher), _digit_batches(data))[0], data, budget, params=n))
        rows.append(measure_row("fp32 + torch.compile (freezing)",
                                _compiled(copy.deepcopy(teacher), _digit_batches(data))[0], data, budget))
    rows.append(measure_row("int8 weight-only (torchao)", int8_weight_only(teacher), data, budget, params=n))
    calib = [data.X_train[i:i + 128] for i in range(0, 512, 128)]
    rows.append(measure_row("int8 static, 512 calibration rows (torchao)", int8_static(teacher, calib), data, budget,
                     params=n))
    bar.update(3)
    qat = _finetune(prepare_qat(teacher, scheme="dynamic"), data, ft)
    rows.append(measure_row("QAT (per-token fake quant, as deployed) -> int8 dynamic (torchao)",
                            int8_dynamic(strip_fake_quant(qat)), data, budget, params=n))
    control = _finetune(copy.deepcopy(teacher), data, ft)  # the same fine-tuning without fake quantization
    rows.append(measure_row("fp32 fine-tuned as long as QAT -> int8 dynamic (torchao)", int8_dynamic(control), data,
                            budget, params=n))
    bar.update()
    rows.append(measure_row("int8 dynamic, torch.ao quantize_dynamic (DEPRECATED)", legacy_quantize_dynamic(teacher), data,
                     budget, params=n))
    bar.update()
    low = _finetune(factorize_linears(copy.deepcopy(teacher), 32), data, ft)
    rows.append(measure_row("SVD rank 32 on each Linear + fine-tune", low, data, budget))
    bar.update()

    extra: dict[str, Any] = {}
    for name, kd in (("student 64-32-10 alone", False), ("student 64-32-10 distilled (T=4, alpha=0.5)", True)):
        seed_everything(0)
        student = MLP(64, (32,), 10)
        loss_fn = distillation_loss_fn(teacher, temperature=4.0, alpha=0.5) if kd else None
        fit_classifier(student, data.X_train, data.y_train, sampling="random", steps=steps, lr=3e-3, loss_fn=loss_fn)
        X_eval = torch.cat([data.X_val, data.X_test])
        rows.append(measure_row(name, student, data, budget,
                         note=f"agrees with teacher {agreement(student, teacher, X_eval):.3f}; "
                              f"KL to teacher {kl_to(student, teacher, X_eval):.3f}"))
    bar.update()
    seed_everything(0)
    cnn = CNN()
    fit_classifier(cnn, data.X_train, data.y_train, sampling="random", steps=steps, lr=2e-3)
    rows.append(measure_row("CNN (bigtrain_lab.models.CNN)", cnn, data, budget))
    seed_everything(0)
    sep = SeparableCNN()
    fit_classifier(sep, data.X_train, data.y_train, sampling="random", steps=steps, lr=5e-3)
    rows.append(measure_row("depthwise-separable CNN", sep, data, budget))
    bar.update()
    bar.close()
    return rows, extra


KD_STUDENT_HIDDEN = (32,)


def _summarise(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation over seeds of each ``keys`` value, per method."""
    out: dict[str, dict[str, float]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        entry: dict[str, float] = {"seeds": len(mine)}
        for k in keys:
            v = np.array([r[k] for r in mine], dtype=float)
            entry[f"{k}_mean"] = float(v.mean())
            entry[f"{k}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out[method] = entry
    return out


def distillation_experiment(data: Digits, budget: Budget, *, n_labelled: int = 200,
                            temperatures: tuple[float, ...] | None = None, alpha: float = 0.5,
                            seeds: tuple[int, ...] = (0, 1, 2), progress: bool = True) -> dict[str, Any]:
    """Distillation as it is done in practice, when labels are scarce: per seed, ``n_labelled`` training rows
    keep their labels and the other training rows are an UNLABELLED transfer set. The teacher (MLP
    64-512-512-10) trains on the labelled rows; the student (MLP 64-32-10) trains either on the labelled rows
    alone (cross-entropy: ``labels_only``) or on all training rows with ``transfer_loss_fn`` (soft term on
    every row, hard term on the labelled ones: ``distilled_T<T>``). Test accuracy, agreement with the
    teacher and KL(teacher || student) on validation + test rows, per seed (``rows``) and as mean and
    standard deviation over seeds (``summary``; the teacher's own accuracy under ``teacher``). Temperatures:
    ``budget.kd_temperatures`` unless given."""
    temperatures = budget.kd_temperatures if temperatures is None else temperatures
    X_eval = torch.cat([data.X_val, data.X_test])
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(seeds) * (2 + len(temperatures)), desc="distillation", disable=not progress)
    for seed in seeds:
        order = torch.randperm(len(data.X_train), generator=torch.Generator().manual_seed(seed))
        labelled = order[:n_labelled]
        seed_everything(seed)
        teacher = MLP(64, TEACHER_HIDDEN, 10)
        fit_classifier(teacher, data.X_train[labelled], data.y_train[labelled], sampling="random",
                       steps=budget.kd_teacher_steps, lr=2e-3, seed=seed)
        teacher.eval()
        rows.append({"seed": seed, "method": "teacher", "accuracy": accuracy(teacher, data.X_test, data.y_test),
                     "agreement": 1.0, "kl": 0.0})
        bar.update()
        y_transfer = data.y_train.clone()
        y_transfer[order[n_labelled:]] = UNLABELLED  # there the student sees only the teacher's outputs
        targets = transfer_targets(teacher, data.X_train, y_transfer)
        runs: list[tuple[str, torch.Tensor, torch.Tensor, Any]] = [
            ("labels_only", data.X_train[labelled], data.y_train[labelled], None)]
        runs += [(f"distilled_T{t:g}", data.X_train, targets, transfer_loss_fn(temperature=t, alpha=alpha))
                 for t in temperatures]
        for method, X, y, loss_fn in runs:
            seed_everything(seed)
            student = MLP(64, KD_STUDENT_HIDDEN, 10)
            fit_classifier(student, X, y, sampling="random", steps=budget.kd_student_steps, lr=3e-3, seed=seed,
                           loss_fn=loss_fn)
            rows.append({"seed": seed, "method": method, "accuracy": accuracy(student, data.X_test, data.y_test),
                         "agreement": agreement(student, teacher, X_eval), "kl": kl_to(student, teacher, X_eval)})
            bar.update()
    bar.close()
    return {"config": {"n_labelled": n_labelled, "n_unlabelled": len(data.X_train) - n_labelled,
                       "temperatures": list(temperatures), "alpha": alpha, "seeds": list(seeds),
                       "teacher": f"MLP 64-{'-'.join(map(str, TEACHER_HIDDEN))}-10",
                       "student": f"MLP 64-{'-'.join(map(str, KD_STUDENT_HIDDEN))}-10",
                       "teacher_steps": budget.kd_teacher_steps, "student_steps": budget.kd_student_steps},
            "rows": rows, "summary": _summarise(rows, ("accuracy", "agreement", "kl"))}


def _compiled(model: nn.Module, inputs: Iterable[torch.Tensor]) -> tuple[nn.Module, float]:
    """``compile_frozen(model)``, compiled now (its first calls, one per input: the batch sizes it will be timed
    at) so that no timing includes compilation; and the seconds that took."""
    start = time.perf_counter()
    compiled = compile_frozen(model.eval())
    with torch.no_grad():
        for x in inputs:
            compiled(x)
    return compiled, time.perf_counter() - start


def _digit_batches(data: Digits) -> list[torch.Tensor]:
    """Test rows at the batch sizes ``measure_row`` times (1, 64) and evaluates (the whole test split)."""
    return [data.X_test[torch.arange(b) % len(data.X_test)] for b in (1, 64, len(data.X_test))]


def linear_heavy_latency(repeats: int = 50, *, batch_sizes: tuple[int, ...] = (1, 64),
                         compile: bool = False) -> dict[str, Any]:
    """fp32 vs int8 on a Linear-heavy MLP 512-2048-2048-10 (random weights and inputs: latency and size
    only), one thread. ``compile``: also fp32 and int8 dynamic after ``torch.compile`` with freezing
    (torchao's CPU fast path), each compiled (and its compile time recorded) before timing."""
    seed_everything(0)
    model = MLP(512, (2048, 2048), 10).eval()
    variants = {"fp32": model, "int8 dynamic (torchao)": int8_dynamic(model),
                "int8 weight-only (torchao)": int8_weight_only(model),
                "int8 dynamic (torch.ao, deprecated)": legacy_quantize_dynamic(model)}
    compile_seconds: dict[str, float] = {}
    if compile:
        for name, base in (("fp32 + torch.compile (freezing)", copy.deepcopy(model)),
                           ("int8 dynamic (torchao) + torch.compile (freezing)", int8_dynamic(model))):
            variants[name], compile_seconds[name] = _compiled(base, [torch.randn(b, 512) for b in batch_sizes])
    out: dict[str, Any] = {}
    for name, m in variants.items():
        entry = {"size_bytes": size_on_disk(m)}
        for b in batch_sizes:
            x = torch.randn(b, 512)
            entry[f"latency_ms_b{b}"] = measure_latency(m, x, repeats=repeats, warmup=10, threads=1).median_ms
        if name in compile_seconds:
            entry["compile_seconds"] = compile_seconds[name]
        out[name] = entry
    return out


# ---- TinyGPT: int8 and LoRA --------------------------------------------------------------------------

GPT_SHAPE = dict(n_layer=2, n_head=4, n_embd=64, block_size=32, dropout=0.0)


def _corpora(max_chars: int = 600_000):
    """Two disjoint pieces of the stdlib corpus (different files) with one vocabulary: A to pretrain on,
    B to fine-tune on (its own train / val split)."""
    from bigtrain_lab.data import CharCorpus, load_text_corpus

    corpus = load_text_corpus(max_chars=max_chars, val_fraction=0.0)
    ids = corpus.train
    half = len(ids) // 2
    a, b = ids[:half], ids[half:]
    cut_a, cut_b = int(len(a) * 0.9), int(len(b) * 0.9)
    vocab = list(corpus.vocab)
    return CharCorpus(a[:cut_a], a[cut_a:], vocab), CharCorpus(b[:cut_b], b[cut_b:], vocab)


@torch.no_grad()
def _val_loss(model: nn.Module, corpus, n_batches: int = 8) -> float:
    model.eval()
    losses = []
    for i in range(n_batches):
        x, y = corpus.get_batch("val", 32, GPT_SHAPE["block_size"], generator=torch.Generator().manual_seed(i))
        losses.append(float(model(x, y)[1]))
    return float(np.mean(losses))


def tinygpt_experiments(budget: Budget, *, lora_rank: int = 8, lora_alpha: float = 16.0,
                        progress: bool = True) -> dict[str, Any]:
    """Pretrain TinyGPT on corpus A; then (1) int8 dynamic quantization: val loss, size, latency;
    (2) fine-tune on corpus B fully vs with LoRA adapters on c_attn and c_fc: trainable parameters and
    val loss on B."""
    from bigtrain_lab.train import TrainConfig, corpus_batches, train

    corpus_a, corpus_b = _corpora()
    seed_everything(0)
    model = TinyGPT(GPTConfig(vocab_size=corpus_a.vocab_size, **GPT_SHAPE))
    bs = GPT_SHAPE["block_size"]
    train(model, corpus_batches(corpus_a, bs, 16, seed=0), TrainConfig(steps=budget.gpt_pretrain_steps, lr=2e-3,
          batch_size=16, log_every=10), progress=progress)
    out: dict[str, Any] = {"shape": dict(GPT_SHAPE), "pretrain_steps": budget.gpt_pretrain_steps,
                           "finetune_steps": budget.gpt_finetune_steps}
    x = corpus_a.get_batch("val", 1, bs, generator=torch.Generator().manual_seed(0))[0]
    x8 = corpus_a.get_batch("val", 8, bs, generator=torch.Generator().manual_seed(0))[0]

    def forward_only(m):
        return lambda idx: m(idx)[0]

    q = int8_dynamic(model)
    reps = budget.latency_repeats
    out["int8"] = {name: {"val_loss_A": _val_loss(m, corpus_a), "size_bytes": size_on_disk(m),
                          "latency_ms_b1": measure_latency(forward_only(m), x, repeats=reps, warmup=3).median_ms,
                          "latency_ms_b8": measure_latency(forward_only(m), x8, repeats=reps, warmup=3).median_ms}
                   for name, m in (("fp32", model.eval()), ("int8 dynamic (torchao)", q))}

    out["before_finetune_val_loss_B"] = _val_loss(model, corpus_b)
    ft_config = TrainConfig(steps=budget.gpt_finetune_steps, lr=1e-3, batch_size=16, log_every=10, weight_decay=0.0)
    full = copy.deepcopy(model)
    train(full, corpus_batches(corpus_b, bs, 16, seed=1), ft_config, progress=progress)
    lora = add_lora(copy.deepcopy(model), lora_rank, lora_alpha)
    trainable = count_parameters(lora, trainable_only=True)
    lora_config = TrainConfig(steps=budget.gpt_finetune_steps, lr=5e-3, batch_size=16, log_every=10,
                              weight_decay=0.0)
    train(lora, corpus_batches(corpus_b, bs, 16, seed=1), lora_config, progress=progress)
    lora_loss = _val_loss(lora, corpus_b)
    merge_lora(lora)
    out["finetune"] = {
        "full": {"trainable_params": count_parameters(full), "val_loss_B": _val_loss(full, corpus_b)},
        f"LoRA r={lora_rank}, alpha={lora_alpha:g} (c_attn, c_fc)": {
            "trainable_params": trainable, "val_loss_B": lora_loss,
            "val_loss_B_after_merge": _val_loss(lora, corpus_b)},
    }
    return out


def run_all(budget: Budget, *, progress: bool = True) -> dict[str, Any]:
    """Everything ``bench/compression.py`` saves."""
    torch.set_num_threads(1)
    data = load_digits()
    teacher = train_teacher(data, budget.train_steps)
    rows, _ = summary_table(data, budget, teacher=teacher, progress=progress)
    return {
        "summary": rows,
        "sweep": sweep(teacher, data, budget, progress=progress),
        "distillation": distillation_experiment(data, budget, progress=progress),
        "linear_heavy": linear_heavy_latency(budget.latency_repeats, compile=budget.compile),
        "tinygpt": tinygpt_experiments(budget, progress=progress),
    }
