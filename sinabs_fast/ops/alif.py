"""``alif_forward`` / ``alif_backward``: all T steps of adaptive LIF neurons in one fused kernel,
and its fused reverse-time backward; their fake kernels and both autograd paths (see the
package's docstring)."""

from typing import NamedTuple, Optional, Sequence

import torch
from torch import Tensor

from .fake_outputs import FakeOutputs
from .kinds import ResetKind, SpikeKind, SurrogateKind
from .schema import OpSchema

ALIF_FORWARD = OpSchema("alif_forward")
ALIF_BACKWARD = OpSchema("alif_backward")
_OPTIONS = ALIF_FORWARD.options_for(ALIF_BACKWARD)
_ALPHAS = ("alpha_mem", "alpha_syn", "alpha_adapt")


class ALIFOutputs(NamedTuple):
    spikes: Tensor  # (B, T, N) float32
    v_hat: Tensor  # (B, T, N) pre-spike membrane; empty unless keep_sequences
    i_seq: Tensor  # (B, T, N) stored synaptic current per step; empty unless kept (with i_syn)
    b_seq: Tensor  # (B, T, N) adaptation state after every step; empty unless kept
    v_mem: Tensor  # final states, shaped like the state arguments (i_syn: empty without)
    i_syn: Tensor
    b: Tensor
    spike_counts: Tensor  # (B, N) float32 spikes summed over T


def alif_forward(
    input: Tensor,
    v_mem: Tensor,
    i_syn: Optional[Tensor],
    b: Tensor,
    alpha_mem: Tensor,
    alpha_syn: Optional[Tensor],
    alpha_adapt: Tensor,
    b0: Tensor,
    adapt_scale: Tensor,
    subtract_value: Optional[Tensor] = None,
    min_v_mem: Optional[Tensor] = None,
    *,
    norm_input: bool = True,
    spike_kind: int = SpikeKind.SINGLE,
    max_spikes: float = float("inf"),
    reset_kind: int = ResetKind.SUBTRACT,
    reset_value: float = 0.0,
    surrogate_kind: int = SurrogateKind.SINGLE_EXPONENTIAL,
    surrogate_params: Sequence[float] = (0.5, 1.0),
    keep_sequences: bool = True,
) -> ALIFOutputs:
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
    if surrogate_kind == SurrogateKind.PRECOMPUTED:
        raise ValueError("alif_forward: surrogate_kind must be a built-in surrogate (0-4)")
    return ALIFOutputs(*ALIF_FORWARD.op(*ALIF_FORWARD.args_from(locals())))


def alif_backward(*args) -> tuple:
    """The fused reverse-time BPTT kernel of :func:`alif_forward` (see csrc/sinabs_fast.cpp)."""
    return ALIF_BACKWARD.op(*args)


@torch.library.register_fake("sinabs_fast::alif_forward")
def _alif_forward_fake(*args):
    a = ALIF_FORWARD.bind(args)
    input, keep = a["input"], a["keep_sequences"]
    torch._check(input.dim() == 3, lambda: "input must have shape (batch, time, neurons)")
    out = FakeOutputs(input)
    syn = a["alpha_syn"] is not None
    return (
        out.spikes(), out.sequence(keep), out.sequence(keep and syn), out.sequence(keep),
        out.state(a["v_mem"]), out.state(a["i_syn"], syn), out.state(a["b"]), out.counts(),
    )


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


def _alif_setup_context(ctx, inputs, output):
    a = ALIF_FORWARD.bind(inputs)
    ctx.set_materialize_grads(False)
    ctx.needs = ALIF_FORWARD.bind(ctx.needs_input_grad)
    ctx.alpha_grads = any(ctx.needs[k] for k in _ALPHAS)
    ctx.syn = a["alpha_syn"] is not None
    ctx.state_shape = a["v_mem"].shape
    ctx.options = {k: a[k] for k in _OPTIONS}
    ctx.empty_problem = ALIF_FORWARD.empty_problem(inputs, ctx.needs_input_grad)
    # Saved: the three sequences (the pre-spike membrane, the current with synaptic dynamics,
    # the adaptation state), the initial adaptation state; the input and the other initial
    # states only for the alpha gradients, and a non-contiguous input (a view) for its layout,
    # which the input gradient takes (see FakeOutputs.input_gradient).
    alphas = ctx.alpha_grads
    ctx.save_for_backward(
        output[1], output[2], output[3], a["b"],
        a["input"] if alphas or not a["input"].is_contiguous() else None,
        a["v_mem"] if alphas else None,
        a["i_syn"] if alphas else None,
        a["alpha_mem"], a["alpha_syn"], a["alpha_adapt"], a["b0"], a["adapt_scale"],
        a["subtract_value"], a["min_v_mem"],
    )


