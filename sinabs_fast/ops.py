"""Typed wrappers around ``torch.ops.sinabs_fast``, with their fake kernels and autograd.

``lif_forward`` runs all T steps of a LIF-family neuron (IAF is ``alpha_mem = 1``) in one fused
kernel; its backward is the fused reverse-time kernel ``lif_backward``. ``alif_forward`` /
``alif_backward`` do the same for adaptive LIF neurons. Shapes: ``input`` is ``(B, T, N)``;
states are ``(B, N)``; parameters broadcast to ``(B, N)``. The readable specification of all of
them is :mod:`sinabs_fast.reference`.
"""

from enum import IntEnum
from typing import Callable, NamedTuple, Optional, Sequence

import torch
from torch import Tensor

__all__ = [
    "SpikeKind",
    "ResetKind",
    "SurrogateKind",
    "LIFOutputs",
    "lif_forward",
    "lif_backward",
    "RecurrentOutputs",
    "lif_recurrent_forward",
    "ALIFOutputs",
    "alif_forward",
    "alif_backward",
]


class SpikeKind(IntEnum):
    """Spike generation; mirrors ``sinabs_fast::SpikeKind`` in csrc/include/sinabs_fast/neuron.h."""

    NONE = 0  # ExpLeak: no spikes, the output is the pre-clamp membrane
    MULTI = 1  # MultiSpike, and MaxSpike(n) with max_spikes = n
    SINGLE = 2


class ResetKind(IntEnum):
    SUBTRACT = 0  # MembraneSubtract: v - s * reset_amount
    TO_VALUE = 1  # MembraneReset: v * (s == 0) + reset_value


class SurrogateKind(IntEnum):
    """Mirrors ``sinabs_fast::SurrogateKind`` in csrc/include/sinabs_fast/surrogate.h."""

    SINGLE_EXPONENTIAL = 0
    PERIODIC_EXPONENTIAL = 1
    HEAVISIDE = 2
    GAUSSIAN = 3
    MULTI_GAUSSIAN = 4
    PRECOMPUTED = 5  # any other callable, evaluated with torch on the saved membrane


class LIFOutputs(NamedTuple):
    spikes: Tensor  # (B, T, N) float32; empty without spikes
    v_hat: Tensor  # (B, T, N) pre-spike membrane; empty unless kept
    i_seq: Tensor  # (B, T, N) synaptic current per step; empty unless kept
    v_mem: Tensor  # final membrane, shaped like the v_mem argument
    i_syn: Tensor  # final synaptic current, shaped like i_syn; empty without synaptic current
    spike_counts: Tensor  # (B, N) float32 spikes summed over T; empty without spikes


def lif_forward(
    input: Tensor,
    v_mem: Tensor,
    i_syn: Optional[Tensor],
    alpha_mem: Tensor,
    alpha_syn: Optional[Tensor],
    threshold: Tensor,
    reset_amount: Tensor,
    min_v_mem: Optional[Tensor] = None,
    *,
    norm_input: bool = False,
    spike_kind: int = SpikeKind.MULTI,
    max_spikes: float = float("inf"),
    reset_kind: int = ResetKind.SUBTRACT,
    reset_value: float = 0.0,
    surrogate_kind: int = SurrogateKind.SINGLE_EXPONENTIAL,
    surrogate_params: Sequence[float] = (0.5, 1.0),
    surrogate_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
    keep_v_hat: bool = True,
    keep_i_syn: bool = False,
) -> LIFOutputs:
    """All T steps of a LIF-family neuron in one fused pass (sinabs 3.1.3 semantics, §5.3).

    Per step: ``i = alpha_syn * (i + x_t)`` (or ``i = x_t``); ``v_hat = alpha_mem * v + s_in * i``
    with ``s_in = 1 - alpha_mem`` if ``norm_input`` else 1; spikes from ``v_hat``; reset; then the
    clamp ``relu(v - min_v_mem) + min_v_mem``. ``input`` and the states share the compute dtype
    (float32 or float64). ``reset_amount``'s dtype sets the rounding of ``s * reset_amount``
    (float32 unless float64). The surrogate arguments only matter for the backward; with
    ``surrogate_kind=PRECOMPUTED`` pass ``surrogate_fn(v_hat, threshold)``, a torch callable.
    A gradient needs ``keep_v_hat`` on CUDA and with ``PRECOMPUTED``; on the CPU without it the
    backward recomputes the forward (less memory traffic: nothing of size (B, T, N) is saved).
    """
    args = (
        input, v_mem, i_syn, alpha_mem, alpha_syn, norm_input, threshold, reset_amount,
        min_v_mem, int(spike_kind), float(max_spikes), int(reset_kind), float(reset_value),
        int(surrogate_kind), [float(p) for p in surrogate_params], keep_v_hat, keep_i_syn,
    )
    precomputed = surrogate_kind == SurrogateKind.PRECOMPUTED
    if precomputed and surrogate_fn is None:
        raise ValueError("surrogate_fn is required when surrogate_kind is PRECOMPUTED")
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad
        for t in (input, v_mem, i_syn, alpha_mem, alpha_syn, threshold, reset_amount, min_v_mem)
    )
    return LIFOutputs(*call_lif_forward(args, needs_grad, surrogate_fn if precomputed else None))


