"""Typed wrappers around ``torch.ops.sinabs_fast``, with their fake kernels and autograd.

One module per op family: :mod:`.lif` (``lif_forward`` / ``lif_backward``: IAF, LIF, ExpLeak),
:mod:`.lif_recurrent` (a recurrent layer with a linear recurrent map), :mod:`.alif`
(adaptive LIF) and :mod:`.alif_recurrent` (its recurrent layer with a linear map). Shapes:
``input`` is ``(B, T, N)``; states are ``(B, N)``; parameters broadcast to ``(B, N)``. The
schemas are defined once, in csrc/sinabs_fast.cpp; :mod:`.schema` reads the argument names from
them, so no argument list is written out here. The readable specification
of every op is :mod:`sinabs_fast.reference`.

Two autograd paths, on purpose:

- the op's registered autograd (``torch.library.register_autograd``): what ``torch.compile``
  traces (the backward is itself a custom op, so the compiled graph keeps it), and what a direct
  call of ``torch.ops.sinabs_fast.<op>`` uses;
- a plain ``torch.autograd.Function`` (:class:`.lif.FusedLIF`, :class:`.alif.FusedALIF`): what
  the layers use in eager mode. The registered wrapper rebuilds the schema's argument list on
  every forward with grad (tens of microseconds); the Function skips that, which matters most
  for the recurrent layers' one call per step.

Both share the same setup (the saved tensors) and the same backward function, and
``tests/test_ops.py::test_eager_function_equals_the_registered_autograd`` checks that they give
identical outputs and gradients.
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
