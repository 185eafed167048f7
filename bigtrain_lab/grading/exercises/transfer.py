"""Exercises of the transfer-learning topic (lesson 10).

- ``transfer.freeze_for_feature_extraction(model, trainable)``: checked on fresh random architectures
  (:class:`RandomNet`, built from a seed in the grader and, as a ``case_arg``, again in a learner's kernel):
  after the candidate's call a runner puts the net in train mode, runs one forward pass and one SGD step on
  the parameters that require gradients (:meth:`RandomNet.grading_step`) and the grader compares with the
  reference (:func:`bigtrain_lab.transfer.freezing.freeze_for_feature_extraction`): exactly the named
  parts require gradients, the returned groups hold exactly those parameters (matched by value), the
  train-mode output is the reference's (frozen BatchNorm layers normalize with their running statistics),
  and after the step every parameter and buffer equals the reference's (frozen BatchNorm statistics fixed,
  trainable ones updated). The net reaches the runner in a kernel through ``fn.__get__(net)``: the bound
  method's ``__self__`` is the kernel's own net, so the runner's probes act on what the candidate froze.
- ``transfer.fine_tune_classifier(pretrained, X_train, y_train, *, num_classes, seed)``: graded by OUTCOME,
  not by code. ``pretrained()`` returns a fresh ``pretrained_cnn("digits_0_4", fast=True)`` (a CNN trained on
  the digits 0-4); the data is ``target_task(seed, per_class)`` (digits 5-9 relabelled 0-4). The runner
  puts the returned model in eval mode and sends it only the held-out IMAGES (target_task's fixed test set,
  400 images disjoint from every training draw); it gets logits back as data and the grader scores them
  against labels that never leave the grader. A case passes when the accuracy reaches :data:`BARS`
  (per labels per class) and the returned network still holds the pretrained convolution weights (each
  conv weight of the backbone has a tensor of its shape in the model with cosine similarity >= 0.5:
  fine-tuning moves them a little, a network trained from scratch has cosine near 0). On this task a CNN
  trained from scratch is about as accurate as a fine-tuned one (8x8 digits are easy), so the accuracy
  alone could not tell that the backbone was used; the weight test does. Measured on one CPU thread with the
  reference (:func:`fine_tune_classifier`) over seeds 0-19: accuracy min / mean 0.763 / 0.867 at 5 labels per
  class, 0.871 / 0.916 at 10, 0.891 / 0.924 at 20, about 0.1 s per training. Bars: 0.65 (5 per class),
  0.78 (10), 0.80 (20): 0.09 or more below the reference's worst seed. Returning the
  backbone untouched scores about chance, a constant prediction exactly 0.2, the linear probe alone
  (backbone frozen throughout, 150 steps) about 0.66 / 0.73 / 0.75 on average (6 seeds). Time limit 30 s per
  case.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.grading import probe
from bigtrain_lab.grading.registry import Case, Exercise, register
from bigtrain_lab.grading.sandbox import describe
from bigtrain_lab.transfer.freezing import freeze_for_feature_extraction

# ---- transfer.freeze_for_feature_extraction ------------------------------------------------------


class RandomNet(nn.Module):
    """A small random conv net (float64) built from ``seed``: ``stem`` (conv, BN), ``blocks.i`` (conv, BN,
    ReLU), ``head`` (Linear, optional BatchNorm1d, ReLU, Linear) and ``head_aux`` (a Linear whose name starts
    like ``head``'s, added to the output). Parameters and BatchNorm statistics are random (running statistics
    far from a batch's), so a BatchNorm layer in train mode visibly differs from one in eval mode."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed
        rng = np.random.default_rng(seed)
        c = [int(v) for v in rng.integers(2, 6, size=1 + int(rng.integers(1, 4)))]
        hidden, classes = int(rng.integers(3, 7)), int(rng.integers(2, 5))
        with torch.random.fork_rng():
            self.stem = nn.Sequential(nn.Conv2d(1, c[0], 3, padding=1), nn.BatchNorm2d(c[0]), nn.ReLU())
            self.blocks = nn.Sequential(*(nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU())
                                          for a, b in zip(c[:-1], c[1:], strict=True)))
            head_bn = [nn.BatchNorm1d(hidden)] if rng.uniform() < 0.7 else []
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(c[-1] * 4, hidden), *head_bn, nn.ReLU(),
                                      nn.Linear(hidden, classes))
            self.head_aux = nn.Linear(c[-1] * 4, classes)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.double()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, tensor in self.state_dict().items():
                if name.endswith("num_batches_tracked"):
                    continue
                noise = torch.randn(tensor.shape, generator=g, dtype=tensor.dtype)
                if name.endswith("running_var"):
                    tensor.copy_(0.5 + noise.abs())
                elif name.endswith("running_mean"):
                    tensor.copy_(noise)
                else:
                    tensor.copy_(0.5 * noise + (1.0 if self._bn_weight(name) else 0.0))

    def _bn_weight(self, name: str) -> bool:
        module = self.get_submodule(name.rsplit(".", 1)[0])
        return isinstance(module, nn.modules.batchnorm._BatchNorm) and name.endswith("weight")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.pool(self.blocks(self.stem(x)))
        return self.head(z) + self.head_aux(z.flatten(1))

    def rebuilt(self) -> RandomNet:
        """A fresh net equal to a new ``RandomNet(seed)`` (what this one was before anything changed it)."""
        return RandomNet(self.seed)

    def __deepcopy__(self, memo: dict) -> RandomNet:
        return self  # sent to a kernel by reference; the runner rebuilds it where it needs a fresh one

    def __repr__(self) -> str:
        return f"RandomNet(seed={self.seed}) with parameters {[n for n, _ in self.named_parameters()]}"

    def grading_step(self, x: torch.Tensor, lr: float = 0.1) -> dict:
        """``model.train()``, one forward pass and one SGD step on the parameters that require gradients;
        returns the state before and after, the names that require gradients and the train-mode output."""
        before = {k: v.detach().clone() for k, v in self.state_dict().items()}
        trainable = [n for n, p in self.named_parameters() if p.requires_grad]
        self.train()
        out = self(x)
        params = [p for p in self.parameters() if p.requires_grad]
        if params and out.requires_grad:
            grads = torch.autograd.grad(out.square().mean(), params, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    if g is not None:
                        p.sub_(lr * g)
        after = {k: v.detach().clone() for k, v in self.state_dict().items()}
        return {"trainable": trainable, "before": before, "after": after, "out": out.detach()}


@dataclass(frozen=True)
class Frozen:
    """What the runner saw: the names that require gradients, the names the returned groups hold, the
    train-mode output and the state after one step; or ``problem``."""

    problem: str = ""
    trainable: tuple = ()
    groups: tuple = ()
    out: Any = None
    after: Any = None

    def __repr__(self) -> str:
        return self.problem or f"trainable {list(self.trainable)}; groups hold {list(self.groups)}"


def _group_tensors(groups: Any) -> list | str:
    """The tensors of an optimizer's param groups (a list of dicts with "params", or a list of tensors)."""
    if isinstance(groups, torch.Tensor) or not isinstance(groups, list | tuple):
        return f"return a list of param groups [{{'params': [...]}}], got {describe(groups, 80)}"
    tensors = []
    for group in groups:
        if isinstance(group, torch.Tensor):
            tensors.append(group)
            continue
        if not isinstance(group, dict) or "params" not in group:
            return f"each param group is a dict with a 'params' list, got {describe(group, 80)}"
        params = group["params"]
        params = [params] if isinstance(params, torch.Tensor) else params
        if not isinstance(params, list | tuple) or not all(isinstance(p, torch.Tensor) for p in params):
            return f"a group's 'params' must be a list of parameters, got {describe(params, 80)}"
        tensors += list(params)
    return tensors


def _match(tensors: list, before: dict) -> list | str:
    """The parameter name of each returned tensor, found by value among the net's parameters."""
    names = []
    for t in tensors:
        found = [k for k, v in before.items() if v.shape == t.shape and v.dtype == t.dtype
                 and bool(torch.equal(v, t.detach())) and not k.endswith(("running_mean", "running_var"))]
        if not found:
            return f"the groups hold a tensor of shape {tuple(t.shape)} that is none of the model's parameters"
        names.append(found[0])
    if len(set(names)) != len(names):
        return f"a parameter appears twice in the groups ({sorted({n for n in names if names.count(n) > 1})})"
    return names


def _is_remote(obj: Any) -> bool:
    return getattr(type(obj), "__bigtrain_remote__", False) is True


def run_freeze(fn: Any, net: RandomNet, trainable: Any, *, x: torch.Tensor) -> Frozen:
    """Freeze a fresh net with ``fn(net, trainable)``, then take one train-mode step on it and report."""
    if _is_remote(fn):
        # in a kernel: call the candidate as a method bound to the kernel's net, then hold that net
        try:
            bound = probe.call_method(fn, "__get__", net)
        except AttributeError:
            return Frozen("grade a plain function (def freeze_for_feature_extraction(model, trainable): ...)")
        groups = probe.call_method(bound, "__call__", trainable)
        net = probe.call_method(bound, "__getattribute__", "__self__")
    else:
        net = net.rebuilt()
        groups = fn(net, trainable)
    tensors = _group_tensors(groups)
    if isinstance(tensors, str):
        return Frozen(tensors)
    tensors = [t.detach().clone() for t in tensors]  # in-process they are the net's own: the step changes them
    step = probe.call_method(net, "grading_step", x)
    names = _match(tensors, step["before"])
    if isinstance(names, str):
        return Frozen(names)
    return Frozen("", tuple(sorted(step["trainable"])), tuple(sorted(names)), step["out"], step["after"])


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=1e-9, atol=1e-12))


