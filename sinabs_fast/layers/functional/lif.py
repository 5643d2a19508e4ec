"""The LIF-family forward over all time steps, on the fused op where it reproduces sinabs exactly
and on the pure-PyTorch reference otherwise."""

import math
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from ... import ops, reference
from ...ops.lif import LIF_FORWARD, PER_CALL, forward_on_args, shaped
from ...neuron_params import LIFParams
from ...neuron_spec import KernelSpec, kernel_spec
from .op_arguments import (CallShape, Operand, Param, along_time, eager_cache, operand,
                           per_neuron, requires_grad, steady_dtypes)

# (output, final state, recordings, spike counts or None)
LIFResult = Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor], Optional[Tensor]]


class FusedPlan(NamedTuple):
    """How the fused op runs one layer call: the compute dtype, and every parameter as the op
    takes it (0-dim, or broadcast and flattened to (batch, neurons)), computed once per call."""

    compute: torch.dtype
    prescale: bool  # (1 - alpha_mem) * x is done with torch first (the op then has no norm_input)
    alpha_mem: Tensor
    alpha_syn: Optional[Tensor]
    threshold: Tensor
    amount: Tensor  # the reset's s * amount operand
    amount_param: Param  # the same, as the layer gave it (for the recordings' torch ops)
    min_v_mem: Optional[Tensor]
    min_v_mem_param: Param  # the same, as the layer gave it
    # The op's keyword arguments: norm_input and the spike, reset and surrogate kinds and values.
    options: Dict[str, object]



class _DtypePlan(NamedTuple):
    """What a call's dtypes, flags and kernel spec decide (see :func:`_dtype_plan`)."""

    compute: torch.dtype
    prescale: bool  # as FusedPlan.prescale
    amount_to_float32: bool  # s * amount rounds in float32: the amount is cast first
    options: Dict[str, object]  # as FusedPlan.options


@eager_cache
def _dtype_plan(spec: KernelSpec, spiking: bool, norm_input: bool, x: torch.dtype,
                v_mem: Operand, i_syn: Optional[Operand], alpha_mem: Optional[Operand],
                alpha_syn: Optional[Operand], threshold: Optional[Operand],
                amount: Optional[Operand], min_v_mem: Optional[Operand]) -> Optional[_DtypePlan]:
    """The compute dtype, the prescale and the op's options for a call whose operands have these
    dtypes (each an ``op_arguments.Operand``), or None when one op call can't reproduce sinabs.
    A pure function of hashable values: worked out once per combination (eager_cache), so a
    call plans nothing again until an input's or a parameter's dtype or dimensionality, or the
    kernel spec, changes."""
    subtract = spiking and spec.reset.kind == ops.ResetKind.SUBTRACT
    steady, unchanged = steady_dtypes(
        v_mem, i_syn, x=(x, True), alpha_mem=alpha_mem, alpha_syn=alpha_syn,
        norm_input=norm_input, threshold=threshold, amount=amount, min_v_mem=min_v_mem,
        spiking=spiking, subtract=subtract,
    )
    compute = steady.v_mem[0]
    # One compute dtype must reproduce every op; the first call after a dtype change (e.g.
    # float64 input into float32 states) runs the reference once, since its first step
    # rounds in the old dtype.
    if not (
        unchanged
        and compute in (torch.float32, torch.float64)
        and (i_syn is None or steady.i_syn[0] == compute)
        and (not spiking or steady.spike_div[0] == compute)
    ):
        return None
    # (1 - alpha) * x rounds in x's lower precision in sinabs: then do that part with torch.
    prescale = norm_input and steady.current[0] != compute
    # s * amount rounds in float32 unless amount is a float64 tensor with dimensions.
    amount_to_float32 = spiking and amount[0] != torch.float32 and not amount[1]
    return _DtypePlan(compute, prescale, amount_to_float32,
                      op_options(spec, spiking, norm_input and not prescale))


