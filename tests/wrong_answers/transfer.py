"""Plausible WRONG implementations of the ``transfer.*`` exercises (each must be rejected by ``check``), and
several different CORRECT ones (each must be accepted)."""

import types

import torch
import torch.nn as nn
import torch.nn.functional as F

from bigtrain_lab.models import CNN

# ---- transfer.freeze_for_feature_extraction ---------------------------------------------------------


def _names(trainable):
    return [trainable] if isinstance(trainable, str) else list(trainable)


def _covered(name, names):
    return any(name == t or name.startswith(t + ".") for t in names)


def _check_names(model, names):
    params = [n for n, _ in model.named_parameters()]
    for t in names:
        if not any(_covered(p, [t]) for p in params):
            raise ValueError(f"{t!r} matches no parameter")


def _set_grads(model, names):
    kept = []
    for n, p in model.named_parameters():
        p.requires_grad_(_covered(n, names))
        if p.requires_grad:
            kept.append(p)
    return kept


def _frozen_bns(model, names):
    return [m for n, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and not _covered(n, names)]


def freeze_forgets_batchnorm(model, trainable):
    # requires_grad_(False) alone: the frozen BatchNorm layers still update their statistics in train mode
    names = _names(trainable)
    _check_names(model, names)
    return [{"params": _set_grads(model, names)}]


def freeze_plain_startswith(model, trainable):
    # name.startswith("head") also covers "head_aux"
    names = _names(trainable)
    _check_names(model, names)
    kept = []
    for n, p in model.named_parameters():
        p.requires_grad_(any(n.startswith(t) for t in names))
        if p.requires_grad:
            kept.append(p)
    for m in _frozen_bns(model, names):
        m.eval()
        m.register_forward_pre_hook(lambda mod, args: setattr(mod, "training", False))
    return [{"params": kept}]


def freeze_all_params_to_optimizer(model, trainable):
    # freezes right, but hands the optimizer every parameter
    names = _names(trainable)
    _check_names(model, names)
    _set_grads(model, names)
    for m in _frozen_bns(model, names):
        m.eval()
        m.register_forward_pre_hook(lambda mod, args: setattr(mod, "training", False))
    return [{"params": list(model.parameters())}]


def freeze_eval_once(model, trainable):
    # puts the frozen BatchNorm layers in eval mode once: the training loop's model.train() undoes it
    names = _names(trainable)
    _check_names(model, names)
    kept = _set_grads(model, names)
    for m in _frozen_bns(model, names):
        m.eval()
    return [{"params": kept}]


def freeze_momentum_zero(model, trainable):
    # momentum = 0 keeps running_mean / running_var, but train mode still normalizes with the batch's
    # statistics (and counts num_batches_tracked)
    names = _names(trainable)
    _check_names(model, names)
    kept = _set_grads(model, names)
    for m in _frozen_bns(model, names):
        m.momentum = 0.0
    return [{"params": kept}]


def freeze_whole_model_eval(model, trainable):
    # every BatchNorm held, the trainable ones too (they should keep learning their statistics)
    names = _names(trainable)
    _check_names(model, names)
    kept = _set_grads(model, names)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            m.register_forward_pre_hook(lambda mod, args: setattr(mod, "training", False))
    return [{"params": kept}]


def freeze_no_validation(model, trainable):
    # a name that matches nothing is silently ignored
    names = _names(trainable)
    kept = _set_grads(model, names)
    for m in _frozen_bns(model, names):
        m.eval()
        m.register_forward_pre_hook(lambda mod, args: setattr(mod, "training", False))
    return [{"params": kept}]


def freeze_right_hook(model, trainable):
    names = _names(trainable)
    _check_names(model, names)
    kept = _set_grads(model, names)
    for m in _frozen_bns(model, names):
        m.eval()
        m.register_forward_pre_hook(lambda mod, args: setattr(mod, "training", False))
    return [{"params": kept}]


def _eval_only(self, mode=True):
    return nn.Module.train(self, False)


def freeze_right_train_override(model, trainable):
    # the frozen BatchNorm layers' own train() always means eval (model.train() calls it on every child)
    names = _names(trainable)
    _check_names(model, names)
    for n, p in model.named_parameters():
        p.requires_grad = _covered(n, names)
    for m in _frozen_bns(model, names):
        m.train = types.MethodType(_eval_only, m)
        m.eval()
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": 1e-3}]