def call_lif_forward(args: tuple, needs_grad: bool,
                     surrogate_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None) -> tuple:
    """The op on its schema's positional ``args``. With a gradient in eager mode it runs through
    :class:`_FusedLIF`, which is cheaper per call than the op's registered autograd;
    torch.compile traces the op itself (a callable ``surrogate_fn`` always needs the Function)."""
    if not needs_grad or (torch.compiler.is_compiling() and surrogate_fn is None):
        return torch.ops.sinabs_fast.lif_forward.default(*args)
    return _FusedLIF.apply(surrogate_fn, *args)


def lif_backward(*args) -> tuple:
    """The fused reverse-time BPTT kernel of :func:`lif_forward` (see csrc/sinabs_fast.cpp)."""
    return torch.ops.sinabs_fast.lif_backward.default(*args)


# --------------------------------------------------------------------------------------------
# Fake kernels: shapes and dtypes only, so that torch.compile can trace the ops.


@torch.library.register_fake("sinabs_fast::lif_forward")
def _lif_forward_fake(input, v_mem, i_syn, alpha_mem, alpha_syn, norm_input, threshold,
                      reset_amount, min_v_mem, spike_kind, max_spikes, reset_kind, reset_value,
                      surrogate_kind, surrogate_params, keep_v_hat, keep_i_syn):
    torch._check(input.dim() == 3, lambda: "input must have shape (batch, time, neurons)")
    B, T, N = input.shape
    empty = lambda: input.new_empty((0,))  # noqa: E731  (a new one each time: no aliasing)
    spiking = spike_kind != SpikeKind.NONE
    syn = alpha_syn is not None
    f32 = torch.float32
    return (
        input.new_empty((B, T, N), dtype=f32) if spiking else input.new_empty((0,), dtype=f32),
        torch.empty_like(input) if keep_v_hat else empty(),
        torch.empty_like(input) if syn and keep_i_syn else empty(),
        v_mem.new_empty(v_mem.shape),
        i_syn.new_empty(i_syn.shape) if syn else empty(),
        input.new_empty((B, N), dtype=f32) if spiking else input.new_empty((0,), dtype=f32),
    )


@torch.library.register_fake("sinabs_fast::lif_backward")
def _lif_backward_fake(grad_spikes, grad_v_hat, grad_i_seq, grad_v_mem, grad_i_syn, grad_counts,
                       v_hat, i_seq, v_mem, i_syn, input, alpha_mem, alpha_syn, norm_input,
                       threshold, reset_amount, min_v_mem, spike_kind, max_spikes, reset_kind,
                       reset_value, surrogate_kind, surrogate_params, surrogate_values,
                       alpha_mem_grad, alpha_syn_grad):
    like = v_hat if v_hat.numel() else input  # without v_hat the backward recomputes it
    B, T, N = like.shape
    empty = lambda: like.new_empty((0,))  # noqa: E731
    syn = alpha_syn is not None
    return (
        torch.empty_like(like),
        like.new_empty((B, N)),
        like.new_empty((B, N)) if syn else empty(),
        torch.empty_like(alpha_mem) if alpha_mem_grad else empty(),
        torch.empty_like(alpha_syn) if syn and alpha_syn_grad else empty(),
    )


