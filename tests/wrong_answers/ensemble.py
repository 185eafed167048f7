"""Plausible WRONG implementations of the ``ensemble.*`` exercises (each must be rejected by ``check``), and
several different CORRECT ones (each must be accepted)."""

import numpy as np
import torch
from sklearn.model_selection import KFold, StratifiedKFold

# ---- ensemble.soft_vote ---------------------------------------------------------------------------


def _weights(weights, m):
    if weights is None:
        return np.full(m, 1.0 / m)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("bad weights")
    return w / w.sum()


def sv_not_normalised(probas, weights=None):
    # weighted sum without dividing by the weights' sum: not a probability any more
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError("3-D")
    w = np.ones(len(p)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(p),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("bad weights")
    avg = np.tensordot(w, p, axes=1) / (len(p) if weights is None else 1)
    return avg, avg.argmax(1)


def sv_divided_by_members(probas, weights=None):
    # sum of w * p divided by the number of members instead of the sum of the weights
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError("3-D")
    w = np.ones(len(p)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(p),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("bad weights")
    avg = np.tensordot(w, p, axes=1) / len(p)
    return avg, avg.argmax(1)


def sv_ties_to_highest(probas, weights=None):
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError("3-D")
    avg = np.tensordot(_weights(weights, len(p)), p, axes=1)
    k = avg.shape[1]
    return avg, k - 1 - avg[:, ::-1].argmax(1)


def sv_average_log_probs(probas, weights=None):
    # averages log-probabilities (like averaging logits) and renormalises: a geometric mean
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError("3-D")
    logs = np.tensordot(_weights(weights, len(p)), np.log(np.clip(p, 1e-12, None)), axes=1)
    avg = np.exp(logs - logs.max(1, keepdims=True))
    avg /= avg.sum(1, keepdims=True)
    return avg, avg.argmax(1)


def sv_hard_vote_labels(probas, weights=None):
    # the right average, but the labels by (weighted) majority of the members' own argmax
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError("3-D")
    w = _weights(weights, len(p))
    avg = np.tensordot(w, p, axes=1)
    votes = np.zeros_like(avg)
    for m, member in enumerate(p):
        votes[np.arange(len(avg)), member.argmax(1)] += w[m]
    return avg, votes.argmax(1)


def sv_no_weight_checks(probas, weights=None):
    # np.average: normalises, but a negative weight (with a positive sum) goes through silently
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError("3-D")
    avg = np.average(p, axis=0, weights=weights)
    return avg, avg.argmax(1)


def sv_ignores_weights(probas, weights=None):
    p = np.asarray(probas, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError("3-D")
    _weights(weights, len(p))
    avg = p.mean(0)
    return avg, avg.argmax(1)


SOFT_VOTE_WRONG = [sv_not_normalised, sv_divided_by_members, sv_ties_to_highest, sv_average_log_probs,
                   sv_hard_vote_labels, sv_no_weight_checks, sv_ignores_weights]


def sv_loop(probas, weights=None):
    members = [np.asarray(m, dtype=np.float64) for m in probas]
    if not members or any(m.ndim != 2 or m.shape != members[0].shape for m in members):
        raise ValueError("probas must be (n_members, n_samples, n_classes)")
    if weights is None:
        weights = [1.0] * len(members)
    weights = [float(w) for w in weights]
    if len(weights) != len(members) or min(weights) < 0 or sum(weights) == 0:
        raise ValueError("bad weights")
    total = sum(weights)
    avg = sum((w / total) * m for w, m in zip(weights, members, strict=True))
    labels = np.array([int(np.argmax(row)) for row in avg], dtype=np.int64)
    return avg, labels


def sv_torch(probas, weights=None):
    p = torch.as_tensor(np.asarray(probas, dtype=np.float64))
    if p.dim() != 3:
        raise ValueError("3-D")
    w = torch.ones(len(p), dtype=torch.float64) if weights is None else torch.as_tensor(
        np.asarray(weights, dtype=np.float64))
    if w.shape != (len(p),) or bool((w < 0).any()) or float(w.sum()) == 0:
        raise ValueError("bad weights")
    avg = torch.einsum("m,mnk->nk", w / w.sum(), p)
    return avg.numpy(), avg.numpy().argmax(1)  # torch.argmax does not promise the first of ties


def sv_package(probas, weights=None):
    from bigtrain_lab.ensemble import soft_vote
    return soft_vote(probas, weights)


SOFT_VOTE_RIGHT = [sv_loop, sv_torch, sv_package]


# ---- ensemble.out_of_fold_predictions -------------------------------------------------------------


def _oof(make_model, X, y, folds):
    X, y = np.asarray(X), np.asarray(y)
    classes = np.unique(y)
    out = np.zeros((len(y), len(classes)))
    for train, test in folds:
        model = make_model().fit(X[train], y[train])
        out[np.ix_(test, np.searchsorted(classes, model.classes_))] = model.predict_proba(X[test])
    return out


def oof_not_shuffled(make_model, X, y, *, n_splits, seed):
    return _oof(make_model, X, y, StratifiedKFold(n_splits).split(X, y))


def oof_not_stratified(make_model, X, y, *, n_splits, seed):
    return _oof(make_model, X, y, KFold(n_splits, shuffle=True, random_state=seed).split(X, y))


def oof_other_seed(make_model, X, y, *, n_splits, seed):
    return _oof(make_model, X, y, StratifiedKFold(n_splits, shuffle=True, random_state=seed + 1).split(X, y))


def oof_fit_on_all(make_model, X, y, *, n_splits, seed):
    # the leak: the model that predicts a row was fitted on it
    X, y = np.asarray(X), np.asarray(y)
    StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y).__next__()
    return make_model().fit(X, y).predict_proba(X)


def oof_in_fold(make_model, X, y, *, n_splits, seed):
    # predicts the training rows of each fold (the last fold's model wins each row)
    X, y = np.asarray(X), np.asarray(y)
    out = np.zeros((len(y), len(np.unique(y))))
    for train, _ in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y):
        out[train] = make_model().fit(X[train], y[train]).predict_proba(X[train])
    return out


def oof_columns_unmapped(make_model, X, y, *, n_splits, seed):
    # assumes every fold's model knows every class (a class missing from a fold breaks it)
    X, y = np.asarray(X), np.asarray(y)
    out = np.zeros((len(y), len(np.unique(y))))
    for train, test in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y):
        proba = make_model().fit(X[train], y[train]).predict_proba(X[test])
        out[test, : proba.shape[1]] = proba
    return out