def fused_plan(call: CallShape, state: Dict[str, Tensor], params: LIFParams,
               spec: KernelSpec) -> Optional[FusedPlan]:
    """The fused op's arguments for a call's input into ``state``, or None when one op call
    can't reproduce sinabs exactly (run :mod:`sinabs_fast.reference` then)."""
    (alpha_mem, alpha_syn, spike_threshold, spike_fn, reset_fn, surrogate_grad_fn, min_v_mem,
     norm_input) = params
    spiking = spike_fn is not None
    resets = spec.reset if spiking else None
    syn = alpha_syn is not None
    if spec.spike is None or (spiking and (resets is None or surrogate_grad_fn is None)):
        return None
    amount = None
    if spiking and resets.kind == ops.ResetKind.SUBTRACT:
        amount = reset_fn.subtract_value
    if spiking and amount is None:
        amount = spike_threshold
    dtypes = _dtype_plan(
        spec, spiking, norm_input, call.dtype, operand(state["v_mem"]),
        operand(state["i_syn"]) if syn else None, operand(alpha_mem), operand(alpha_syn),
        operand(spike_threshold), operand(amount), operand(min_v_mem))
    if dtypes is None:
        return None
    batch, trailing, device = call.batch, call.trailing, call.device
    a_mem = per_neuron(alpha_mem, "alpha_mem", batch, trailing, device)
    a_syn = per_neuron(alpha_syn, "alpha_syn", batch, trailing, device)
    m = per_neuron(min_v_mem, "min_v_mem", batch, trailing, device)
    if spiking:
        thr = per_neuron(spike_threshold, "spike_threshold", batch, trailing, device)
        amount_t = per_neuron(amount, "subtract_value", batch, trailing, device)
        if dtypes.amount_to_float32:
            amount_t = amount_t.to(torch.float32)
    else:
        thr = amount_t = torch.ones((), dtype=dtypes.compute, device=device)
    return FusedPlan(
        compute=dtypes.compute,
        prescale=dtypes.prescale,
        alpha_mem=a_mem,
        alpha_syn=a_syn,
        threshold=thr,
        amount=amount_t,
        amount_param=amount,
        min_v_mem=m,
        min_v_mem_param=min_v_mem,
        options=dtypes.options,
    )


@eager_cache
def op_options(spec: KernelSpec, spiking: bool, norm_input: bool) -> Dict[str, object]:
    """The op's keyword arguments for a kernel spec, in the schema's types: one dict per
    combination, shared by the calls (which only read it)."""
    spike_kind, max_spikes = spec.spike
    surrogate_kind, surrogate_params = (spec.surrogate if spiking else
                                        (ops.SurrogateKind.SINGLE_EXPONENTIAL, ()))
    return dict(
        norm_input=norm_input,
        spike_kind=int(spike_kind),
        max_spikes=float(max_spikes),
        reset_kind=int(spec.reset.kind if spiking else ops.ResetKind.SUBTRACT),
        reset_value=float(spec.reset.value if spiking else 0.0),
        surrogate_kind=int(surrogate_kind),
        surrogate_params=[float(p) for p in surrogate_params],
    )


def _read_as_is(x: Tensor, compute: torch.dtype) -> bool:
    """Whether the op reads ``x`` in its own dtype around a ``compute`` computation: the CUDA
    kernels read a bfloat16 or float16 input as it is and compute in float32, the same values as
    the float32 copy would give, with half the bytes (docs/semantics.md, section 3)."""
    return (compute == torch.float32 and x.dtype in (torch.bfloat16, torch.float16)
            and x.device.type == "cuda")


