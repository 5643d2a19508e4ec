"""Typed wrappers around ``torch.ops.sinabs_fast``, with their fake kernels and autograd.

One module per op family: :mod:`.lif` (``lif_forward`` / ``lif_backward``: IAF, LIF, ExpLeak),
:mod:`.lif_recurrent` (a recurrent layer with a linear recurrent map), :mod:`.alif`
(adaptive LIF) and :mod:`.alif_recurrent` (its recurrent layer with a linear map). Shapes:
``input`` is ``(B, T, N)``; states are ``(B, N)``; parameters broadcast to ``(B, N)``. The
schemas are defined once, in csrc/sinabs_fast.cpp; :mod:`.schema` reads the argument names from
them, so no argument list is written out here: the public functions are made from the schemas
(:mod:`.public_function`: the tensors positional, the options keyword-only, their defaults in
:mod:`.options`). The readable specification of every op is :mod:`sinabs_fast.reference`.

Autograd: ``lif_forward`` and ``alif_forward`` have their own, in C++ (csrc/op_autograd.cpp,
registered for the Autograd dispatch key): a call with grad records one C++ node and no Python
runs, and torch.compile traces the forward and backward ops. A LIF-family call with a Python
surrogate (``surrogate_kind=PRECOMPUTED``) runs through the Python autograd Function
:class:`.lif.FusedLIF` instead, which saves the same tensors and runs the same backward op;
``tests/test_ops.py::test_eager_function_equals_the_registered_autograd`` checks that both give
identical outputs and gradients.

Eager calls enter the ops from C (:meth:`.schema.OpSchema.direct`, ``sinabs_fast._C.call``),
through the dispatcher as ``torch.ops`` does, without its conversion of every argument by the
schema on each call; the recurrent ops' registered autograd runs as a plain autograd Function in
eager mode (:mod:`.recurrent_autograd`).
"""

from .alif import ALIFOutputs, alif_backward, alif_forward
from .alif_recurrent import ALIFRecurrentOutputs, alif_recurrent_forward
from .kinds import ResetKind, SpikeKind, SurrogateKind
from .lif import LIFOutputs, call_lif_forward, lif_backward, lif_forward
from .lif_recurrent import RecurrentOutputs, lif_recurrent_forward

__all__ = [
    "SpikeKind",
    "ResetKind",
    "SurrogateKind",
    "LIFOutputs",
    "lif_forward",
    "lif_backward",
    "call_lif_forward",
    "RecurrentOutputs",
    "lif_recurrent_forward",
    "ALIFOutputs",
    "alif_forward",
    "alif_backward",
    "ALIFRecurrentOutputs",
    "alif_recurrent_forward",
]