def _frozen_compare(got: Any, expected: Frozen) -> str | None:
    if not isinstance(got, Frozen):
        return f"unexpected result {describe(got, 80)}"
    if got.problem:
        return got.problem
    if got.trainable != expected.trainable:
        extra = sorted(set(got.trainable) - set(expected.trainable))
        missing = sorted(set(expected.trainable) - set(got.trainable))
        return (f"the parameters that require gradients are wrong: should be frozen {extra}, should train "
                f"{missing}")
    if got.groups != expected.groups:
        extra = sorted(set(got.groups) - set(expected.groups))
        missing = sorted(set(expected.groups) - set(got.groups))
        return f"the param groups should hold exactly the trainable parameters: extra {extra}, missing {missing}"
    for key, exp in expected.after.items():
        if "running" in key or "num_batches" in key:
            value = got.after.get(key)
            if value is None or not _close(value, exp):
                layer = key.rsplit(".", 1)[0]
                return (f"after model.train() and a forward pass, BatchNorm buffer {key!r} is "
                        f"{describe(value, 60)}, expected {describe(exp, 60)}: a BatchNorm layer of a frozen part "
                        f"must keep its running statistics (hold {layer!r} in eval mode, even after "
                        "model.train()); one of a trainable part updates them")
    if not _close(got.out, expected.out):
        return ("in train mode the network's output differs from the reference's: the BatchNorm layers of the "
                "frozen parts must normalize with their running statistics (eval mode), not the batch's")
    for key, exp in expected.after.items():
        value = got.after.get(key)
        if value is None or not _close(value, exp):
            return f"after one SGD step {key!r} differs from the reference's"
    return None