def oof_labels_not_probas(make_model, X, y, *, n_splits, seed):
    X, y = np.asarray(X), np.asarray(y)
    out = np.empty(len(y), dtype=y.dtype)
    for train, test in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y):
        out[test] = make_model().fit(X[train], y[train]).predict(X[test])
    return out


OOF_WRONG = [oof_not_shuffled, oof_not_stratified, oof_other_seed, oof_fit_on_all, oof_in_fold,
             oof_columns_unmapped, oof_labels_not_probas]


def oof_dict_of_columns(make_model, X, y, *, n_splits, seed):
    X, y = np.asarray(X), np.asarray(y)
    classes = sorted(set(y.tolist()))
    column = {c: j for j, c in enumerate(classes)}
    out = np.zeros((len(y), len(classes)))
    for train, test in StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(X, y):
        model = make_model()
        model.fit(X[train], y[train])
        proba = model.predict_proba(X[test])
        for j, c in enumerate(model.classes_):
            out[test, column[c.item() if hasattr(c, "item") else c]] = proba[:, j]
    return out


def oof_package(make_model, X, y, *, n_splits, seed):
    from bigtrain_lab.ensemble import out_of_fold_predictions
    return out_of_fold_predictions(make_model, X, y, n_splits=n_splits, seed=seed)


OOF_RIGHT = [oof_dict_of_columns, oof_package]


# ---- ensemble.average_weights ---------------------------------------------------------------------


