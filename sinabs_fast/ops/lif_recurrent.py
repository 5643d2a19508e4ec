"""``lif_recurrent_forward`` / ``lif_recurrent_backward``: a recurrent LIF-family layer whose
recurrent map is linear, over all T steps in one op call (CPU and CUDA), with its fake kernels
and autograd."""

from typing import NamedTuple

import torch
from torch import Tensor

from .fake_outputs import FakeOutputs, forward_fake
from .options import LIF_OPTIONS, require_builtin_surrogate
from .public_function import public_function
from .recurrent_autograd import register_recurrent_autograd
from .schema import OpSchema

RECURRENT_FORWARD = OpSchema("lif_recurrent_forward")
RECURRENT_BACKWARD = OpSchema("lif_recurrent_backward")


class RecurrentOutputs(NamedTuple):
    spikes: Tensor  # (B, T, N) float32
    v_hat_tm: Tensor  # (T, B, N) pre-spike membrane; empty unless keep_sequences
    i_seq_tm: Tensor  # (T, B, N) synaptic current; empty unless kept (with i_syn)
    totals_tm: Tensor  # (T, B, N) each step's total input; empty unless kept
    v_post_tm: Tensor  # (T, B, N) membrane after each step; empty unless kept
    v_mem: Tensor
    i_syn: Tensor
    spike_counts: Tensor  # (B, N) float32


@public_function(RECURRENT_FORWARD, dict(LIF_OPTIONS, keep_sequences=True))
def lif_recurrent_forward(args: tuple) -> RecurrentOutputs:
    """A recurrent LIF-family layer over all T steps in one op call, for a recurrent map
    ``nn.Linear(N, N)`` (``weight``, ``bias``): step t's input is ``input[:, t] + spikes_{t-1}
    @ weight.T + bias`` (zeros at t = 0), computed with nn.Linear's own addmm, then
    :func:`~sinabs_fast.ops.lif_forward`'s neuron step. Gradients reach the input, the initial
    states, the alphas, ``weight`` and ``bias``; keep the sequences whenever a gradient is
    needed."""
    return RecurrentOutputs(
        *call_lif_recurrent(require_builtin_surrogate(RECURRENT_FORWARD, args)))


torch.library.register_fake("sinabs_fast::lif_recurrent_forward",
                            forward_fake(RECURRENT_FORWARD))


@torch.library.register_fake("sinabs_fast::lif_recurrent_backward")
def _lif_recurrent_backward_fake(*args):
    a = RECURRENT_BACKWARD.bind(args)
    out, weight = FakeOutputs(a["v_hat_tm"].transpose(0, 1)), a["weight"]
    syn = a["alpha_syn"] is not None
    return (
        out.dense(), out.per_neuron(), out.per_neuron(syn),
        out.gradient(a["alpha_mem"], a["alpha_mem_grad"]),
        out.gradient(a["alpha_syn"], syn and a["alpha_syn_grad"]),
        out.gradient(weight, a["weight_grad"]),
        weight.new_empty((out.neurons,)) if a["weight_grad"] else out.empty(),
    )


# The op on its positional arguments, with its autograd (see register_recurrent_autograd).
call_lif_recurrent = register_recurrent_autograd(
    RECURRENT_FORWARD, RECURRENT_BACKWARD)