def _freeze_cases(rng: np.random.Generator) -> list[Case]:
    def case(label: str, seed: int, trainable: Any, **kw: Any) -> Case:
        x = torch.tensor(rng.normal(0, 1, (6, 1, 8, 8)))
        return Case(label, (RandomNet(seed), trainable), {"x": x}, **kw)

    s = [int(v) for v in rng.integers(2**31, size=12)]
    cases = [
        case("only the head trains (trainable='head'); head_aux is a different module", s[0], "head"),
        case("the head given as a list", s[1], ["head"]),
        case("the head and the last block", s[2], ["blocks.0", "head"]),
        case("only the final Linear of the head (head.<last>)", s[3], "__last__"),
        case("the stem trains, everything after it is frozen (BatchNorm of the blocks held)", s[4], "stem"),
        case("head and head_aux", s[5], ["head", "head_aux"]),
        case("a single parameter (head_aux.bias)", s[6], "head_aux.bias"),
        case("every block (the prefix 'blocks' covers blocks.0, blocks.1 ...)", s[7], "blocks"),
        case("nothing trains: an empty list, no groups' parameters, every BatchNorm held", s[8], []),
        case("a name that matches no parameter: ValueError", s[9], "classifier", raises=ValueError),
        case("'hea' is a prefix of a name, not a module: ValueError", s[10], "hea", raises=ValueError),
    ]
    # "__last__": the head's last layer index differs with the architecture
    fixed = []
    for c in cases:
        if c.args[1] == "__last__":
            net = c.args[0]
            last = f"head.{len(net.head) - 1}"
            c = Case(c.label.replace("head.<last>", last), (net, last), c.kwargs)
        fixed.append(c)
    modules = sorted({n.rsplit(".", 1)[0] for n, _ in RandomNet(s[11]).named_parameters()})
    chosen = sorted(str(m) for m in rng.choice(modules, size=int(rng.integers(1, 3)), replace=False))
    fixed.append(case(f"random: {chosen} train", s[11], chosen))
    return fixed


