"""``lif_forward`` / ``lif_backward``: all T steps of a LIF-family neuron (IAF is
``alpha_mem = 1``, ExpLeak has no spikes) in one fused kernel, and its fused reverse-time
backward; their fake kernels, and the Python autograd Function of a Python surrogate (see the
package's docstring)."""

from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .fake_outputs import FakeOutputs
from .kinds import SpikeKind, SurrogateKind
from .options import LIF_OPTIONS
from .public_function import public_function
from .schema import OpSchema, require_autograd_kernel

LIF_FORWARD = OpSchema("lif_forward")
LIF_BACKWARD = OpSchema("lif_backward")
_OPTIONS = LIF_FORWARD.options_for(LIF_BACKWARD)  # norm_input, the spike/reset/surrogate kinds


class LIFOutputs(NamedTuple):
    spikes: Tensor  # (B, T, N) float32 (a 16-bit input's dtype on CUDA); empty without spikes
    v_hat: Tensor  # (B, T, N) pre-spike membrane; empty unless kept
    i_seq: Tensor  # (B, T, N) synaptic current per step; empty unless kept
    v_mem: Tensor  # final membrane, shaped like the v_mem argument
    i_syn: Tensor  # final synaptic current, shaped like i_syn; empty without synaptic current
    spike_counts: Tensor  # (B, N) float32 spikes summed over T; empty without spikes
    # On CUDA without keep_v_hat: the states before every C-th step, (B, ceil(T / C), S, N)
    # (checkpoint_shape below), which the CUDA backward recomputes from; empty otherwise.
    checkpoints: Tensor


@public_function(LIF_FORWARD, dict(LIF_OPTIONS, min_v_mem=None, keep_v_hat=True,
                                   keep_i_syn=False))
def lif_forward(args: tuple,
                surrogate_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None) -> LIFOutputs:
    """All T steps of a LIF-family neuron in one fused pass (sinabs 3.1.3 semantics, see
    docs/semantics.md).

    Per step: ``i = alpha_syn * (i + x_t)`` (or ``i = x_t``); ``v_hat = alpha_mem * v + s_in * i``
    with ``s_in = 1 - alpha_mem`` if ``norm_input`` else 1; spikes from ``v_hat``; reset; then the
    clamp ``relu(v - min_v_mem) + min_v_mem``. ``input`` and the states share the compute dtype
    (float32 or float64); on CUDA the input may also be bfloat16 or float16 with float32 states:
    it is read as it is, computed in float32, and the spikes and the input's gradient come in
    its dtype. ``reset_amount``'s dtype sets the rounding of ``s * reset_amount``
    (float32 unless float64). The surrogate arguments only matter for the backward; with
    ``surrogate_kind=PRECOMPUTED`` pass ``surrogate_fn(v_hat, threshold)``, a torch callable.
    A gradient needs ``keep_v_hat`` with ``PRECOMPUTED``; otherwise, without it, the backward
    recomputes the forward (less memory traffic: nothing of size (B, T, N) is saved), on CUDA
    from the states the forward keeps every few steps (``checkpoints``).
    """
    return LIFOutputs(*forward_on_args(args, surrogate_fn))


_SURROGATE_KIND = LIF_FORWARD.names.index("surrogate_kind")


def forward_on_args(args: tuple,
                    surrogate_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None) -> tuple:
    """:func:`lif_forward` on its schema's positional ``args`` (``LIF_FORWARD.args(...)``, each
    of the schema's type), with a gradient when any tensor argument needs one."""
    if args[_SURROGATE_KIND] != SurrogateKind.PRECOMPUTED:
        return LIF_FORWARD.direct(args)
    if surrogate_fn is None:
        raise ValueError("surrogate_fn is required when surrogate_kind is PRECOMPUTED")
    needs_grad = torch.is_grad_enabled() and any(
        isinstance(t, Tensor) and t.requires_grad for t in args
    )
    return call_lif_forward(args, needs_grad, surrogate_fn)


# The op's arguments that change from call to call; a planned call keeps the rest, its "tail",
# as one tuple (sinabs_fast/layers/functional/lif.py, LIFCall).
PER_CALL = ("input", "v_mem", "i_syn", "alpha_mem", "alpha_syn")
assert LIF_FORWARD.names[:len(PER_CALL)] == PER_CALL, LIF_FORWARD.names


def call_lif_forward(args: tuple, needs_grad: bool,
                     surrogate_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None) -> tuple:
    """The op on its schema's positional ``args`` (``LIF_FORWARD.args(...)``): its own autograd
    (C++, csrc/op_autograd.cpp) records the node when a gradient is needed. A Python
    ``surrogate_fn`` with a gradient needs :class:`FusedLIF` instead."""
    if surrogate_fn is None or not needs_grad:
        return LIF_FORWARD.direct(args)
    return FusedLIF.apply(surrogate_fn, *args)