def _check(state_dicts, weights):
    if not state_dicts:
        raise ValueError("empty")
    first = state_dicts[0]
    for sd in state_dicts[1:]:
        if set(sd) != set(first) or any(sd[k].shape != first[k].shape for k in first):
            raise ValueError("mismatch")
    w = np.ones(len(state_dicts)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(state_dicts),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("bad weights")
    return w / w.sum()


def aw_integers_averaged(state_dicts, weights=None):
    # num_batches_tracked averaged like everything else: it turns into a float tensor
    w = _check(state_dicts, weights)
    return {k: sum(float(wi) * sd[k] for wi, sd in zip(w, state_dicts, strict=True)) for k in state_dicts[0]}


def aw_integers_rounded(state_dicts, weights=None):
    # the rounded weighted mean of the counter: not the documented rule (the first state dict's)
    w = _check(state_dicts, weights)
    out = {}
    for k, v in state_dicts[0].items():
        avg = sum(float(wi) * sd[k].double() for wi, sd in zip(w, state_dicts, strict=True))
        out[k] = avg.round().to(v.dtype) if not v.is_floating_point() else avg.to(v.dtype)
    return out


def aw_not_normalised(state_dicts, weights=None):
    w = _check(state_dicts, weights) if weights is None else (_check(state_dicts, weights), weights)[1]
    return {k: (sum(float(wi) * sd[k] for wi, sd in zip(w, state_dicts, strict=True)) if v.is_floating_point()
                else v.clone()) for k, v in state_dicts[0].items()}


def aw_mean_ignoring_weights(state_dicts, weights=None):
    _check(state_dicts, weights)
    return {k: (torch.stack([sd[k] for sd in state_dicts]).mean(0) if v.is_floating_point() else v.clone())
            for k, v in state_dicts[0].items()}


def aw_no_shape_check(state_dicts, weights=None):
    # keys compared, shapes not: (2, 3) + (3,) broadcasts into a "model" nobody trained
    if not state_dicts:
        raise ValueError("empty")
    if any(set(sd) != set(state_dicts[0]) for sd in state_dicts):
        raise ValueError("keys")
    w = np.ones(len(state_dicts)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(state_dicts),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("bad weights")
    w = w / w.sum()
    return {k: (sum(float(wi) * sd[k] for wi, sd in zip(w, state_dicts, strict=True)) if v.is_floating_point()
                else v.clone()) for k, v in state_dicts[0].items()}


def aw_into_the_first(state_dicts, weights=None):
    # accumulates into the first state dict's tensors: the caller's model changes under it
    w = _check(state_dicts, weights)
    out = state_dicts[0]
    for k, v in out.items():
        if v.is_floating_point():
            v.mul_(float(w[0]))
            for wi, sd in zip(w[1:], state_dicts[1:], strict=True):
                v.add_(sd[k], alpha=float(wi))
    return out


def aw_no_key_check(state_dicts, weights=None):
    # iterates the first dict's keys only: an extra or missing key is not a ValueError
    if not state_dicts:
        raise ValueError("empty")
    w = np.ones(len(state_dicts)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(state_dicts),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("bad weights")
    w = w / w.sum()
    out = {}
    for k, v in state_dicts[0].items():
        vals = [sd.get(k, v) for sd in state_dicts]
        if any(x.shape != v.shape for x in vals):
            raise ValueError("shape")
        out[k] = sum(float(wi) * x for wi, x in zip(w, vals, strict=True)) if v.is_floating_point() else v.clone()
    return out


AVERAGE_WRONG = [aw_integers_averaged, aw_integers_rounded, aw_not_normalised, aw_mean_ignoring_weights,
                 aw_no_shape_check, aw_into_the_first, aw_no_key_check]


def aw_running_sum(state_dicts, weights=None):
    w = _check(state_dicts, weights)
    out = {}
    for k, v in state_dicts[0].items():
        if v.is_floating_point():
            acc = torch.zeros_like(v)
            for wi, sd in zip(w, state_dicts, strict=True):
                acc = acc + float(wi) * sd[k]
            out[k] = acc
        else:
            out[k] = v.clone()
    return out


def aw_stacked_float64(state_dicts, weights=None):
    if len(state_dicts) == 0:
        raise ValueError("no state dicts")
    keys = list(state_dicts[0])
    for sd in state_dicts:
        if sorted(sd) != sorted(keys):
            raise ValueError("keys differ")
        for k in keys:
            if sd[k].shape != state_dicts[0][k].shape:
                raise ValueError(f"{k}: shapes differ")
    w = torch.ones(len(state_dicts), dtype=torch.float64) if weights is None else torch.tensor(
        [float(x) for x in weights], dtype=torch.float64)
    if w.numel() != len(state_dicts) or bool((w < 0).any()) or float(w.sum()) == 0:
        raise ValueError("bad weights")
    w = w / w.sum()
    out = {}
    for k in keys:
        first = state_dicts[0][k]
        if first.dtype.is_floating_point:
            stacked = torch.stack([sd[k].double() for sd in state_dicts])
            out[k] = torch.tensordot(w, stacked, dims=1).to(first.dtype)
        else:
            out[k] = first.clone()
    return out


def aw_package(state_dicts, weights=None):
    from bigtrain_lab.ensemble import average_weights
    return average_weights(state_dicts, weights)


AVERAGE_RIGHT = [aw_running_sum, aw_stacked_float64, aw_package]


WRONG = {"ensemble.soft_vote": SOFT_VOTE_WRONG, "ensemble.out_of_fold_predictions": OOF_WRONG,
         "ensemble.average_weights": AVERAGE_WRONG}
RIGHT = {"ensemble.soft_vote": SOFT_VOTE_RIGHT, "ensemble.out_of_fold_predictions": OOF_RIGHT,
         "ensemble.average_weights": AVERAGE_RIGHT}