register(Exercise(
    id="transfer.freeze_for_feature_extraction",
    reference=freeze_for_feature_extraction,
    make_cases=_freeze_cases,
    compare=_frozen_compare,
    run=run_freeze,
    hint="names = [trainable] if it is a str, else list(trainable). A parameter name n is covered by t when n == t "
         "or n.startswith(t + '.') (not just startswith(t): 'head' must not cover 'head_aux'); ValueError for a "
         "t that covers no parameter. p.requires_grad_(covered) for every parameter. Then every BatchNorm "
         "module (isinstance(m, nn.modules.batchnorm._BatchNorm)) whose module name is not covered must stay "
         "in eval mode even after model.train(): m.eval() and m.register_forward_pre_hook(lambda mod, args: "
         "setattr(mod, 'training', False)). Return [{'params': [the covered parameters]}].",
    section="feature-extraction",
))


# ---- transfer.fine_tune_classifier ---------------------------------------------------------------

#: Accuracy a case must reach on the held-out images, per labelled images per class (see the docstring).
BARS = {5: 0.65, 10: 0.78, 20: 0.80}
#: Each conv weight of the backbone must have a tensor of its shape with at least this cosine similarity.
MIN_COSINE = 0.5


class Pretrained:
    """``pretrained()`` handed to the candidate: each call returns a fresh pretrained backbone."""

    recipe = "digits_0_4"

    def __call__(self) -> nn.Module:
        from bigtrain_lab.transfer import pretrained_cnn

        return pretrained_cnn(self.recipe, fast=True)

    def __deepcopy__(self, memo: dict) -> Pretrained:
        return self  # stateless: the checker's copies of the inputs may share it

    def __repr__(self) -> str:
        return f"pretrained = lambda: pretrained_cnn({self.recipe!r}, fast=True)"


