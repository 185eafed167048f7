"""Plausible WRONG implementations of the ``regularization.*`` exercises (each must be rejected by ``check``),
and several different CORRECT ones (each must be accepted)."""

import math

import torch
import torch.nn.functional as F

# ---- regularization.inverted_dropout --------------------------------------------------------------


def _check_p(p):
    if not 0 <= p < 1:
        raise ValueError("p must be in [0, 1)")


def dropout_no_rescale(x, p, *, training, generator=None):
    # drops but forgets the 1 / (1 - p): the expected activation shrinks by (1 - p)
    _check_p(p)
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p)


def dropout_scale_by_p(x, p, *, training, generator=None):
    # survivors scaled by 1 / p instead of 1 / (1 - p)
    _check_p(p)
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p) / p


def dropout_keep_prob(x, p, *, training, generator=None):
    # p read as the KEEP probability (Keras 1 / TF1's keep_prob)
    _check_p(p)
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype) < p
    return x * keep / (1 - p)


def dropout_vanilla_eval_scaling(x, p, *, training, generator=None):
    # the original (non-inverted) dropout: no scaling in training, multiply by (1 - p) at test time
    _check_p(p)
    if not training:
        return x * (1 - p)
    return x * (torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p)


def dropout_global_rng(x, p, *, training, generator=None):
    # ignores the generator: torch's global RNG, so a seeded generator does not repeat the mask
    _check_p(p)
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, dtype=x.dtype) >= p) / (1 - p)


def dropout_fixed_seed(x, p, *, training, generator=None):
    # a new generator with a fixed seed inside: the same mask on every call
    _check_p(p)
    if not training or p == 0:
        return x
    g = torch.Generator().manual_seed(0)
    return x * (torch.rand(x.shape, generator=g, dtype=x.dtype) >= p) / (1 - p)


def dropout_no_validation(x, p, *, training, generator=None):
    # no ValueError: p = 1 divides by zero, p < 0 silently keeps everything
    if not training or p <= 0:
        return x
    return x * (torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p) / (1 - p)


def dropout_right(x, p, *, training, generator=None):
    _check_p(p)
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p
    return torch.where(keep, x / (1 - p), torch.zeros_like(x))


def dropout_right_bernoulli(x, p, *, training, generator=None):
    if not 0.0 <= p < 1.0:
        raise ValueError(f"bad p {p}")
    if not training:
        return x.clone()
    mask = torch.bernoulli(torch.full_like(x, 1 - p), generator=generator)
    return x * mask * (1.0 / (1 - p))


# ---- regularization.label_smoothing_cross_entropy --------------------------------------------------


def _prep(logits, target, smoothing, ignore_index):
    if not 0 <= smoothing <= 1:
        raise ValueError("smoothing must be in [0, 1]")
    logp = F.log_softmax(logits, dim=1)
    keep = target != ignore_index
    t = torch.where(keep, target, torch.zeros_like(target))
    return logp, keep, t


def ls_over_other_classes(logits, target, *, smoothing, weight=None, ignore_index=-100):
    # smoothing spread over the C - 1 OTHER classes (the true class gets exactly 1 - s)
    logp, keep, t = _prep(logits, target, smoothing, ignore_index)
    c = logits.shape[1]
    w = (torch.ones(c, dtype=logp.dtype) if weight is None else weight)
    wv = w.view(1, c, *([1] * (logits.dim() - 2)))
    true = logp.gather(1, t.unsqueeze(1)).squeeze(1)
    others = (logp * wv).sum(1) - w[t] * true
    w_t = w[t] * keep
    loss = -((1 - smoothing) * w_t * true + smoothing / (c - 1) * others * keep).sum()
    return loss / w_t.sum()


def ls_mean_over_rows(logits, target, *, smoothing, weight=None, ignore_index=-100):
    # divides by the number of kept rows even with class weights (torch divides by their total weight)
    logp, keep, t = _prep(logits, target, smoothing, ignore_index)
    c = logits.shape[1]
    w = torch.ones(c, dtype=logp.dtype) if weight is None else weight
    wv = w.view(1, c, *([1] * (logits.dim() - 2)))
    nll = -(w[t] * logp.gather(1, t.unsqueeze(1)).squeeze(1))
    smooth = -(logp * wv).sum(1)
    per = (1 - smoothing) * nll + smoothing / c * smooth
    return per[keep].mean()