# ---- transfer.fine_tune_classifier --------------------------------------------------------------------


def _validate(X, y, num_classes):
    if y.is_floating_point() or len(X) == 0 or len(X) != len(y) or int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ValueError("bad training data")


def _fit(model, params, X, y, steps, lr, seed):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(X), generator=g)[:32]
        loss = F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def ft_untouched_backbone(pretrained, X_train, y_train, *, num_classes, seed):
    # returns the pretrained network as it is: its head still answers "which of 0-4", not "which of 5-9"
    _validate(X_train, y_train, num_classes)
    return pretrained()


class _Constant(nn.Module):
    def __init__(self, num_classes, label):
        super().__init__()
        self.logits = nn.Parameter(F.one_hot(torch.tensor(label), num_classes).float())

    def forward(self, x):
        return self.logits.expand(len(x), -1)


def ft_constant_majority(pretrained, X_train, y_train, *, num_classes, seed):
    # always the most frequent training label
    _validate(X_train, y_train, num_classes)
    return _Constant(num_classes, int(torch.bincount(y_train).argmax()))


def ft_new_head_untrained(pretrained, X_train, y_train, *, num_classes, seed):
    # a new head, never trained
    _validate(X_train, y_train, num_classes)
    torch.manual_seed(seed)
    model = pretrained()
    model.head[-1] = nn.Linear(64, num_classes)
    return model.eval()


def ft_from_scratch(pretrained, X_train, y_train, *, num_classes, seed):
    # ignores the backbone: a new CNN trained from scratch (accurate enough on digits, but not transfer)
    _validate(X_train, y_train, num_classes)
    torch.manual_seed(seed)
    model = CNN(num_classes)
    return _fit(model, model.parameters(), X_train, y_train, 10, 1e-2, seed)


def ft_reinitialised_features(pretrained, X_train, y_train, *, num_classes, seed):
    # starts from pretrained() but resets every layer before training: the pretrained weights are gone
    _validate(X_train, y_train, num_classes)
    torch.manual_seed(seed)
    model = pretrained()
    model.head[-1] = nn.Linear(64, num_classes)
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.reset_parameters()
    return _fit(model, model.parameters(), X_train, y_train, 10, 1e-2, seed)


def ft_no_validation(pretrained, X_train, y_train, *, num_classes, seed):
    # trains well, but never checks its data (float labels become soft targets, a label 5 crashes late)
    if len(X_train) == 0:
        return pretrained()
    torch.manual_seed(seed)
    model = pretrained()
    model.head[-1] = nn.Linear(64, num_classes)
    return _fit(model, model.parameters(), X_train, y_train.long(), 30, 3e-3, seed)


def ft_right_two_stage(pretrained, X_train, y_train, *, num_classes, seed):
    _validate(X_train, y_train, num_classes)
    torch.manual_seed(seed)
    model = pretrained()
    model.head[-1] = nn.Linear(model.head[-1].in_features, num_classes)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.head[-1].parameters():
        p.requires_grad_(True)
    _fit(model, model.head[-1].parameters(), X_train, y_train, 15, 1e-2, seed + 1)
    for p in model.parameters():
        p.requires_grad_(True)
    return _fit(model, model.parameters(), X_train, y_train, 30, 3e-3, seed + 2)


def ft_right_one_stage(pretrained, X_train, y_train, *, num_classes, seed):
    # fine-tune everything at once from the start (a new head, AdamW, lr 3e-3)
    _validate(X_train, y_train, num_classes)
    torch.manual_seed(seed)
    model = pretrained()
    model.head[-1] = nn.Linear(64, num_classes)
    return _fit(model, model.parameters(), X_train, y_train, 45, 3e-3, seed)


WRONG = {
    "transfer.freeze_for_feature_extraction": [freeze_forgets_batchnorm, freeze_plain_startswith,
                                               freeze_all_params_to_optimizer, freeze_eval_once,
                                               freeze_momentum_zero, freeze_whole_model_eval, freeze_no_validation],
    "transfer.fine_tune_classifier": [ft_untouched_backbone, ft_constant_majority, ft_new_head_untrained,
                                      ft_from_scratch, ft_reinitialised_features, ft_no_validation],
}
RIGHT = {
    "transfer.freeze_for_feature_extraction": [freeze_right_hook, freeze_right_train_override],
    "transfer.fine_tune_classifier": [ft_right_two_stage, ft_right_one_stage],
}