# --------------------------------------------------------------------------------------------
# Autograd: the backward is itself a custom op, so torch.compile keeps it in the graph.

_FORWARD_ARGS = (
    "input", "v_mem", "i_syn", "alpha_mem", "alpha_syn", "norm_input", "threshold",
    "reset_amount", "min_v_mem", "spike_kind", "max_spikes", "reset_kind", "reset_value",
    "surrogate_kind", "surrogate_params", "keep_v_hat", "keep_i_syn",
)


def _setup_context(ctx, inputs, output, needs_input_grad=None):
    a = dict(zip(_FORWARD_ARGS, inputs))
    ctx.set_materialize_grads(False)
    needs = dict(zip(_FORWARD_ARGS, needs_input_grad or ctx.needs_input_grad))
    ctx.alpha_mem_grad = bool(needs["alpha_mem"])
    ctx.alpha_syn_grad = bool(needs["alpha_syn"])
    ctx.state_shape = a["v_mem"].shape
    ctx.options = {k: a[k] for k in ("norm_input", "spike_kind", "max_spikes", "reset_kind",
                                     "reset_value", "surrogate_kind", "surrogate_params")}
    # Saved: the pre-spike membrane (one value per neuron-step) and small per-neuron tensors;
    # i_seq only for the alpha gradients with synaptic current; the input for the alpha_mem
    # gradient with norm_input and no synaptic current. Without a kept v_hat (keep_v_hat=False)
    # the CPU backward recomputes the forward: then the input and the initial states instead.
    syn = a["alpha_syn"] is not None
    recompute = output[1].numel() == 0
    need_i_seq = syn and (ctx.alpha_mem_grad or ctx.alpha_syn_grad) and not recompute
    need_input = recompute or (ctx.alpha_mem_grad and a["norm_input"] and not syn)
    ctx.save_for_backward(
        output[1],
        output[2] if need_i_seq else None,
        a["v_mem"] if ctx.alpha_mem_grad or recompute else None,
        a["i_syn"] if recompute else None,
        a["input"] if need_input else None,
        a["alpha_mem"], a["alpha_syn"], a["threshold"], a["reset_amount"], a["min_v_mem"],
    )


def _backward_kernel(ctx, grads, surrogate_values):
    (v_hat, i_seq, v_mem, i_syn, input, alpha_mem, alpha_syn, threshold, reset_amount,
     min_v_mem) = ctx.saved_tensors
    # Absent outputs are empty tensors; their gradients (None, or empty when materialised) too.
    grads = [g if g is not None and g.numel() else None for g in grads]
    g_spikes, g_v_hat, g_i_seq, g_v_mem, g_i_syn, g_counts = grads
    like = v_hat if v_hat.numel() else input
    flat = (like.shape[0], like.shape[2])
    g_v_mem = g_v_mem.reshape(flat) if g_v_mem is not None else None
    g_i_syn = g_i_syn.reshape(flat) if g_i_syn is not None else None
    o = ctx.options
    empty = like.new_empty((0,))
    out = torch.ops.sinabs_fast.lif_backward.default(
        g_spikes, g_v_hat, g_i_seq, g_v_mem, g_i_syn, g_counts, v_hat,
        i_seq if i_seq is not None else empty, v_mem if v_mem is not None else empty, i_syn,
        input, alpha_mem, alpha_syn, o["norm_input"], threshold, reset_amount, min_v_mem,
        o["spike_kind"], o["max_spikes"], o["reset_kind"], o["reset_value"],
        o["surrogate_kind"], o["surrogate_params"], surrogate_values,
        ctx.alpha_mem_grad, ctx.alpha_syn_grad,
    )
    g_input, g_v0, g_i0, g_alpha_mem, g_alpha_syn = out
    return (
        g_input, g_v0.reshape(ctx.state_shape),
        g_i0.reshape(ctx.state_shape) if alpha_syn is not None else None,
        g_alpha_mem if ctx.alpha_mem_grad else None,
        g_alpha_syn if ctx.alpha_syn_grad else None,
    ) + (None,) * 12


def _lif_backward_autograd(ctx, *grads):
    return _backward_kernel(ctx, grads, None)


torch.library.register_autograd(
    "sinabs_fast::lif_forward", _lif_backward_autograd, setup_context=_setup_context
)