def ls_ignored_rows_in_smoothing(logits, target, *, smoothing, weight=None, ignore_index=-100):
    # the smoothing term forgets ignore_index: ignored rows still add their sum of log-probabilities
    logp, keep, t = _prep(logits, target, smoothing, ignore_index)
    c = logits.shape[1]
    w = torch.ones(c, dtype=logp.dtype) if weight is None else weight
    wv = w.view(1, c, *([1] * (logits.dim() - 2)))
    w_t = w[t] * keep
    nll = -(w_t * logp.gather(1, t.unsqueeze(1)).squeeze(1)).sum()
    smooth = -(logp * wv).sum(1).sum()
    return ((1 - smoothing) * nll + smoothing / c * smooth) / w_t.sum()


def ls_log_of_softmax(logits, target, *, smoothing, weight=None, ignore_index=-100):
    # log(softmax(x)): exp overflows / underflows for large logits (inf - inf = nan, log 0 = -inf)
    if not 0 <= smoothing <= 1:
        raise ValueError("smoothing must be in [0, 1]")
    logp = torch.log(torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True))
    keep = target != ignore_index
    t = torch.where(keep, target, torch.zeros_like(target))
    c = logits.shape[1]
    w = torch.ones(c, dtype=logp.dtype) if weight is None else weight
    wv = w.view(1, c, *([1] * (logits.dim() - 2)))
    w_t = w[t] * keep
    nll = -(w_t * logp.gather(1, t.unsqueeze(1)).squeeze(1)).sum()
    smooth = -torch.where(keep, (logp * wv).sum(1), torch.zeros_like(w_t)).sum()
    return ((1 - smoothing) * nll + smoothing / c * smooth) / w_t.sum()


def ls_no_validation(logits, target, *, smoothing, weight=None, ignore_index=-100):
    # right values, but no ValueError for smoothing outside [0, 1]
    c = logits.shape[1]
    logp = F.log_softmax(logits, dim=1)
    keep = target != ignore_index
    t = torch.where(keep, target, torch.zeros_like(target))
    w = torch.ones(c, dtype=logp.dtype) if weight is None else weight
    wv = w.view(1, c, *([1] * (logits.dim() - 2)))
    w_t = w[t] * keep
    nll = -(w_t * logp.gather(1, t.unsqueeze(1)).squeeze(1)).sum()
    smooth = -torch.where(keep, (logp * wv).sum(1), torch.zeros_like(w_t)).sum()
    return ((1 - smoothing) * nll + smoothing / c * smooth) / w_t.sum()


def ls_right(logits, target, *, smoothing, weight=None, ignore_index=-100):
    if not 0 <= smoothing <= 1:
        raise ValueError("smoothing must be in [0, 1]")
    return ls_no_validation(logits, target, smoothing=smoothing, weight=weight, ignore_index=ignore_index)


def ls_right_soft_targets(logits, target, *, smoothing, weight=None, ignore_index=-100):
    # builds the smoothed target distribution explicitly (classes moved last), then a weighted mean
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError("smoothing out of range")
    c = logits.shape[1]
    z = logits.movedim(1, -1).reshape(-1, c)
    y = target.reshape(-1)
    keep = y != ignore_index
    z, y = z[keep], y[keep]
    w = torch.ones(c, dtype=z.dtype) if weight is None else weight.to(z.dtype)
    q = torch.full_like(z, smoothing / c)
    q[torch.arange(len(y)), y] += 1 - smoothing
    logp = z - torch.logsumexp(z, dim=1, keepdim=True)
    per_class = -(q * logp) * w  # the weight of class c on its own term, as torch does
    total = per_class.sum()
    return total / w[y].sum() if len(y) else total / torch.zeros((), dtype=z.dtype)


# ---- regularization.early_stopping ------------------------------------------------------------------


def _validate(patience, min_delta):
    if patience < 0 or min_delta < 0:
        raise ValueError("patience and min_delta must be >= 0")


