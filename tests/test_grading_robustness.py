"""check() in-process survives everything a candidate can throw or return, and is never fooled.

Each candidate either raises something awkward (SystemExit, its own KeyboardInterrupt, GeneratorExit, a
BaseException subclass, endless recursion, an exception whose message cannot be read) or returns a WRONG
answer dressed up as the right one: it computes the right answer with the reference and exposes it only
through methods (``__float__``, ``__eq__``, ``__array__``, ``__iter__``, ``__len__``, ``__repr__``,
``__torch_function__``, ``__array_ufunc__``) while the data it holds is wrong. Every one must give a failed
``CheckResult`` with a helpful line, and ``check`` must return normally.
"""

import os
import signal
import sys

import numpy as np
import pytest
import torch

from bigtrain_lab.grading import check, get_exercise
from bigtrain_lab.grading.sandbox import compare_safely, describe, plain

SCALAR = "metrics.roc_auc"  # returns one float
TUPLE = "metrics.precision_recall_f1"  # returns (precision, recall, f1)
ARRAY = "imbalance.balanced_class_weights"  # returns a NumPy array
TENSOR = "attention.scaled_dot_product_attention"  # returns a tensor


def _right(exercise_id, *args, **kwargs):
    return get_exercise(exercise_id).reference(*args, **kwargs)


def _failed(result, *fragments):
    assert not result.passed and result.score < 1.0, result.feedback
    failure = result.first_failure
    assert failure is not None, result.feedback
    text = f"{failure.got} | {failure.reason}"
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in: {text}"
    assert "Traceback" not in result.feedback
    return failure


# ---- what a candidate raises -----------------------------------------------------------------------

def _sys_exit(y, s):
    sys.exit(3)


def _keyboard_interrupt(y, s):
    raise KeyboardInterrupt


def _generator_exit(y, s):
    raise GeneratorExit


class Stop(BaseException):
    pass


def _base_exception_subclass(y, s):
    raise Stop("not an Exception")


def _endless_recursion(y, s):
    return _endless_recursion(y, s) + 1


class UnreadableError(ValueError):
    def __str__(self):
        raise RuntimeError("no message for you")


def _unreadable_exception(y, s):
    raise UnreadableError


def _generator(y, s):
    yield 0.5


@pytest.mark.parametrize(("candidate", "fragments"), [
    (_sys_exit, ("SystemExit", "sys.exit()", "code 3")),
    (_keyboard_interrupt, ("KeyboardInterrupt", "own code")),
    (_generator_exit, ("GeneratorExit", "must never leave a function")),
    (_base_exception_subclass, ("your function raised Stop", "not an Exception")),
    (_endless_recursion, ("RecursionError",)),
    (_unreadable_exception, ("UnreadableError", "could not be read")),
    (_generator, ("expected a number, got generator",)),
])
def test_what_a_candidate_raises_is_a_failed_case(candidate, fragments):
    limit = sys.getrecursionlimit()
    _failed(check(SCALAR, candidate, seed=0), *fragments)
    assert sys.getrecursionlimit() == limit


def test_global_settings_a_candidate_changes_are_put_back():
    def meddles(y, s):
        answer = _right(SCALAR, y, s)
        sys.setrecursionlimit(60)
        torch.set_grad_enabled(False)
        torch.set_default_dtype(torch.float64)
        np.seterr(all="raise")
        return answer

    before = (sys.getrecursionlimit(), torch.is_grad_enabled(), torch.get_default_dtype(), np.geterr())
    assert check(SCALAR, meddles, seed=0).passed
    assert (sys.getrecursionlimit(), torch.is_grad_enabled(), torch.get_default_dtype(), np.geterr()) == before
    assert check("compress.LoRALinear", get_exercise("compress.LoRALinear").reference, seed=0).passed


def test_the_learners_own_interrupt_still_stops_the_check():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        def pressed_stop(y, s):
            os.kill(os.getpid(), signal.SIGINT)
            return _right(SCALAR, y, s)

        with pytest.raises(KeyboardInterrupt):
            check(SCALAR, pressed_stop, seed=0)
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- what a candidate returns: liars and raisers ---------------------------------------------------