def _surrogate_for(fn: Callable, v_hat: Tensor, threshold: Tensor) -> Tensor:
    """Evaluates a torch surrogate on the saved membrane; a per-neuron threshold (B, N) is lined
    up with v_hat (B, T, N), a scalar one is passed as it is (as sinabs passes it)."""
    thr = threshold if threshold.dim() == 0 else threshold.expand(
        v_hat.shape[0], v_hat.shape[2]).unsqueeze(1)
    return fn(v_hat, thr).to(v_hat.dtype).expand_as(v_hat).contiguous()


class _FusedLIF(torch.autograd.Function):
    """lif_forward with its fused backward, as a plain autograd Function: the eager route of
    :func:`lif_forward`. The op's generic ``torch.library`` autograd wrapper (registered above,
    which torch.compile uses) rebuilds the schema's argument list on every forward with grad
    (``fill_defaults``, ~55 us for 17 arguments); this skips it. ``surrogate_fn`` is a torch
    callable whose values on the saved membrane the fused backward reads (surrogate_kind
    PRECOMPUTED), or None for a fused surrogate."""

    # forward(ctx, ...) rather than a separate setup_context: Function.apply then skips binding
    # the arguments with inspect.signature on every call.
    @staticmethod
    def forward(ctx, surrogate_fn, *args):
        output = torch.ops.sinabs_fast.lif_forward.default(*args)
        ctx.surrogate_fn = surrogate_fn
        _setup_context(ctx, args, output, ctx.needs_input_grad[1:])
        return output

    @staticmethod
    def backward(ctx, *grads):
        sigma = None
        if ctx.surrogate_fn is not None and ctx.options["spike_kind"] != SpikeKind.NONE:
            v_hat, threshold = ctx.saved_tensors[0], ctx.saved_tensors[7]
            with torch.no_grad():
                sigma = _surrogate_for(ctx.surrogate_fn, v_hat, threshold)
        return (None,) + _backward_kernel(ctx, grads, sigma)


# --------------------------------------------------------------------------------------------
# Recurrent LIF-family layers with a linear recurrent map


class RecurrentOutputs(NamedTuple):
    spikes: Tensor  # (B, T, N) float32
    v_hat_tm: Tensor  # (T, B, N) pre-spike membrane; empty unless keep_sequences
    i_seq_tm: Tensor  # (T, B, N) synaptic current; empty unless kept (with i_syn)
    totals_tm: Tensor  # (T, B, N) each step's total input; empty unless kept
    v_post_tm: Tensor  # (T, B, N) membrane after each step; empty unless kept
    v_mem: Tensor
    i_syn: Tensor
    spike_counts: Tensor  # (B, N) float32


def lif_recurrent_forward(
    input: Tensor,
    v_mem: Tensor,
    i_syn: Optional[Tensor],
    alpha_mem: Tensor,
    alpha_syn: Optional[Tensor],
    threshold: Tensor,
    reset_amount: Tensor,
    min_v_mem: Optional[Tensor],
    weight: Tensor,
    bias: Optional[Tensor],
    *,
    norm_input: bool = False,
    spike_kind: int = SpikeKind.MULTI,
    max_spikes: float = float("inf"),
    reset_kind: int = ResetKind.SUBTRACT,
    reset_value: float = 0.0,
    surrogate_kind: int = SurrogateKind.SINGLE_EXPONENTIAL,
    surrogate_params: Sequence[float] = (0.5, 1.0),
    keep_sequences: bool = True,
) -> RecurrentOutputs:
    """A recurrent LIF-family layer over all T steps in one op call (CPU), for a recurrent map
    ``nn.Linear(N, N)`` (``weight``, ``bias``): step t's input is ``input[:, t] + spikes_{t-1}
    @ weight.T + bias`` (zeros at t = 0), computed with nn.Linear's own addmm, then
    :func:`lif_forward`'s neuron step. Gradients reach the input, the initial states, the
    alphas, ``weight`` and ``bias``; keep the sequences whenever a gradient is needed."""
    if surrogate_kind == SurrogateKind.PRECOMPUTED:
        raise ValueError("lif_recurrent_forward: surrogate_kind must be a built-in surrogate")
    return RecurrentOutputs(*torch.ops.sinabs_fast.lif_recurrent_forward.default(
        input, v_mem, i_syn, alpha_mem, alpha_syn, norm_input, threshold, reset_amount,
        min_v_mem, weight, bias, int(spike_kind), float(max_spikes), int(reset_kind),
        float(reset_value), int(surrogate_kind), [float(p) for p in surrogate_params],
        keep_sequences,
    ))