def lif_forward(
    input_data: Tensor,
    alpha_mem: Tensor,
    alpha_syn: Optional[Tensor],
    state: Dict[str, Tensor],
    spike_threshold: Optional[Tensor],
    spike_fn: Optional[Callable],
    reset_fn: Optional[Callable],
    surrogate_grad_fn: Optional[Callable],
    min_v_mem: Optional[Tensor],
    norm_input: bool,
    record_states: bool = False,
    spec: Optional[KernelSpec] = None,
) -> LIFResult:
    """Fused drop-in for ``sinabs.layers.functional.lif_forward``.

    ``input_data`` is (B, T, *trailing); ``state`` maps ``v_mem`` (and ``i_syn`` with synaptic
    current) to (B, *trailing) tensors. Returns (output, final state, recordings, spike counts),
    where the spike counts are the spikes summed over time, (B, *trailing), or None without
    spikes. ``spec`` is ``kernel_spec(spike_fn, reset_fn, surrogate_grad_fn)``, when the caller
    has it already (layers do).
    """
    params = LIFParams(alpha_mem, alpha_syn, spike_threshold, spike_fn, reset_fn,
                       surrogate_grad_fn, min_v_mem, norm_input)
    return run_lif(input_data, state, params, record_states, spec)


class LIFCall(NamedTuple):
    """One fused op call as planned (:func:`plan_lif_call`) from the input's shape, dtype and
    device, the states' and parameters' dtypes and dimensions, the gradient flags, the recording
    flag and the kernel spec; :func:`run_lif_call` runs it on the call's tensors."""

    plan: FusedPlan
    shape: Tuple[int, ...]  # the input's (B, T, *trailing)
    flat: Tuple[int, int, int]  # (B, T, N), as the op takes it
    counts_shape: Tuple[int, ...]  # (B, *trailing)
    spiking: bool
    syn: bool
    record_states: bool
    # The op's arguments after alpha_syn (norm_input, threshold, reset_amount, min_v_mem, the
    # options, keep_v_hat, keep_i_syn), the same for every run of this call.
    tail: tuple
    # Whether the plan passes every parameter through as given (0-dim tensors on the input's
    # device) or holds constants made from Python numbers, so that a run with other tensors of
    # the same description is the same call: what a layer may cache (LIF.forward).
    reusable: bool


def plan_lif_call(input_data: Tensor, state: Dict[str, Tensor], params: LIFParams,
                  record_states: bool = False,
                  spec: Optional[KernelSpec] = None) -> Optional[LIFCall]:
    """The fused op call of :func:`lif_forward`'s arguments, or None when one op call can't
    reproduce sinabs exactly (then :mod:`sinabs_fast.reference` runs)."""
    if spec is None:
        spec = kernel_spec(params.spike_fn, params.reset_fn, params.surrogate_grad_fn)
    shape = tuple(input_data.shape)
    batch, steps, *trailing = shape
    trailing = tuple(trailing)
    syn = params.alpha_syn is not None
    plan = fused_plan(CallShape(input_data.dtype, batch, trailing, input_data.device), state,
                      params, spec)
    if plan is None:
        return None
    spiking = params.spike_fn is not None
    v_mem, i_syn = state["v_mem"], state["i_syn"] if syn else None
    grad = torch.is_grad_enabled() and requires_grad(input_data, v_mem, i_syn, params.alpha_mem,
                                                      params.alpha_syn)
    alpha_grad = grad and requires_grad(params.alpha_mem, params.alpha_syn)
    # The backward recomputes the forward rather than reading a saved v_hat (less memory
    # traffic); a Python surrogate (evaluated on v_hat) reads the saved one.
    recompute = plan.options["surrogate_kind"] != ops.SurrogateKind.PRECOMPUTED
    args = LIF_FORWARD.args(
        input=input_data, v_mem=v_mem, i_syn=i_syn, alpha_mem=plan.alpha_mem,
        alpha_syn=plan.alpha_syn, threshold=plan.threshold, reset_amount=plan.amount,
        min_v_mem=plan.min_v_mem, **plan.options,
        keep_v_hat=record_states or not spiking or (grad and not recompute),
        keep_i_syn=syn and (record_states or (alpha_grad and not recompute)),
    )
    reusable = (
        plan.alpha_mem is params.alpha_mem and plan.alpha_syn is params.alpha_syn
        and all(_as_given(value, op_value) for value, op_value in (
            (params.spike_threshold, plan.threshold), (plan.amount_param, plan.amount),
            (params.min_v_mem, plan.min_v_mem)))
    )
    if reusable:  # the decay factors come with each run: a kept call holds no call's graph
        plan = plan._replace(alpha_mem=None, alpha_syn=None)
    return LIFCall(plan, shape, (batch, steps, math.prod(trailing)), (batch, *trailing),
                   spiking, syn, record_states, args[len(PER_CALL):], reusable)