def _alif_backward_autograd(ctx, *grads):
    (v_hat, i_seq, b_seq, b, input, v_mem, i_syn, alpha_mem, alpha_syn, alpha_adapt, b0,
     adapt_scale, subtract_value, min_v_mem) = ctx.saved_tensors
    if ctx.empty_problem is not None:
        return ALIF_FORWARD.zero_gradients(ctx.empty_problem)
    if v_hat.numel() == 0:
        raise RuntimeError("sinabs_fast.ops.alif_forward: the backward needs keep_sequences=True")
    grads = [g if g is not None and g.numel() else None for g in grads]
    g_spikes, g_v_hat, g_i_seq, g_b_seq, g_v_mem, g_i_syn, g_b, g_counts = grads
    empty = v_hat.new_empty((0,))
    g_input, g_v0, g_i0, g_b0, g_am, g_as, g_aa = ALIF_BACKWARD(
        grad_spikes=g_spikes, grad_v_hat=g_v_hat, grad_i_seq=g_i_seq, grad_b_seq=g_b_seq,
        grad_v_mem=g_v_mem, grad_i_syn=g_i_syn, grad_b=g_b, grad_counts=g_counts,
        v_hat=v_hat, i_seq=i_seq, b_seq=b_seq, input=input if input is not None else empty,
        v_mem=v_mem if v_mem is not None else empty, i_syn=i_syn, b=b, alpha_mem=alpha_mem,
        alpha_syn=alpha_syn, alpha_adapt=alpha_adapt, b0=b0, adapt_scale=adapt_scale,
        subtract_value=subtract_value, min_v_mem=min_v_mem, alpha_grads=ctx.alpha_grads,
        **ctx.options,
    )
    needs = ctx.needs
    # The synaptic current (its sequence and final value) depends on the input, the initial
    # current, alpha_syn and, through norm_input's rescaling, alpha_mem only. A loss that reads
    # nothing else gives the membrane and adaptation inputs no gradient: None, as in sinabs'
    # autograd graph (an optimizer skips a None gradient but applies weight decay to a zero one).
    only_current = all(g is None for g in (g_spikes, g_v_hat, g_b_seq, g_v_mem, g_b, g_counts))
    reaches_membrane = not only_current
    return ALIF_FORWARD.gradients(
        input=g_input,
        v_mem=g_v0.reshape(ctx.state_shape) if reaches_membrane else None,
        i_syn=g_i0.reshape(ctx.state_shape) if ctx.syn else None,
        b=g_b0.reshape(ctx.state_shape) if reaches_membrane else None,
        alpha_mem=g_am if needs["alpha_mem"] and (reaches_membrane or ctx.options["norm_input"])
        else None,
        alpha_syn=g_as if needs["alpha_syn"] else None,
        alpha_adapt=g_aa if needs["alpha_adapt"] and reaches_membrane else None,
    )


torch.library.register_autograd(
    "sinabs_fast::alif_forward", _alif_backward_autograd, setup_context=_alif_setup_context
)


class FusedALIF(torch.autograd.Function):
    """alif_forward with its fused backward as a plain autograd Function: several times cheaper
    per call than the op's generic ``torch.library`` autograd wrapper, which matters for the
    recurrent layer's one call per step. Same saved tensors and backward kernel as the
    registered autograd."""

    # forward(ctx, ...) rather than a separate setup_context: Function.apply then skips binding
    # the arguments with inspect.signature on every call.
    @staticmethod
    def forward(ctx, *args):
        output = ALIF_FORWARD.kernel(*args)
        _alif_setup_context(ctx, args, output)
        return output

    @staticmethod
    def backward(ctx, *grads):
        return _alif_backward_autograd(ctx, *grads)