@torch.library.register_fake("sinabs_fast::lif_recurrent_forward")
def _lif_recurrent_forward_fake(input, v_mem, i_syn, alpha_mem, alpha_syn, norm_input,
                                threshold, reset_amount, min_v_mem, weight, bias, spike_kind,
                                max_spikes, reset_kind, reset_value, surrogate_kind,
                                surrogate_params, keep_sequences):
    B, T, N = input.shape
    syn = alpha_syn is not None

    def sequence(kept: bool) -> Tensor:
        return input.new_empty((T, B, N)) if kept else input.new_empty((0,))

    return (
        input.new_empty((B, T, N), dtype=torch.float32),
        sequence(keep_sequences), sequence(keep_sequences and syn), sequence(keep_sequences),
        sequence(keep_sequences),
        v_mem.new_empty(v_mem.shape),
        i_syn.new_empty(i_syn.shape) if syn else input.new_empty((0,)),
        input.new_empty((B, N), dtype=torch.float32),
    )


@torch.library.register_fake("sinabs_fast::lif_recurrent_backward")
def _lif_recurrent_backward_fake(grad_spikes, grad_v_hat_tm, grad_i_seq_tm, grad_v_mem,
                                 grad_i_syn, grad_counts, spikes, v_hat_tm, i_seq_tm, totals_tm,
                                 v_post_tm, v_mem, alpha_mem, alpha_syn, norm_input, threshold,
                                 reset_amount, min_v_mem, weight, spike_kind, max_spikes,
                                 reset_kind, reset_value, surrogate_kind, surrogate_params,
                                 alpha_mem_grad, alpha_syn_grad, weight_grad):
    T, B, N = v_hat_tm.shape
    syn = alpha_syn is not None

    def empty() -> Tensor:
        return v_hat_tm.new_empty((0,))

    return (
        v_hat_tm.new_empty((B, T, N)),
        v_hat_tm.new_empty((B, N)),
        v_hat_tm.new_empty((B, N)) if syn else empty(),
        torch.empty_like(alpha_mem) if alpha_mem_grad else empty(),
        torch.empty_like(alpha_syn) if syn and alpha_syn_grad else empty(),
        torch.empty_like(weight) if weight_grad else empty(),
        weight.new_empty((N,)) if weight_grad else empty(),
    )


_RECURRENT_ARGS = (
    "input", "v_mem", "i_syn", "alpha_mem", "alpha_syn", "norm_input", "threshold",
    "reset_amount", "min_v_mem", "weight", "bias", "spike_kind", "max_spikes", "reset_kind",
    "reset_value", "surrogate_kind", "surrogate_params", "keep_sequences",
)


def _recurrent_setup_context(ctx, inputs, output):
    a = dict(zip(_RECURRENT_ARGS, inputs))
    ctx.set_materialize_grads(False)
    ctx.needs = dict(zip(_RECURRENT_ARGS, ctx.needs_input_grad))
    ctx.syn = a["alpha_syn"] is not None
    ctx.state_shape = a["v_mem"].shape
    ctx.options = {k: a[k] for k in ("norm_input", "spike_kind", "max_spikes", "reset_kind",
                                     "reset_value", "surrogate_kind", "surrogate_params")}
    ctx.save_for_backward(
        output[0], output[1], output[2], output[3], output[4], a["v_mem"], a["alpha_mem"],
        a["alpha_syn"], a["threshold"], a["reset_amount"], a["min_v_mem"], a["weight"],
    )


