"""What a runner does to a candidate object beyond calling it, the same in-process and in a learner's kernel.

``check()`` runs these on the learner's object in its own process; ``bigtrain-lab grade`` holds only a
``RemoteObject`` for an object that lives in the learner's kernel, and each function below then sends
its name to the kernel, where the kernel-side agent runs this very module's code on the real object and
sends back data. A runner written with these functions therefore grades both ways alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


def _remote(obj: Any) -> bool:
    return getattr(type(obj), "__bigtrain_remote__", False) is True


def _dispatched(fn: Callable[..., Any]) -> Callable[..., Any]:
    name = fn.__name__

    def wrapper(obj: Any, *args: Any) -> Any:
        if _remote(obj):
            return obj.remote_op(name, *args)
        return fn(obj, *args)

    wrapper.__name__, wrapper.__doc__, wrapper.__wrapped__ = name, fn.__doc__, fn
    return wrapper


@_dispatched
def module_facts(obj: Any, attrs: Sequence[str] = ()) -> dict:
    """Is it an ``nn.Module``; the names of its trainable parameters; the values of the ``attrs`` it has
    (tensors and parameters keep their kind, anything else is ``None``); and a snapshot of every
    parameter and buffer (to tell whether a later call changed the object)."""
    is_module = isinstance(obj, torch.nn.Module)
    values: dict[str, Any] = {}
    for name in attrs:
        value = getattr(obj, name, None)
        values[name] = value.detach().clone() if type(value) is torch.Tensor else (
            torch.nn.Parameter(value.detach().clone(), requires_grad=value.requires_grad)
            if type(value) is torch.nn.Parameter else None)
    state: dict[str, torch.Tensor] = {}
    trainable: list[str] = []
    if is_module:
        for pname, p in obj.named_parameters():
            state[pname] = p.detach().clone()
            if p.requires_grad:
                trainable.append(pname)
        for bname, b in obj.named_buffers():
            state[f"buffer:{bname}"] = b.detach().clone()
    return {"is_module": is_module, "type": type(obj).__name__, "trainable": sorted(trainable),
            "attrs": values, "state": state}


@_dispatched
def forward(obj: Any, x: torch.Tensor) -> torch.Tensor:
    """``obj(x)``, detached."""
    out = obj(x)
    return out.detach() if isinstance(out, torch.Tensor) else out


@_dispatched
def assign(obj: Any, values: dict) -> None:
    """Copy each tensor of ``values`` into the attribute of that name, without recording gradients."""
    with torch.no_grad():
        for name, value in values.items():
            getattr(obj, name).copy_(value)


@_dispatched
def forward_backward(obj: Any, x: torch.Tensor, names: Sequence[str]) -> tuple:
    """``y = obj(x)``, then ``y.square().sum().backward()``: y (detached) and the gradient of each named
    attribute (``None`` where none arrived)."""
    y = obj(x)
    y.square().sum().backward()
    grads = {}
    for name in names:
        grad = getattr(getattr(obj, name, None), "grad", None)
        grads[name] = grad.detach().clone() if isinstance(grad, torch.Tensor) else None
    return y.detach(), grads


@_dispatched
def call_method(obj: Any, name: str, *args: Any) -> Any:
    """``getattr(obj, name)(*args)``."""
    return getattr(obj, name)(*args)


@_dispatched
def run_ring(fn: Any, tensors: list) -> tuple[list, list[tuple[int, int, int, int]]]:
    """Run ``fn`` as every worker of the simulated ring (``bigtrain_lab.distributed.allreduce``): each
    worker's result and every message sent, as ``(index, src, dst, numel)``."""
    from bigtrain_lab.distributed.allreduce import run_workers

    run = run_workers(fn, tensors, recv_timeout_s=2.0)
    return list(run.results), [(m.index, m.src, m.dst, m.numel) for m in run.messages]


@_dispatched
def resume_training(fn: Any, role: str, config: dict) -> dict:
    """``bigtrain_lab.deploy.checkpoint.resume_experiment`` with ``fn`` as its ``save`` (role "save") or its
    ``restore`` function and the reference for the other: the final parameters, the losses and the number
    of steps run; ``{"problem": ...}`` when the saved state cannot be read back with weights_only=True."""
    import pickle

    from bigtrain_lab.deploy.checkpoint import resume_experiment

    try:
        return resume_experiment(**{role: fn}, **config)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if "Unsupported global" in line]
        why = lines[0].split(" was not", 1)[0].removeprefix("WeightsUnpickler error: ") if lines else type(exc).__name__
        return {"problem": "the saved state cannot be read back with torch.load(weights_only=True): it holds "
                           f"something that is not a tensor or plain data ({why[:200]})"}


@_dispatched
def attention_trace(fn: Any, args: Sequence[Any], kwargs: dict) -> tuple:
    """``fn(*args, **kwargs)`` under a ``TorchDispatchMode``: ``(output, numel, shape, operator)`` of the largest
    tensor an operator created (new storage only: views and in-place results are not counted; numel 0 when
    none) and the sorted names of the operators that ran. Uses torch only, so that a probe operation can run
    it where the candidate lives. The memory check of ``llm.online_softmax_attention``."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    largest: dict[str, Any] = {"numel": 0, "shape": (), "op": ""}
    ops: set[str] = set()

    class _Trace(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                      if isinstance(t, torch.Tensor)}
            out = func(*args, **kwargs)
            name = str(func.overloadpacket.__name__)
            ops.add(name)
            for t in tree_flatten(out)[0]:
                if (isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs
                        and t.numel() > largest["numel"]):
                    largest.update(numel=t.numel(), shape=tuple(t.shape), op=name)
            return out

    with _Trace():
        out = fn(*args, **dict(kwargs))
    return out, largest["numel"], largest["shape"], largest["op"], sorted(ops)


#: The operations a kernel-side agent may run, by name.
OPERATIONS: dict[str, Callable[..., Any]] = {
    f.__name__: f.__wrapped__ for f in (module_facts, forward, assign, forward_backward, call_method, run_ring,
                                    resume_training, attention_trace)
}
