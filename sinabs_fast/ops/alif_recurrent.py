"""``alif_recurrent_forward`` / ``alif_recurrent_backward``: a recurrent ALIF layer whose
recurrent map is linear, over all T steps in one op call (CPU and CUDA), with its fake kernels
and autograd."""

from typing import NamedTuple, Optional, Sequence

import torch
from torch import Tensor

from .fake_outputs import FakeOutputs
from .kinds import ResetKind, SpikeKind, SurrogateKind
from .schema import OpSchema

ALIF_RECURRENT_FORWARD = OpSchema("alif_recurrent_forward")
ALIF_RECURRENT_BACKWARD = OpSchema("alif_recurrent_backward")
_OPTIONS = ALIF_RECURRENT_FORWARD.options_for(ALIF_RECURRENT_BACKWARD)
ALPHAS = ("alpha_mem", "alpha_syn", "alpha_adapt")  # the parameters with a fused gradient


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


def alif_recurrent_forward(
    input: Tensor,
    v_mem: Tensor,
    i_syn: Optional[Tensor],
    b: Tensor,
    alpha_mem: Tensor,
    alpha_syn: Optional[Tensor],
    alpha_adapt: Tensor,
    b0: Tensor,
    adapt_scale: Tensor,
    subtract_value: Optional[Tensor],
    min_v_mem: Optional[Tensor],
    weight: Tensor,
    bias: Optional[Tensor],
    *,
    norm_input: bool = True,
    spike_kind: int = SpikeKind.SINGLE,
    max_spikes: float = float("inf"),
    reset_kind: int = ResetKind.SUBTRACT,
    reset_value: float = 0.0,
    surrogate_kind: int = SurrogateKind.SINGLE_EXPONENTIAL,
    surrogate_params: Sequence[float] = (0.5, 1.0),
    keep_sequences: bool = True,
) -> ALIFRecurrentOutputs:
    """A recurrent ALIF layer over all T steps in one op call, for a recurrent map
    ``nn.Linear(N, N)`` (``weight``, ``bias``): step t's input is ``input[:, t] + spikes_{t-1}
    @ weight.T + bias`` (zeros at t = 0), computed with nn.Linear's own addmm, then
    :func:`~sinabs_fast.ops.alif_forward`'s neuron step. Gradients reach the input, the initial
    states, the three alphas, ``weight`` and ``bias``; keep the sequences whenever a gradient is
    needed."""
    if surrogate_kind == SurrogateKind.PRECOMPUTED:
        raise ValueError("alif_recurrent_forward: surrogate_kind must be a built-in surrogate")
    return ALIFRecurrentOutputs(
        *ALIF_RECURRENT_FORWARD.op(*ALIF_RECURRENT_FORWARD.args_from(locals())))


@torch.library.register_fake("sinabs_fast::alif_recurrent_forward")
def _alif_recurrent_forward_fake(*args):
    a = ALIF_RECURRENT_FORWARD.bind(args)
    out, keep = FakeOutputs(a["input"]), a["keep_sequences"]
    syn = a["alpha_syn"] is not None
    return (
        out.spikes(), out.time_major(keep), out.time_major(keep and syn), out.time_major(keep),
        out.time_major(keep), out.time_major(keep),
        out.state(a["v_mem"]), out.state(a["i_syn"], syn), out.state(a["b"]), out.counts(),
    )


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


def _setup_context(ctx, inputs, output):
    a = ALIF_RECURRENT_FORWARD.bind(inputs)
    ctx.set_materialize_grads(False)
    ctx.needs = ALIF_RECURRENT_FORWARD.bind(ctx.needs_input_grad)
    ctx.syn = a["alpha_syn"] is not None
    ctx.state_shape = a["v_mem"].shape
    ctx.options = {k: a[k] for k in _OPTIONS}
    ctx.save_for_backward(
        *output[:6], a["v_mem"], a["i_syn"], a["b"], a["alpha_mem"], a["alpha_syn"],
        a["alpha_adapt"], a["b0"], a["adapt_scale"], a["subtract_value"], a["min_v_mem"],
        a["weight"],
    )


def _backward(ctx, *grads):
    (spikes, v_hat_tm, i_seq_tm, b_seq_tm, totals_tm, v_post_tm, v_mem, i_syn, b, alpha_mem,
     alpha_syn, alpha_adapt, b0, adapt_scale, subtract_value, min_v_mem,
     weight) = ctx.saved_tensors
    if v_hat_tm.numel() == 0:
        raise RuntimeError(
            "sinabs_fast.ops.alif_recurrent_forward: the backward needs keep_sequences=True")
    grads = [g if g is not None and g.numel() else None for g in grads]
    g_spikes, g_v_hat, g_i_seq, g_b_seq, _, _, g_v_mem, g_i_syn, g_b, g_counts = grads
    flat = (v_hat_tm.shape[1], v_hat_tm.shape[2])  # the states as (B, N)
    needs = ctx.needs
    alpha_grads = any(needs[k] for k in ALPHAS)
    g_input, g_v0, g_i0, g_b0, g_am, g_as, g_aa, g_w, g_bias = ALIF_RECURRENT_BACKWARD(
        grad_spikes=g_spikes, grad_v_hat_tm=g_v_hat, grad_i_seq_tm=g_i_seq,
        grad_b_seq_tm=g_b_seq, grad_v_mem=g_v_mem.reshape(flat) if g_v_mem is not None else None,
        grad_i_syn=g_i_syn.reshape(flat) if g_i_syn is not None else None,
        grad_b=g_b.reshape(flat) if g_b is not None else None, grad_counts=g_counts,
        spikes=spikes, v_hat_tm=v_hat_tm, i_seq_tm=i_seq_tm, b_seq_tm=b_seq_tm,
        totals_tm=totals_tm, v_post_tm=v_post_tm, v_mem=v_mem, i_syn=i_syn, b=b,
        alpha_mem=alpha_mem, alpha_syn=alpha_syn, alpha_adapt=alpha_adapt, b0=b0,
        adapt_scale=adapt_scale, subtract_value=subtract_value, min_v_mem=min_v_mem,
        weight=weight, alpha_grads=alpha_grads,
        weight_grad=bool(needs["weight"] or needs["bias"]), **ctx.options,
    )
    return ALIF_RECURRENT_FORWARD.gradients(
        input=g_input, v_mem=g_v0.reshape(ctx.state_shape),
        i_syn=g_i0.reshape(ctx.state_shape) if ctx.syn else None,
        b=g_b0.reshape(ctx.state_shape),
        alpha_mem=g_am if needs["alpha_mem"] else None,
        alpha_syn=g_as if needs["alpha_syn"] else None,
        alpha_adapt=g_aa if needs["alpha_adapt"] else None,
        weight=g_w if needs["weight"] else None, bias=g_bias if needs["bias"] else None,
    )


torch.library.register_autograd(
    "sinabs_fast::alif_recurrent_forward", _backward, setup_context=_setup_context,
)