def _recurrent_backward(ctx, *grads):
    (spikes, v_hat_tm, i_seq_tm, totals_tm, v_post_tm, v_mem, alpha_mem, alpha_syn, threshold,
     reset_amount, min_v_mem, weight) = ctx.saved_tensors
    if v_hat_tm.numel() == 0:
        raise RuntimeError(
            "sinabs_fast.ops.lif_recurrent_forward: the backward needs keep_sequences=True")
    grads = [g if g is not None and g.numel() else None for g in grads]
    g_spikes, g_v_hat, g_i_seq, _, _, g_v_mem, g_i_syn, g_counts = grads
    flat = (v_hat_tm.shape[1], v_hat_tm.shape[2])  # the states as (B, N)
    g_v_mem = g_v_mem.reshape(flat) if g_v_mem is not None else None
    g_i_syn = g_i_syn.reshape(flat) if g_i_syn is not None else None
    needs, o = ctx.needs, ctx.options
    weight_grad = bool(needs["weight"] or needs["bias"])
    out = torch.ops.sinabs_fast.lif_recurrent_backward.default(
        g_spikes, g_v_hat, g_i_seq, g_v_mem, g_i_syn, g_counts, spikes, v_hat_tm, i_seq_tm,
        totals_tm, v_post_tm, v_mem, alpha_mem, alpha_syn, o["norm_input"], threshold,
        reset_amount, min_v_mem, weight, o["spike_kind"], o["max_spikes"], o["reset_kind"],
        o["reset_value"], o["surrogate_kind"], o["surrogate_params"], bool(needs["alpha_mem"]),
        bool(needs["alpha_syn"]), weight_grad,
    )
    g_input, g_v0, g_i0, g_am, g_as, g_w, g_b = out
    return (
        g_input, g_v0.reshape(ctx.state_shape),
        g_i0.reshape(ctx.state_shape) if ctx.syn else None,
        g_am if needs["alpha_mem"] else None, g_as if needs["alpha_syn"] else None,
        None, None, None, None,
        g_w if needs["weight"] else None, g_b if needs["bias"] else None,
    ) + (None,) * 7


torch.library.register_autograd(
    "sinabs_fast::lif_recurrent_forward", _recurrent_backward,
    setup_context=_recurrent_setup_context,
)