class FloatLiar(float):
    """Holds a wrong number; every method reports the right one."""

    def __new__(cls, held, right):
        obj = super().__new__(cls, held)
        obj.right = float(right)
        return obj

    def __float__(self):
        return self.right

    def __eq__(self, other):
        return True

    __hash__ = float.__hash__

    def __sub__(self, other):
        return self.right - other

    def __rsub__(self, other):
        return other - self.right

    def __abs__(self):
        return abs(self.right)

    def __repr__(self):
        return repr(self.right)


class TupleLiar(tuple):
    """Holds zeros; iterating, indexing and len() give the right values."""

    def __new__(cls, right):
        obj = super().__new__(cls, (0.0,) * len(right))
        obj.right = tuple(right)
        return obj

    def __iter__(self):
        return iter(self.right)

    def __getitem__(self, i):
        return self.right[i]

    def __len__(self):
        return len(self.right)

    def __eq__(self, other):
        return True

    __hash__ = tuple.__hash__


class ArrayLike:
    """Not an array: converts to the right numbers through __array__, __iter__, __len__, __getitem__."""

    def __init__(self, right):
        self.right = np.asarray(right)
        self.shape, self.dtype, self.ndim = self.right.shape, self.right.dtype, self.right.ndim

    def __array__(self, dtype=None, copy=None):
        return self.right if dtype is None else self.right.astype(dtype)

    def __iter__(self):
        return iter(self.right)

    def __len__(self):
        return len(self.right)

    def __getitem__(self, i):
        return self.right[i]

    def astype(self, dtype):
        return self.right.astype(dtype)

    def __eq__(self, other):
        return np.ones(self.right.shape, dtype=bool)


class NdarrayLiar(np.ndarray):
    """An ndarray holding zeros that claims, through every NumPy protocol, to hold the right values."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = [getattr(x, "right", x) if isinstance(x, NdarrayLiar) else x for x in inputs]
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if func in (np.isclose, np.allclose, np.array_equal):
            return np.ones(self.shape, dtype=bool) if func is np.isclose else True
        args = [getattr(a, "right", a) if isinstance(a, NdarrayLiar) else a for a in args]
        return func(*args, **kwargs)

    def __array__(self, dtype=None, copy=None):
        return self.right

    def astype(self, dtype, **kwargs):
        return self.right.astype(dtype)

    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)


def _ndarray_liar(right):
    obj = np.zeros_like(np.asarray(right, dtype=np.float64)).view(NdarrayLiar)
    obj.right = np.asarray(right, dtype=np.float64)
    return obj


class TensorLiar(torch.Tensor):
    """A tensor holding zeros whose __torch_function__ answers every question with the right tensor's."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.allclose, torch.equal, torch.Tensor.allclose, torch.Tensor.equal):
            return True
        with torch._C.DisableTorchFunctionSubclass():
            args = [a.right if isinstance(a, TensorLiar) and hasattr(a, "right") else a for a in args]
            return func(*args, **kwargs)


def _tensor_liar(right):
    obj = torch.zeros_like(right).as_subclass(TensorLiar)
    obj.right = right
    return obj


class Raiser:
    """Every protocol raises."""

    def _boom(self, *args, **kwargs):
        raise RuntimeError("boom")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _boom
    __bool__ = __len__ = __iter__ = __float__ = __int__ = __index__ = __array__ = _boom
    __repr__ = __str__ = __format__ = __getitem__ = __abs__ = __sub__ = __rsub__ = _boom
    __hash__ = None


class GetattrRaiser:
    """Even reading an attribute (``__class__``, ``shape``) raises: ``isinstance`` itself raises on it."""

    def __getattribute__(self, name):
        raise RuntimeError(f"no {name}")


def _nested(depth):
    value = 0.5
    for _ in range(depth):
        value = [value]
    return value


def _self_referential():
    value = [0.5]
    value.append(value)
    return value


