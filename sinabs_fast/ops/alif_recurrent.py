"""``alif_recurrent_forward`` / ``alif_recurrent_backward``: a recurrent ALIF layer whose
recurrent map is linear, over all T steps in one op call (CPU and CUDA), with its fake kernels
and autograd."""

from typing import NamedTuple

import torch
from torch import Tensor

from .fake_outputs import FakeOutputs, forward_fake
from .options import ALIF_OPTIONS, require_builtin_surrogate
from .public_function import public_function
from .recurrent_autograd import register_recurrent_autograd
from .schema import OpSchema

ALIF_RECURRENT_FORWARD = OpSchema("alif_recurrent_forward")
ALIF_RECURRENT_BACKWARD = OpSchema("alif_recurrent_backward")


class ALIFRecurrentOutputs(NamedTuple):
    spikes: Tensor  # (B, T, N) float32
    v_hat_tm: Tensor  # (T, B, N) pre-spike membrane; empty unless keep_sequences
    i_seq_tm: Tensor  # (T, B, N) stored synaptic current; empty unless kept (with i_syn)
    b_seq_tm: Tensor  # (T, B, N) adaptation state after every step; empty unless kept
    totals_tm: Tensor  # (T, B, N) each step's total input; empty unless kept
    v_post_tm: Tensor  # (T, B, N) membrane after each step; empty unless kept
    v_mem: Tensor  # final states, shaped like the state arguments (i_syn: empty without)
    i_syn: Tensor
    b: Tensor
    spike_counts: Tensor  # (B, N) float32


@public_function(ALIF_RECURRENT_FORWARD, dict(ALIF_OPTIONS, keep_sequences=True))
def alif_recurrent_forward(args: tuple) -> ALIFRecurrentOutputs:
    """A recurrent ALIF layer over all T steps in one op call, for a recurrent map
    ``nn.Linear(N, N)`` (``weight``, ``bias``): step t's input is ``input[:, t] + spikes_{t-1}
    @ weight.T + bias`` (zeros at t = 0), computed with nn.Linear's own addmm, then
    :func:`~sinabs_fast.ops.alif_forward`'s neuron step. Gradients reach the input, the initial
    states, the three alphas, ``weight`` and ``bias``; keep the sequences whenever a gradient is
    needed."""
    return ALIFRecurrentOutputs(
        *call_alif_recurrent(require_builtin_surrogate(ALIF_RECURRENT_FORWARD, args)))


torch.library.register_fake("sinabs_fast::alif_recurrent_forward",
                            forward_fake(ALIF_RECURRENT_FORWARD))


@torch.library.register_fake("sinabs_fast::alif_recurrent_backward")
def _alif_recurrent_backward_fake(*args):
    a = ALIF_RECURRENT_BACKWARD.bind(args)
    out, weight, alphas = FakeOutputs(a["v_hat_tm"].transpose(0, 1)), a["weight"], a["alpha_grads"]
    syn = a["alpha_syn"] is not None
    return (
        out.dense(), out.per_neuron(), out.per_neuron(syn), out.per_neuron(),
        out.gradient(a["alpha_mem"], alphas), out.gradient(a["alpha_syn"], alphas and syn),
        out.gradient(a["alpha_adapt"], alphas), out.gradient(weight, a["weight_grad"]),
        weight.new_empty((out.neurons,)) if a["weight_grad"] else out.empty(),
    )


# The op on its positional arguments, with its autograd (see register_recurrent_autograd).
call_alif_recurrent = register_recurrent_autograd(
    ALIF_RECURRENT_FORWARD, ALIF_RECURRENT_BACKWARD)