# --------------------------------------------------------------------------------------------
# Adaptive LIF (ALIF)


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
    """All T steps of adaptive LIF neurons in one fused pass (sinabs 3.1.3's ``alif_forward``,
    semantics note §5.5).

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
    return ALIFOutputs(*torch.ops.sinabs_fast.alif_forward.default(
        input, v_mem, i_syn, b, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0, adapt_scale,
        subtract_value, min_v_mem, int(spike_kind), float(max_spikes), int(reset_kind),
        float(reset_value), int(surrogate_kind), [float(p) for p in surrogate_params],
        keep_sequences,
    ))


def alif_backward(*args) -> tuple:
    """The fused reverse-time BPTT kernel of :func:`alif_forward` (see csrc/sinabs_fast.cpp)."""
    return torch.ops.sinabs_fast.alif_backward.default(*args)


@torch.library.register_fake("sinabs_fast::alif_forward")
def _alif_forward_fake(input, v_mem, i_syn, b, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0,
                       adapt_scale, subtract_value, min_v_mem, spike_kind, max_spikes,
                       reset_kind, reset_value, surrogate_kind, surrogate_params,
                       keep_sequences):
    torch._check(input.dim() == 3, lambda: "input must have shape (batch, time, neurons)")
    B, T, N = input.shape
    syn = alpha_syn is not None

    def sequence(kept: bool) -> Tensor:
        return torch.empty_like(input) if kept else input.new_empty((0,))

    return (
        input.new_empty((B, T, N), dtype=torch.float32),
        sequence(keep_sequences),
        sequence(keep_sequences and syn),
        sequence(keep_sequences),
        v_mem.new_empty(v_mem.shape),
        i_syn.new_empty(i_syn.shape) if syn else input.new_empty((0,)),
        b.new_empty(b.shape),
        input.new_empty((B, N), dtype=torch.float32),
    )


@torch.library.register_fake("sinabs_fast::alif_backward")
def _alif_backward_fake(grad_spikes, grad_v_hat, grad_i_seq, grad_b_seq, grad_v_mem, grad_i_syn,
                        grad_b, grad_counts, v_hat, i_seq, b_seq, input, v_mem, i_syn, b,
                        alpha_mem, alpha_syn, alpha_adapt, norm_input, b0, adapt_scale,
                        subtract_value, min_v_mem, spike_kind, max_spikes, reset_kind,
                        reset_value, surrogate_kind, surrogate_params, alpha_grads):
    B, T, N = v_hat.shape
    syn = alpha_syn is not None

    def empty() -> Tensor:
        return v_hat.new_empty((0,))

    return (
        torch.empty_like(v_hat),
        v_hat.new_empty((B, N)),
        v_hat.new_empty((B, N)) if syn else empty(),
        v_hat.new_empty((B, N)),
        torch.empty_like(alpha_mem) if alpha_grads else empty(),
        torch.empty_like(alpha_syn) if alpha_grads and syn else empty(),
        torch.empty_like(alpha_adapt) if alpha_grads else empty(),
    )


_ALIF_ARGS = (
    "input", "v_mem", "i_syn", "b", "alpha_mem", "alpha_syn", "alpha_adapt", "norm_input", "b0",
    "adapt_scale", "subtract_value", "min_v_mem", "spike_kind", "max_spikes", "reset_kind",
    "reset_value", "surrogate_kind", "surrogate_params", "keep_sequences",
)
_ALIF_ALPHAS = ("alpha_mem", "alpha_syn", "alpha_adapt")


def _alif_setup_context(ctx, inputs, output):
    a = dict(zip(_ALIF_ARGS, inputs))
    ctx.set_materialize_grads(False)
    ctx.needs = dict(zip(_ALIF_ARGS, ctx.needs_input_grad))
    ctx.alpha_grads = any(ctx.needs[k] for k in _ALIF_ALPHAS)
    ctx.syn = a["alpha_syn"] is not None
    ctx.state_shape = a["v_mem"].shape
    ctx.options = {k: a[k] for k in ("norm_input", "spike_kind", "max_spikes", "reset_kind",
                                     "reset_value", "surrogate_kind", "surrogate_params")}
    # Saved: the three sequences (the pre-spike membrane, the current with synaptic dynamics,
    # the adaptation state), the initial adaptation state; the input and the other initial
    # states only for the alpha gradients.
    alphas = ctx.alpha_grads
    ctx.save_for_backward(
        output[1], output[2], output[3], a["b"],
        a["input"] if alphas else None, a["v_mem"] if alphas else None,
        a["i_syn"] if alphas else None,
        a["alpha_mem"], a["alpha_syn"], a["alpha_adapt"], a["b0"], a["adapt_scale"],
        a["subtract_value"], a["min_v_mem"],
    )


def _alif_backward_autograd(ctx, *grads):
    (v_hat, i_seq, b_seq, b, input, v_mem, i_syn, alpha_mem, alpha_syn, alpha_adapt, b0,
     adapt_scale, subtract_value, min_v_mem) = ctx.saved_tensors
    if v_hat.numel() == 0:
        raise RuntimeError("sinabs_fast.ops.alif_forward: the backward needs keep_sequences=True")
    grads = [g if g is not None and g.numel() else None for g in grads]
    g_spikes, g_v_hat, g_i_seq, g_b_seq, g_v_mem, g_i_syn, g_b, g_counts = grads
    empty = v_hat.new_empty((0,))
    o = ctx.options
    g_input, g_v0, g_i0, g_b0, g_am, g_as, g_aa = torch.ops.sinabs_fast.alif_backward.default(
        g_spikes, g_v_hat, g_i_seq, g_b_seq, g_v_mem, g_i_syn, g_b, g_counts, v_hat,
        i_seq, b_seq, input if input is not None else empty,
        v_mem if v_mem is not None else empty, i_syn, b, alpha_mem, alpha_syn, alpha_adapt,
        o["norm_input"], b0, adapt_scale, subtract_value, min_v_mem, o["spike_kind"],
        o["max_spikes"], o["reset_kind"], o["reset_value"], o["surrogate_kind"],
        o["surrogate_params"], ctx.alpha_grads,
    )
    needs = ctx.needs
    return (
        g_input,
        g_v0.reshape(ctx.state_shape),
        g_i0.reshape(ctx.state_shape) if ctx.syn else None,
        g_b0.reshape(ctx.state_shape),
        g_am if needs["alpha_mem"] else None,
        g_as if needs["alpha_syn"] else None,
        g_aa if needs["alpha_adapt"] else None,
    ) + (None,) * 12


torch.library.register_autograd(
    "sinabs_fast::alif_forward", _alif_backward_autograd, setup_context=_alif_setup_context
)
