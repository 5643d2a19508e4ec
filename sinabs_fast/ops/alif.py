"""``alif_forward`` / ``alif_backward``: all T steps of adaptive LIF neurons in one fused kernel,
and its fused reverse-time backward; their fake kernels (the autograd is the op's own, in C++:
see the package's docstring)."""

from typing import NamedTuple

import torch
from torch import Tensor

from .fake_outputs import FakeOutputs, forward_fake
from .options import ALIF_OPTIONS, require_builtin_surrogate
from .public_function import public_function
from .schema import OpSchema, require_autograd_kernel

ALIF_FORWARD = OpSchema("alif_forward")
ALIF_BACKWARD = OpSchema("alif_backward")


class ALIFOutputs(NamedTuple):
    spikes: Tensor  # (B, T, N) float32
    v_hat: Tensor  # (B, T, N) pre-spike membrane; empty unless keep_sequences
    i_seq: Tensor  # (B, T, N) stored synaptic current per step; empty unless kept (with i_syn)
    b_seq: Tensor  # (B, T, N) adaptation state after every step; empty unless kept
    v_mem: Tensor  # final states, shaped like the state arguments (i_syn: empty without)
    i_syn: Tensor
    b: Tensor
    spike_counts: Tensor  # (B, N) float32 spikes summed over T


@public_function(ALIF_FORWARD, dict(ALIF_OPTIONS, subtract_value=None, min_v_mem=None,
                                    keep_sequences=True))
def alif_forward(args: tuple) -> ALIFOutputs:
    """All T steps of adaptive LIF neurons in one fused pass (sinabs 3.1.3's ``alif_forward``;
    docs/semantics.md, "ALIF").

    Per step: ``i = alpha_syn * (i + x_t)`` (or ``x_t``); with ``norm_input`` ``i = (1 -
    alpha_mem) * i`` (the stored current too); ``v = alpha_mem * v + i``; ``thr = b0 +
    adapt_scale * b``; spikes from ``(v, thr)``; the reset subtracts ``s * thr`` (or ``s *
    subtract_value``) or sets ``reset_value``; ``b = alpha_adapt * b + (1 - alpha_adapt) * s``;
    then the clamp ``relu(v - min_v_mem) + min_v_mem``. ``input`` and the states share the
    compute dtype (float32 or float64). Keep the sequences whenever a gradient is needed; the
    backward gives gradients for the input, the initial states and the three alphas.
    """
    return ALIFOutputs(*ALIF_FORWARD.direct(require_builtin_surrogate(ALIF_FORWARD, args)))


def alif_backward(*args) -> tuple:
    """The fused reverse-time BPTT kernel of :func:`alif_forward` (see csrc/sinabs_fast.cpp)."""
    return ALIF_BACKWARD.direct(args)


torch.library.register_fake("sinabs_fast::alif_forward",
                            forward_fake(ALIF_FORWARD))


@torch.library.register_fake("sinabs_fast::alif_backward")
def _alif_backward_fake(*args):
    a = ALIF_BACKWARD.bind(args)
    out, alpha_grads = FakeOutputs(a["v_hat"]), a["alpha_grads"]
    syn = a["alpha_syn"] is not None
    return (
        out.input_gradient(a["input"]), out.per_neuron(), out.per_neuron(syn), out.per_neuron(),
        out.gradient(a["alpha_mem"], alpha_grads),
        out.gradient(a["alpha_syn"], alpha_grads and syn),
        out.gradient(a["alpha_adapt"], alpha_grads),
    )


# Autograd: a C++ autograd kernel registered for the op (csrc/op_autograd.cpp), whose backward
# calls alif_backward through the dispatcher, so torch.compile keeps both ops in its graph.
require_autograd_kernel(ALIF_FORWARD)