def lif_backward(*args) -> tuple:
    """The fused reverse-time BPTT kernel of :func:`lif_forward` (see csrc/sinabs_fast.cpp)."""
    return LIF_BACKWARD.kernel(*args)


# --------------------------------------------------------------------------------------------
# Fake kernels: shapes and dtypes only, so that torch.compile can trace the ops.


def checkpoint_shape(input: Tensor, syn: bool) -> Tuple[int, int, int, int]:
    """The shape of the checkpoints of a CUDA forward of ``input`` (B, T, N) without kept v_hat:
    the states (v_mem, and i_syn with ``syn``) before every C-th step, C = 16 (8 in float64), as
    ``checkpoint_shape`` in csrc/lif_calls.cpp."""
    batch, steps, neurons = input.shape
    every = 8 if input.dtype == torch.float64 else 16
    return batch, -(-steps // every), 2 if syn else 1, neurons


_HALF = (torch.bfloat16, torch.float16)


def _compute_like(sequence: Tensor) -> Tensor:
    """A (B, T, N) tensor's stand-in in its compute dtype: float32 for a 16-bit one."""
    return sequence.new_empty(sequence.shape, dtype=torch.float32) if sequence.dtype in _HALF \
        else sequence


@torch.library.register_fake("sinabs_fast::lif_forward")
def _lif_forward_fake(*args):
    a = LIF_FORWARD.bind(args)
    input = a["input"]
    torch._check(input.dim() == 3, lambda: "input must have shape (batch, time, neurons)")
    out = FakeOutputs(_compute_like(input))
    spiking = a["spike_kind"] != SpikeKind.NONE
    syn = a["alpha_syn"] is not None
    checkpointed = input.device.type == "cuda" and not a["keep_v_hat"]
    spike_dtype = input.dtype if input.dtype in _HALF else torch.float32
    return (
        out.spikes(spiking, spike_dtype), out.sequence(a["keep_v_hat"]),
        out.sequence(syn and a["keep_i_syn"]), out.state(a["v_mem"]), out.state(a["i_syn"], syn),
        out.counts(spiking),
        out.like.new_empty(checkpoint_shape(out.like, syn)) if checkpointed else out.empty(),
    )


@torch.library.register_fake("sinabs_fast::lif_backward")
def _lif_backward_fake(*args):
    a = LIF_BACKWARD.bind(args)
    # No v_hat: recomputed from the input, whose gradient then comes in its dtype (16-bit too).
    like = a["v_hat"] if a["v_hat"].numel() else a["input"]
    out = FakeOutputs(_compute_like(like))
    syn = a["alpha_syn"] is not None
    return (
        out.input_gradient(a["input"], like.dtype), out.per_neuron(), out.per_neuron(syn),
        out.gradient(a["alpha_mem"], a["alpha_mem_grad"]),
        out.gradient(a["alpha_syn"], syn and a["alpha_syn_grad"]),
    )


# --------------------------------------------------------------------------------------------
# The Python autograd Function of a Python surrogate (FusedLIF): what it saves, and its backward.


_ALPHA_MEM, _ALPHA_SYN = LIF_FORWARD.names.index("alpha_mem"), LIF_FORWARD.names.index("alpha_syn")


def _setup_context(ctx, inputs, output, needs_input_grad=None):
    a = LIF_FORWARD.bind(inputs)
    ctx.set_materialize_grads(False)
    needs = needs_input_grad or ctx.needs_input_grad  # one flag per argument, in schema order
    ctx.alpha_mem_grad = bool(needs[_ALPHA_MEM])
    ctx.alpha_syn_grad = bool(needs[_ALPHA_SYN])
    ctx.state_shape = a["v_mem"].shape
    ctx.options = {k: a[k] for k in _OPTIONS}
    ctx.empty_problem = LIF_FORWARD.empty_problem(inputs, needs)
    # Saved: the pre-spike membrane (one value per neuron-step) and small per-neuron tensors;
    # i_seq only for the alpha gradients with synaptic current; the input for the alpha_mem
    # gradient with norm_input and no synaptic current. Without a kept v_hat (keep_v_hat=False)
    # the backward recomputes the forward: then the input and the initial states instead (and,
    # on CUDA, the forward's checkpoints). A non-contiguous input (a view) is also kept for its
    # layout, which the input gradient takes (see FakeOutputs.input_gradient).
    syn = a["alpha_syn"] is not None
    recompute = output[1].numel() == 0
    need_i_seq = syn and (ctx.alpha_mem_grad or ctx.alpha_syn_grad) and not recompute
    need_input = (recompute or (ctx.alpha_mem_grad and a["norm_input"] and not syn)
                  or not a["input"].is_contiguous())
    ctx.save_for_backward(
        output[1],
        output[2] if need_i_seq else None,
        a["v_mem"] if ctx.alpha_mem_grad or recompute else None,
        a["i_syn"] if recompute else None,
        a["input"] if need_input else None,
        a["alpha_mem"], a["alpha_syn"], a["threshold"], a["reset_amount"], a["min_v_mem"],
        output[6] if recompute else None,
    )


def shaped(t: Tensor, shape: Sequence[int]) -> Tensor:
    """``t.reshape(shape)``, or ``t`` itself when it has that shape (no view per call)."""
    return t if t.shape == shape else t.reshape(shape)


_EMPTY: Dict[Tuple[torch.dtype, torch.device], Tensor] = {}


def _empty(like: Tensor) -> Tensor:
    """An empty tensor of like's dtype and device, for an absent tensor argument: one per dtype
    and device (it has no elements to write). Tensor subclasses (torch.compile's fake and
    functional tensors) get a fresh one."""
    if type(like) is not Tensor:
        return like.new_empty((0,))
    key = (like.dtype, like.device)
    if key not in _EMPTY:
        _EMPTY[key] = like.new_empty((0,))
    return _EMPTY[key]


def _backward_kernel(ctx, grads, surrogate_values):
    (v_hat, i_seq, v_mem, i_syn, input, alpha_mem, alpha_syn, threshold, reset_amount,
     min_v_mem, checkpoints) = ctx.saved_tensors
    if ctx.empty_problem is not None:
        return LIF_FORWARD.zero_gradients(ctx.empty_problem)
    # Absent outputs are empty tensors; their gradients (None, or empty when materialised) too.
    grads = [g if g is not None and g.numel() else None for g in grads]
    g_spikes, g_v_hat, g_i_seq, g_v_mem, g_i_syn, g_counts, _ = grads  # checkpoints: none
    like = v_hat if v_hat.numel() else input
    flat = (like.shape[0], like.shape[2])
    empty = _empty(like)
    g_input, g_v0, g_i0, g_alpha_mem, g_alpha_syn = LIF_BACKWARD(
        grad_spikes=g_spikes, grad_v_hat=g_v_hat, grad_i_seq=g_i_seq,
        grad_v_mem=shaped(g_v_mem, flat) if g_v_mem is not None else None,
        grad_i_syn=shaped(g_i_syn, flat) if g_i_syn is not None else None,
        grad_counts=g_counts, v_hat=v_hat, i_seq=i_seq if i_seq is not None else empty,
        v_mem=v_mem if v_mem is not None else empty, i_syn=i_syn, input=input,
        alpha_mem=alpha_mem, alpha_syn=alpha_syn, threshold=threshold,
        reset_amount=reset_amount, min_v_mem=min_v_mem, surrogate_values=surrogate_values,
        alpha_mem_grad=ctx.alpha_mem_grad, alpha_syn_grad=ctx.alpha_syn_grad,
        checkpoints=checkpoints, **ctx.options,
    )
    return LIF_FORWARD.gradients(
        input=g_input, v_mem=shaped(g_v0, ctx.state_shape),
        i_syn=shaped(g_i0, ctx.state_shape) if alpha_syn is not None else None,
        alpha_mem=g_alpha_mem if ctx.alpha_mem_grad else None,
        alpha_syn=g_alpha_syn if ctx.alpha_syn_grad else None,
    )


# The op's own autograd is C++ (csrc/op_autograd.cpp): torch.compile traces it, its backward
# calls lif_backward through the dispatcher. FusedLIF below is the Python route a Python
# surrogate needs; both save the same tensors and run the same backward op.
require_autograd_kernel(LIF_FORWARD)


def _surrogate_for(fn: Callable, v_hat: Tensor, threshold: Tensor) -> Tensor:
    """Evaluates a torch surrogate on the saved membrane; a per-neuron threshold (B, N) is lined
    up with v_hat (B, T, N), a scalar one is passed as it is (as sinabs passes it)."""
    thr = threshold if threshold.dim() == 0 else threshold.expand(
        v_hat.shape[0], v_hat.shape[2]).unsqueeze(1)
    return fn(v_hat, thr).to(v_hat.dtype).expand_as(v_hat).contiguous()


class FusedLIF(torch.autograd.Function):
    """lif_forward with its fused backward as a Python autograd Function: the route of a Python
    surrogate, ``surrogate_fn``, a torch callable whose values on the saved membrane the fused
    backward reads (surrogate_kind PRECOMPUTED). With ``surrogate_fn`` None it equals the op's
    own (C++) autograd, which tests/test_ops.py checks."""

    # forward(ctx, ...) rather than a separate setup_context: Function.apply then skips binding
    # the arguments with inspect.signature on every call.
    @staticmethod
    def forward(ctx, surrogate_fn, *args):
        output = LIF_FORWARD.kernel(*args)
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