class HeldOut:
    """The held-out images and their labels; the runner sends only the images to the candidate's model."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.X, self.y = X, y

    def __deepcopy__(self, memo: dict) -> HeldOut:
        return self

    def __repr__(self) -> str:
        return f"{len(self.y)} held-out images of target_task (their labels stay with the grader)"


@dataclass(frozen=True)
class Tuned:
    """The outcome of one case: held-out accuracy, the bar, the weakest cosine to the backbone's convs."""

    problem: str = ""
    accuracy: float = math.nan
    bar: float = math.nan
    cosine: float = math.nan

    def __repr__(self) -> str:
        return self.problem or (f"held-out accuracy {self.accuracy:.3f} (bar {self.bar:.2f}), pretrained conv "
                                f"weights kept (cosine >= {self.cosine:.2f})")


def _weakest_cosine(state: dict, backbone: nn.Module) -> float:
    """For each conv weight of the backbone the best cosine similarity with a same-shape tensor of
    ``state``; the smallest of those (-1 when a conv weight has no tensor of its shape)."""
    worst = 1.0
    for w in backbone.state_dict().values():
        if w.dim() != 4:
            continue
        same = [v for v in state.values() if isinstance(v, torch.Tensor) and v.shape == w.shape]
        best = max((float(F.cosine_similarity(v.double().flatten(), w.double().flatten(), dim=0)) for v in same),
                   default=-1.0)
        worst = min(worst, best)
    return worst


_REFERENCE_OUTCOMES: dict[tuple, Tuned] = {}


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest() + str(t.dtype)


def run_fine_tune(fn: Any, pretrained: Pretrained, X_train: torch.Tensor, y_train: torch.Tensor, *,
                  num_classes: int, seed: int, held_out: HeldOut) -> Tuned:
    """Train with ``fn``, score the returned model on the held-out images (labels kept here)."""
    key = (seed, num_classes, _digest(X_train), _digest(y_train))
    if fn is fine_tune_classifier and key in _REFERENCE_OUTCOMES:
        return _REFERENCE_OUTCOMES[key]  # the reference's outcome on a case is computed once per process
    model = fn(pretrained, X_train, y_train, num_classes=num_classes, seed=seed)
    facts = probe.module_facts(model)
    if not facts["is_module"]:
        return Tuned(f"return the trained nn.Module, got {facts['type']}")
    probe.call_method(model, "eval")
    logits = probe.forward(model, held_out.X)
    n = len(held_out.y)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (n, num_classes):
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        return Tuned(f"model(X) for {n} images should give logits of shape ({n}, {num_classes}), got {got}")
    accuracy = float((logits.argmax(dim=1) == held_out.y).double().mean())
    bar = BARS[len(y_train) // num_classes]
    outcome = Tuned("", accuracy, bar, _weakest_cosine(facts["state"], pretrained()))
    if fn is fine_tune_classifier:
        _REFERENCE_OUTCOMES[key] = outcome
    return outcome


def _tuned_compare(got: Any, expected: Tuned) -> str | None:  # noqa: ARG001 - judged against the bar
    if not isinstance(got, Tuned):
        return f"unexpected result {describe(got, 80)}"
    if got.problem:
        return got.problem
    if not got.accuracy >= got.bar:
        return (f"held-out accuracy {got.accuracy:.3f} is below the bar of {got.bar:.2f} (the reference reaches "
                f"{expected.accuracy:.3f} on this case): replace head[-1] with a new Linear(64, num_classes), "
                "train it, then fine-tune everything at a small learning rate")
    if not got.cosine >= MIN_COSINE:
        return (f"the returned model does not hold the pretrained convolution weights (cosine similarity "
                f"{got.cosine:.2f} < {MIN_COSINE}): start from pretrained(), do not train a new network from "
                "scratch")
    return None


def _check_data(X_train: torch.Tensor, y_train: torch.Tensor, num_classes: int) -> None:
    if y_train.is_floating_point():
        raise ValueError("y_train must hold integer class indices (float targets are read as probabilities)")
    if len(X_train) == 0 or len(X_train) != len(y_train):
        raise ValueError(f"X_train and y_train must be non-empty and of equal length, got {len(X_train)} and "
                         f"{len(y_train)}")
    if int(y_train.min()) < 0 or int(y_train.max()) >= num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got {y_train.min()}..{y_train.max()}")


def _train(model: nn.Module, groups: list[dict], X: torch.Tensor, y: torch.Tensor, steps: int, lr: float,
           g: torch.Generator) -> None:
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(X), generator=g)[:32]
        loss = F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def fine_tune_classifier(pretrained: Any, X_train: torch.Tensor, y_train: torch.Tensor, *, num_classes: int,
                         seed: int) -> nn.Module:
    """The reference: a new ``Linear(64, num_classes)`` as ``head[-1]``, 15 AdamW steps on the head alone
    (lr 1e-2, the backbone frozen, BatchNorm held), then 30 steps on everything at lr 3e-3; eval mode."""
    _check_data(X_train, y_train, num_classes)
    torch.manual_seed(seed)
    model = pretrained()
    model.head[-1] = nn.Linear(model.head[-1].in_features, num_classes)
    g = torch.Generator().manual_seed(seed)
    _train(model, freeze_for_feature_extraction(model, f"head.{len(model.head) - 1}"), X_train, y_train, 15,
           1e-2, g)
    _train(model, freeze_for_feature_extraction(model, ""), X_train, y_train, 30, 3e-3, g)
    return model.eval()