def es_off_by_one(val_losses, *, patience, min_delta=0.0):
    # waits patience epochs and stops on the NEXT one (wait > patience)
    _validate(patience, min_delta)
    best, best_epoch, wait = math.inf, None, 0
    for epoch, loss in enumerate(val_losses):
        if math.isfinite(loss) and loss < best - min_delta:
            best, best_epoch, wait = loss, epoch, 0
        else:
            wait += 1
            if wait > patience:
                return epoch, best_epoch
    return None, best_epoch


def es_ties_improve(val_losses, *, patience, min_delta=0.0):
    # <= : a tie with the best resets the patience
    _validate(patience, min_delta)
    best, best_epoch, wait = math.inf, None, 0
    for epoch, loss in enumerate(val_losses):
        if math.isfinite(loss) and loss <= best - min_delta:
            best, best_epoch, wait = loss, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
    return None, best_epoch


def es_ignores_min_delta(val_losses, *, patience, min_delta=0.0):
    _validate(patience, min_delta)
    best, best_epoch, wait = math.inf, None, 0
    for epoch, loss in enumerate(val_losses):
        if math.isfinite(loss) and loss < best:
            best, best_epoch, wait = loss, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
    return None, best_epoch


def es_nan_poisons(val_losses, *, patience, min_delta=0.0):
    # `not loss >= best - min_delta` is True for NaN: a NaN becomes the best and nothing beats it after
    _validate(patience, min_delta)
    best, best_epoch, wait = math.inf, None, 0
    for epoch, loss in enumerate(val_losses):
        if not loss >= best - min_delta:
            best, best_epoch, wait = loss, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
    return None, best_epoch


def es_best_is_argmin(val_losses, *, patience, min_delta=0.0):
    # the right stop, but best_epoch = the overall argmin (it ignores min_delta and looks past the stop)
    _validate(patience, min_delta)
    losses = [float(v) for v in val_losses]
    stop, _ = es_right(losses, patience=patience, min_delta=min_delta)
    finite = [(v, i) for i, v in enumerate(losses) if math.isfinite(v)]
    return stop, (min(finite)[1] if finite else None)


def es_right(val_losses, *, patience, min_delta=0.0):
    _validate(patience, min_delta)
    best, best_epoch, wait = math.inf, None, 0
    for epoch, loss in enumerate(val_losses):
        loss = float(loss)
        if math.isfinite(loss) and loss < best - min_delta:
            best, best_epoch, wait = loss, epoch, 0
            continue
        wait += 1
        if wait >= max(patience, 1):
            return epoch, best_epoch
    return None, best_epoch


class _Callback:
    def __init__(self, patience, min_delta):
        _validate(patience, min_delta)
        self.patience, self.min_delta = patience, min_delta
        self.best, self.best_epoch, self.bad, self.epoch = float("inf"), None, 0, -1

    def step(self, loss):
        self.epoch += 1
        if loss == loss and loss != float("inf") and self.best - loss > self.min_delta:
            self.best, self.best_epoch, self.bad = loss, self.epoch, 0
            return False
        self.bad += 1
        return self.bad >= self.patience


def es_right_callback(val_losses, *, patience, min_delta=0.0):
    cb = _Callback(patience, min_delta)
    for epoch, loss in enumerate(val_losses):
        if cb.step(float(loss)):
            return epoch, cb.best_epoch
    return None, cb.best_epoch


WRONG = {
    "regularization.inverted_dropout": [dropout_no_rescale, dropout_scale_by_p, dropout_keep_prob,
                                        dropout_vanilla_eval_scaling, dropout_global_rng, dropout_fixed_seed,
                                        dropout_no_validation],
    "regularization.label_smoothing_cross_entropy": [ls_over_other_classes, ls_mean_over_rows,
                                                     ls_ignored_rows_in_smoothing, ls_log_of_softmax,
                                                     ls_no_validation],
    "regularization.early_stopping": [es_off_by_one, es_ties_improve, es_ignores_min_delta, es_nan_poisons,
                                      es_best_is_argmin],
}
RIGHT = {
    "regularization.inverted_dropout": [dropout_right, dropout_right_bernoulli],
    "regularization.label_smoothing_cross_entropy": [ls_right, ls_right_soft_targets],
    "regularization.early_stopping": [es_right, es_right_callback],
}