def _as_given(value: Param, op_value: Optional[Tensor]) -> bool:
    """Whether the op's argument for a parameter is the parameter itself, or a constant made
    from a Python number (or absent, or ones for a neuron without spikes): the same in every
    call with this parameter."""
    return op_value is value or not isinstance(value, Tensor)


def run_lif_call(call: LIFCall, input_data: Tensor, v_mem: Tensor, i_syn: Optional[Tensor],
                 alpha_mem: Tensor, alpha_syn: Optional[Tensor],
                 surrogate_fn: Optional[Callable] = None) -> LIFResult:
    """Runs a planned call on the call's input, states and decay factors (described as the
    planned ones were)."""
    plan = call.plan
    x = (1 - alpha_mem) * input_data if plan.prescale else input_data
    x = shaped(x, call.flat)
    x = x if x.dtype == plan.compute or _read_as_is(x, plan.compute) else x.to(plan.compute)
    if not call.reusable:  # the decay factors as the plan broadcast them
        alpha_mem, alpha_syn = plan.alpha_mem, plan.alpha_syn
    out = ops.LIFOutputs(*forward_on_args((x, v_mem, i_syn, alpha_mem, alpha_syn) + call.tail,
                                          surrogate_fn))
    shape, spiking, syn = call.shape, call.spiking, call.syn
    output = shaped(out.spikes if spiking else out.v_hat, shape)
    new_state = {"v_mem": out.v_mem}  # (B, *trailing) and not a view: reset_states detaches it
    if syn:
        new_state["i_syn"] = out.i_syn
    recordings = {}
    if call.record_states:
        # The post-reset, post-clamp membrane of every step, with the same torch ops as sinabs.
        v = out.v_hat
        if spiking:
            if plan.options["reset_kind"] == ops.ResetKind.SUBTRACT:
                # float32 spikes, as sinabs' (16-bit ones hold the same small integers)
                v = v - out.spikes.float() * along_time(plan.amount_param, plan.amount)
            else:
                v = v * (out.spikes == 0).float() + plan.options["reset_value"]
        if plan.min_v_mem is not None:
            m_t = along_time(plan.min_v_mem_param, plan.min_v_mem)
            v = torch.nn.functional.relu(v - m_t) + m_t
        recordings["v_mem"] = v.reshape(shape)
        if syn:
            recordings["i_syn"] = out.i_seq.reshape(shape)
    counts = shaped(out.spike_counts, call.counts_shape) if spiking else None
    return output, new_state, recordings, counts


def reference_lif(input_data: Tensor, state: Dict[str, Tensor], params: LIFParams,
                  record_states: bool = False) -> LIFResult:
    """:func:`lif_forward` on the pure-PyTorch reference (where one op call can't reproduce
    sinabs), with the spike counts summed from the output."""
    output, new_state, recordings = reference.lif_forward(input_data, state, params, record_states)
    return output, new_state, recordings, output.sum(1) if params.spike_fn is not None else None


def run_lif(input_data: Tensor, state: Dict[str, Tensor], params: LIFParams,
            record_states: bool = False, spec: Optional[KernelSpec] = None) -> LIFResult:
    """:func:`lif_forward` on the neuron's parameters as one value."""
    call = plan_lif_call(input_data, state, params, record_states, spec)
    if call is None:
        return reference_lif(input_data, state, params, record_states)
    return run_lif_call(call, input_data, state["v_mem"], state.get("i_syn") if call.syn else None,
                        params.alpha_mem, params.alpha_syn, params.surrogate_grad_fn)
