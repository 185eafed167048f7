"""Freezing a pretrained network for feature extraction (a linear probe or a new head on a fixed backbone).

:func:`freeze_for_feature_extraction` turns gradients off for everything but the named parts AND keeps the
BatchNorm layers of the frozen parts in eval mode, so their running statistics stay fixed and they normalize
with them even when the training loop calls ``model.train()``. ``requires_grad_(False)`` alone does not do
that: a BatchNorm layer in train mode normalizes with the batch statistics and updates its running mean and
variance on every forward, whatever its parameters' ``requires_grad`` says.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch.nn as nn

__all__ = ["freeze_for_feature_extraction", "frozen_batchnorms"]

def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether ``name`` (a parameter or module name) lies inside one of ``prefixes`` (module boundaries:
    ``"head"`` covers ``"head.1.weight"``, not ``"header.weight"``); ``""`` covers everything."""
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


def _keep_eval(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook of a frozen BatchNorm layer: whatever set it to train mode, it runs in eval mode."""
    module.training = False


def _held(module: nn.Module) -> list[int]:
    """The ids of our pre-hooks on ``module`` (found by identity, so they survive ``copy.deepcopy``)."""
    return [k for k, hook in module._forward_pre_hooks.items() if hook is _keep_eval]


def frozen_batchnorms(model: nn.Module) -> list[str]:
    """The names of the BatchNorm layers of ``model`` that :func:`freeze_for_feature_extraction` holds in eval
    mode."""
    return [name for name, m in model.named_modules() if _held(m)]


def freeze_for_feature_extraction(model: nn.Module, trainable: str | Iterable[str]) -> list[dict]:
    """Freeze ``model`` except the submodules named in ``trainable``; return the optimizer's param groups.

    ``trainable`` holds module (or parameter) names as ``model.named_parameters()`` spells them, e.g.
    ``"head"`` or ``["head.4", "features.2"]``; a name covers every parameter below it. Every other
    parameter gets ``requires_grad_(False)``, the named ones ``requires_grad_(True)``.

    BatchNorm layers outside the trainable parts are frozen too: they are put in eval mode now and get a
    forward pre-hook that sets ``training = False`` before each of their forwards. The hook is the robust
    mechanism: it holds whichever way train mode comes back (``model.train()``, ``bn.train()``, assigning
    ``.training``), survives ``copy.deepcopy`` and leaves ``state_dict`` unchanged; ``num_batches_tracked``,
    ``running_mean`` and ``running_var`` stay fixed and the layer normalizes with them. Calling the function
    again re-freezes from scratch (earlier hooks are removed first); :func:`frozen_batchnorms` lists the
    layers held.

    Returns ``[{"params": [...]}]``: one group with exactly the trainable parameters, in
    ``named_parameters()`` order, ready for ``torch.optim.SGD(groups, lr=...)``. Raises ``ValueError`` for a
    name that covers no parameter.
    """
    names = (trainable,) if isinstance(trainable, str) else tuple(trainable)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"trainable must be a name or an iterable of names, got {trainable!r}")
    params = dict(model.named_parameters())
    for n in names:
        if not any(_under(p, (n,)) for p in params):
            raise ValueError(f"trainable name {n!r} matches no parameter of the model; parameter names "
                             f"start with: {sorted({p.split('.')[0] for p in params})}")
    train_params = []
    for pname, param in params.items():
        keep = _under(pname, names)
        param.requires_grad_(keep)
        if keep:
            train_params.append(param)
    for mname, module in model.named_modules():
        for key in _held(module):
            del module._forward_pre_hooks[key]
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not _under(mname, names):
            module.eval()
            module.register_forward_pre_hook(_keep_eval)
    return [{"params": train_params}]