@functools.lru_cache(maxsize=16)
def _task(seed: int, per_class: int) -> tuple:
    from bigtrain_lab.transfer import target_task

    return target_task(seed, per_class)


def _fine_tune_cases(rng: np.random.Generator) -> list[Case]:
    pretrained = Pretrained()

    def case(label: str, per_class: int, *, bad: str = "") -> Case:
        seed = int(rng.integers(10_000))
        X, y, X_test, y_test = (t.clone() for t in _task(seed, per_class))
        raises = None
        if bad == "length":
            y, raises = y[:-1], ValueError
        elif bad == "label":
            y, raises = y.clone(), ValueError
            y[0] = 5
        elif bad == "negative":
            y, raises = y.clone(), ValueError
            y[-1] = -1
        elif bad == "float":
            y, raises = y.double(), ValueError
        elif bad == "empty":
            X, y, raises = X[:0], y[:0], ValueError
        return Case(label, (pretrained, X, y), {"num_classes": 5, "seed": seed,
                                                "held_out": HeldOut(X_test, y_test)}, raises=raises)

    cases = [
        case("10 labelled images per class", 10),
        case("10 per class, another draw", 10),
        case("20 labelled images per class", 20),
        case("20 per class, another draw", 20),
        case("5 labelled images per class (25 images)", 5),
        case("X_train and y_train of different lengths: ValueError", 5, bad="length"),
        case("a label 5 with num_classes = 5: ValueError", 5, bad="label"),
        case("a label -1: ValueError", 5, bad="negative"),
        case("float labels (cross_entropy would read them as probabilities): ValueError", 5, bad="float"),
        case("no training images: ValueError", 5, bad="empty"),
    ]
    return cases


register(Exercise(
    id="transfer.fine_tune_classifier",
    reference=fine_tune_classifier,
    make_cases=_fine_tune_cases,
    compare=_tuned_compare,
    run=run_fine_tune,
    hint="ValueError for empty or mismatched X_train / y_train, float labels or a label outside "
         "0..num_classes-1. torch."
         "manual_seed(seed); model = pretrained() (a fresh pretrained CNN); model.head[-1] = nn.Linear(64, "
         "num_classes). Train the new head alone (freeze the rest: requires_grad_(False), BatchNorm in eval) "
         "for ~15 AdamW steps at lr 1e-2 on random batches of 32, then unfreeze everything and fine-tune ~30 "
         "steps at lr 3e-3. Return the model. Training a new CNN from scratch does not count: the grader "
         "checks that the pretrained convolutions are still there.",
    section="fine-tuning",
    time_limit=30.0,
))

__all__ = ["BARS", "HeldOut", "Pretrained", "RandomNet", "fine_tune_classifier", "run_fine_tune", "run_freeze"]
