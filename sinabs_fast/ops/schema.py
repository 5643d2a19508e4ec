"""The ops' argument lists, read from their registered schemas (csrc/sinabs_fast.cpp), so that
Python never spells an op's arguments out a second time."""

import operator
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .. import _C
from ..rebuild_hint import REBUILD

_BelowAutograd = torch._C._AutoDispatchBelowAutograd
_torch_function_mode_enabled = torch._C._is_torch_function_mode_enabled


class OpSchema:
    """One op of ``torch.ops.sinabs_fast``: its overload and its argument names in schema order."""

    def __init__(self, name: str):
        try:
            self.op = getattr(torch.ops.sinabs_fast, name).default
        except AttributeError:
            raise ImportError(f"sinabs_fast: the compiled extension has no op {name!r}: it is "
                              f"older than the Python code. {REBUILD}") from None
        self.name = name
        arguments = self.op._schema.arguments
        self.names: Tuple[str, ...] = tuple(a.name for a in arguments)
        self.types: Dict[str, str] = {a.name: str(a.type) for a in arguments}  # "Optional[Tensor]"
        # The options: the arguments that are no tensors (flags, kinds, numbers), in schema order.
        self.options = tuple(n for n in self.names if "Tensor" not in self.types[n])
        self.returns = tuple(r.name for r in self.op._schema.returns)  # the outputs' names
        self._known = frozenset(self.names)
        self._in_order = operator.itemgetter(*self.names)  # values by name -> schema order
        self._index = _C.op_index(name)  # for direct()

    def options_for(self, other: "OpSchema") -> Tuple[str, ...]:
        """The non-tensor arguments (spike, reset, surrogate options) that ``other`` (the
        backward) takes too: what a forward's autograd context passes on to it."""
        return tuple(n for n in self.options if n in other._known)

    def bind(self, args: Sequence) -> Dict[str, object]:
        """Positional arguments (in schema order) by name."""
        return dict(zip(self.names, args))

    def args(self, **values) -> tuple:
        """The positional arguments of a call, in schema order, from keyword ``values``."""
        if len(values) != len(self.names) or not values.keys() <= self._known:
            missing = [n for n in self.names if n not in values]
            unknown = [n for n in values if n not in self.names]
            raise TypeError(f"sinabs_fast::{self.name}: missing arguments {missing}, "
                            f"unknown arguments {unknown} (if the compiled extension is older "
                            f"than the Python code: {REBUILD})")
        if torch.compiler.is_compiling():  # dynamo does not trace an itemgetter
            return tuple(values[n] for n in self.names)
        return self._in_order(values)

    def direct(self, args: tuple) -> tuple:
        """The op on its positional ``args`` (autograd included). In eager mode without a
        torch-function mode it is entered from C (``sinabs_fast._C.call``, csrc/python_module.cpp):
        through the dispatcher as ``torch.ops`` calls it, without ``torch.ops``' conversion of
        every argument by the schema on each call, which costs more than a tiny call's kernels
        (docs/design.md, "Host cost of a call"). torch.compile and tensor subclasses get
        ``torch.ops``."""
        if not torch.compiler.is_compiling() and not _torch_function_mode_enabled():
            out = _C.call(self._index, args)
            if out is not NotImplemented:
                return out
        return self.op(*args)

    def kernel(self, *args) -> tuple:
        """The op's device kernel on positional ``args``, dispatched below autograd: for the
        callers that bring their own autograd (the backward functions, the Python autograd
        Functions). torch.compile traces the op itself (the guard below is eager only)."""
        if torch.compiler.is_compiling():
            return self.op(*args)
        with _BelowAutograd():
            return self.direct(args)

    def __call__(self, **values) -> tuple:
        """Runs the op's kernel on keyword arguments (all of them, by their schema names): what
        the backward functions call (see :meth:`kernel`)."""
        return self.kernel(*self.args(**values))

    def empty_problem(self, inputs: Sequence, needs: Sequence[bool]) -> Optional[tuple]:
        """For a call whose sequence has no elements (a batch of 0 or 0 neurons): the shape,
        dtype and device of each tensor argument that needs a gradient (None for the others),
        which :meth:`zero_gradients` turns into the backward's result without running a kernel.
        None when the call is not empty. The kernels read an empty tensor as an absent
        argument, so an empty problem never reaches them in the backward."""
        if inputs[0].numel():
            return None
        return tuple((t.shape, t.dtype, t.device) if need and isinstance(t, Tensor) else None
                     for t, need in zip(inputs, needs))

    @staticmethod
    def zero_gradients(empty_problem: tuple) -> tuple:
        """The gradients of an empty call (see :meth:`empty_problem`): zeros, empty for the
        sequence itself, as autograd gives through plain torch ops."""
        return tuple(None if m is None else torch.zeros(m[0], dtype=m[1], device=m[2])
                     for m in empty_problem)

    def gradients(self, **grads: Optional[Tensor]) -> tuple:
        """An autograd backward's result: one entry per argument in schema order, ``grads`` by
        name and None for every other argument (the schema decides how many)."""
        return tuple(grads.get(n) for n in self.names)


def require_autograd_kernel(schema: OpSchema) -> None:
    """Raises ImportError unless the compiled extension registers the op's autograd kernel
    (csrc/op_autograd.cpp): an extension older than the Python code would otherwise run the op
    without gradients."""
    if not torch._C._dispatch_has_kernel_for_dispatch_key(f"sinabs_fast::{schema.name}",
                                                         "Autograd"):
        raise ImportError(f"sinabs_fast: the compiled extension has no autograd kernel for "
                          f"{schema.name!r}: it is older than the Python code. {REBUILD}")