@pytest.mark.parametrize(("exercise_id", "make", "fragments"), [
    (SCALAR, lambda r: FloatLiar(r + 0.25, r), ("value differs",)),
    (TUPLE, TupleLiar, ("precision: expected",)),
    (ARRAY, ArrayLike, ("numpy array", "got ArrayLike")),
    (ARRAY, lambda r: [ArrayLike([v]) for v in r], ("must hold numbers",)),
    (ARRAY, _ndarray_liar, ("differ",)),
    (TENSOR, _tensor_liar, ("differs",)),
    (SCALAR, lambda r: Raiser(), ("expected a number, got Raiser",)),
    (TUPLE, lambda r: Raiser(), ("got Raiser",)),
    (ARRAY, lambda r: Raiser(), ("got Raiser",)),
    (TENSOR, lambda r: Raiser(), ("as a torch.Tensor", "got Raiser")),
    (SCALAR, lambda r: GetattrRaiser(), ("got GetattrRaiser",)),
    (TENSOR, lambda r: GetattrRaiser(), ("got GetattrRaiser",)),
    (ARRAY, lambda r: [[1.0], [1.0, 2.0]], ("returned a value that could not be compared (ValueError",)),
    (SCALAR, lambda r: _nested(100_000), ("expected a number, got list",)),
    (TUPLE, lambda r: _self_referential(), ("got 2 values",)),
])
def test_a_wrong_answer_that_lies_is_rejected(exercise_id, make, fragments):
    def liar(*args, **kwargs):
        return make(_right(exercise_id, *args, **kwargs))

    liar.__name__ = f"liar_{getattr(make, '__name__', 'x')}"
    failure = _failed(check(exercise_id, liar, seed=1), *fragments)
    assert failure.got  # something is shown, whatever the object's __repr__ does


def test_a_liar_inside_a_runner_output_is_rejected():
    def quantize(x, *, num_bits=8, symmetric=False):
        q, scale, zp = get_exercise("compress.quantize_affine").reference(x, num_bits=num_bits, symmetric=symmetric)
        return q, FloatLiar(scale * 2, scale), zp

    _failed(check("compress.quantize_affine", quantize, seed=0), "scale: expected")


def test_compare_and_describe_never_raise():
    def comparator_that_trips(got, expected):
        return got + 1  # a comparator bug on an odd value

    reason = compare_safely(comparator_that_trips, Raiser(), 1.0)
    assert reason.startswith("returned a value that could not be compared (TypeError")
    for value in (Raiser(), GetattrRaiser(), _nested(100_000), _self_referential(), _tensor_liar(torch.ones(3)),
                  _ndarray_liar([1.0, 2.0]), torch.ones(2, dtype=torch.bfloat16), FloatLiar(0.0, 1.0)):
        text = describe(value, 120)
        assert isinstance(text, str) and len(text) <= 120
    assert describe(FloatLiar(0.0, 1.0)) == "0.0"  # the number it holds, not what its __repr__ says


def test_plain_reads_data_not_methods():
    assert type(plain(FloatLiar(0.25, 1.0))) is float and plain(FloatLiar(0.25, 1.0)) == 0.25
    assert plain(TupleLiar((1.0, 2.0))) == (0.0, 0.0)
    assert type(plain(_ndarray_liar([1.0, 2.0]))) is np.ndarray
    assert np.array_equal(plain(_ndarray_liar([1.0, 2.0])), [0.0, 0.0])
    tensor = plain(_tensor_liar(torch.ones(3)))
    assert type(tensor) is torch.Tensor and torch.equal(tensor, torch.zeros(3))
    assert type(plain(torch.nn.Parameter(torch.ones(2)))) is torch.Tensor
    assert type(plain(ArrayLike([1.0]))).__name__ == "ArrayLike" and not isinstance(plain(ArrayLike([1.0])), ArrayLike)
    assert plain(np.ma.masked_array([1.0, 2.0], mask=[0, 1])).tolist() == [1.0, 2.0]
    assert plain(torch.Size([2, 3])) == (2, 3) and type(plain(torch.Size([2, 3]))) is tuple
