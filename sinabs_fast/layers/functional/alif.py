"""The adaptive LIF forward (as ``sinabs.layers.functional.alif_forward`` / ``alif_recurrent``),
on the fused ALIF op where it reproduces sinabs exactly and on the pure-PyTorch reference
otherwise."""

import math
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn

from ... import ops, reference
from ...ops.alif import ALIF_FORWARD
from ...ops.alif_recurrent import ALIF_RECURRENT_FORWARD, call_alif_recurrent
from ...neuron_params import ALIFParams
from ...neuron_spec import KernelSpec, kernel_spec
from ..recurrent_arguments import arguments_of
from .lif import op_options
from .lif_recurrent import _linear_map
from .op_arguments import CallShape, Param, device_scalar, per_neuron, requires_grad

_COMPUTE = (torch.float32, torch.float64)

# (spikes, final state, recordings, spike counts)
ALIFResult = Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor], Tensor]


class AlifPlan(NamedTuple):
    """The fused op's arguments for one layer call: every parameter 0-dim or broadcast and
    flattened to (batch, neurons); Python numbers as 0-dim tensors of the compute dtype."""

    compute: torch.dtype
    alpha_mem: Tensor
    alpha_syn: Optional[Tensor]
    alpha_adapt: Tensor
    b0: Tensor
    adapt_scale: Tensor
    subtract_value: Optional[Tensor]  # None: the reset subtracts the adaptive threshold
    min_v_mem: Optional[Tensor]
    options: dict  # the op's keyword arguments (spike, reset, surrogate, norm_input)


def _keeps_dtype(value: Param, compute: torch.dtype) -> bool:
    """Whether ``value`` meets a dimensioned ``compute`` tensor without changing its dtype (a 0-dim
    tensor or a number is cast to it; a dimensioned tensor must not be wider)."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    if not isinstance(value, Tensor) or not value.is_floating_point():
        return False
    return value.dim() == 0 or torch.promote_types(value.dtype, compute) == compute


def alif_plan(call: CallShape, state: Dict[str, Tensor], params: ALIFParams,
              spec: KernelSpec) -> Optional[AlifPlan]:
    """The op's arguments, or None when one fused call can't reproduce sinabs exactly: a spike,
    reset or surrogate function the kernel doesn't know, input or states outside one float32 /
    float64 compute dtype (e.g. the first call after a dtype change), or a gradient wanted for
    b0, adapt_scale, subtract_value or min_v_mem (the op gives none)."""
    alpha_mem, alpha_adapt, alpha_syn = params.alpha_mem, params.alpha_adapt, params.alpha_syn
    adapt_scale, b0, min_v_mem = params.adapt_scale, params.b0, params.min_v_mem
    reset_fn, norm_input = params.reset_fn, params.norm_input
    if spec.spike is None or spec.reset is None or spec.spike[0] == ops.SpikeKind.NONE:
        return None
    if spec.surrogate[0] == ops.SurrogateKind.PRECOMPUTED:
        return None
    compute = call.dtype
    syn = alpha_syn is not None
    states = [state["v_mem"], state["b"]] + ([state["i_syn"]] if syn else [])
    if compute not in _COMPUTE or any(s.dtype != compute for s in states):
        return None
    subtract = spec.reset.kind == ops.ResetKind.SUBTRACT
    subtract_value = reset_fn.subtract_value if subtract else None
    params = (alpha_mem, alpha_adapt, alpha_syn, adapt_scale, b0, subtract_value, min_v_mem)
    if not all(_keeps_dtype(p, compute) for p in params):
        return None
    if torch.is_grad_enabled() and requires_grad(adapt_scale, b0, subtract_value, min_v_mem):
        return None

    def op_param(value: Param, name: str) -> Optional[Tensor]:
        if value is None or isinstance(value, Tensor):
            return per_neuron(value, name, call.batch, call.trailing, call.device)
        return device_scalar(value, compute, call.device)

    return AlifPlan(
        compute=compute,
        alpha_mem=op_param(alpha_mem, "alpha_mem"),
        alpha_syn=op_param(alpha_syn, "alpha_syn"),
        alpha_adapt=op_param(alpha_adapt, "alpha_adapt"),
        b0=op_param(b0, "spike_threshold"),
        adapt_scale=op_param(adapt_scale, "adapt_scale"),
        subtract_value=op_param(subtract_value, "subtract_value"),
        min_v_mem=op_param(min_v_mem, "min_v_mem"),
        options=op_options(spec, True, norm_input),
    )


class _Steps(NamedTuple):
    """Steps' results as (B, T, N) sequences (None where not kept) and the states after them."""

    spikes: Tensor
    v_hat: Optional[Tensor]
    current: Optional[Tensor]  # the stored synaptic current; None without synaptic dynamics
    b: Optional[Tensor]
    state: Dict[str, Tensor]


def _fused_steps(plan: AlifPlan, x: Tensor, state: Dict[str, Tensor], syn: bool,
                 keep: bool) -> Tuple[_Steps, Tensor]:
    """Runs the op over x (B, T, N) from ``state``; ``keep``: return the sequences. Returns the
    steps and the kernel's spike counts (B, N)."""
    v, i, b = state["v_mem"], state["i_syn"] if syn else None, state["b"]
    grad = torch.is_grad_enabled() and requires_grad(
        x, v, i, b, plan.alpha_mem, plan.alpha_syn, plan.alpha_adapt)
    args = ALIF_FORWARD.args(
        input=x, v_mem=v, i_syn=i, b=b, alpha_mem=plan.alpha_mem, alpha_syn=plan.alpha_syn,
        alpha_adapt=plan.alpha_adapt, b0=plan.b0, adapt_scale=plan.adapt_scale,
        subtract_value=plan.subtract_value, min_v_mem=plan.min_v_mem,
        keep_sequences=keep or grad, **plan.options,
    )
    # The op's own autograd (csrc/op_autograd.cpp) records the node when a gradient is needed.
    out = ops.ALIFOutputs(*ALIF_FORWARD.direct(args))
    new_state = {"v_mem": out.v_mem, "b": out.b}
    if syn:
        new_state["i_syn"] = out.i_syn
    steps = _Steps(out.spikes, out.v_hat if keep else None, out.i_seq if keep and syn else None,
                   out.b_seq if keep else None, new_state)
    return steps, out.spike_counts


def _reference_step(x: Tensor, state: Dict[str, Tensor], params: ALIFParams) -> _Steps:
    """One step on the pure-PyTorch reference, as a one-step _Steps."""
    spikes, new_state, pre_reset = reference.alif_step(x, state, *params)
    flat = (x.shape[0], 1, -1)
    kept = {k: new_state[k] for k in ("v_mem", "b", "i_syn") if k in new_state}
    syn = params.alpha_syn is not None
    if not syn:
        kept.pop("i_syn", None)
    return _Steps(spikes.reshape(flat), pre_reset["v_mem"].reshape(flat),
                  pre_reset["i_syn"].reshape(flat) if syn else None,
                  new_state["b"].reshape(flat), kept)


def _recurrent_steps(plan: AlifPlan, input_data: Tensor, state: Dict[str, Tensor], syn: bool,
                     keep: bool, rec_connect: torch.nn.Module, params: ALIFParams
                     ) -> Tuple[_Steps, List[Tensor]]:
    """The recurrent time loop: one op call per step, on a (B, 1, N) slice. A step whose input
    or states leave the plan's dtype (a float64 rec_connect, say) runs on the reference. Returns
    the steps and each step's total input (B, *trailing)."""
    batch, _, *trailing = input_data.shape
    flat = (batch, 1, -1)
    state = {k: state[k] for k in ("v_mem", "b", "i_syn") if k in state and (syn or k != "i_syn")}
    rec_out = torch.zeros((batch, *trailing), device=input_data.device)
    runs, totals = [], []
    # One unbind, not input_data[:, t] per step: each indexed slice's gradient would be a
    # zero-filled tensor of the whole input (O(T^2) memory traffic in the backward).
    for x_t in input_data.unbind(1):
        total = x_t + rec_out
        totals.append(total)
        if total.dtype == plan.compute and all(s.dtype == plan.compute for s in state.values()):
            run, _ = _fused_steps(plan, total.reshape(flat), state, syn, keep)
        else:
            run = _reference_step(total, state, params)
        runs.append(run)
        state = run.state
        rec_out = rec_connect(run.spikes.reshape(batch, *trailing)).reshape((batch, *trailing))

    def cat(field: str) -> Optional[Tensor]:
        parts = [getattr(r, field) for r in runs]
        return None if parts[0] is None else torch.cat(parts, 1)

    return _Steps(cat("spikes"), cat("v_hat"), cat("current"), cat("b"), state), totals


def _fused_recurrent(plan: AlifPlan, input_data: Tensor, state: Dict[str, Tensor], syn: bool,
                     keep: bool, linear: nn.Linear) -> Tuple[_Steps, List[Tensor], Tensor]:
    """The whole recurrent time loop in one op call (``ops.alif_recurrent_forward``). Returns
    the steps, the last step's total input (B, *trailing) (what sinabs leaves as the i_syn
    state without synaptic dynamics) in a list, and the kernel's spike counts (B, N)."""
    batch, steps, *trailing = input_data.shape
    x = input_data.reshape(batch, steps, math.prod(trailing))
    v, i, b = state["v_mem"], state["i_syn"] if syn else None, state["b"]
    weight, bias = linear.weight, linear.bias
    grad = torch.is_grad_enabled() and requires_grad(
        x, v, i, b, plan.alpha_mem, plan.alpha_syn, plan.alpha_adapt, weight, bias)
    args = ALIF_RECURRENT_FORWARD.args(
        input=x, v_mem=v, i_syn=i, b=b, alpha_mem=plan.alpha_mem, alpha_syn=plan.alpha_syn,
        alpha_adapt=plan.alpha_adapt, b0=plan.b0, adapt_scale=plan.adapt_scale,
        subtract_value=plan.subtract_value, min_v_mem=plan.min_v_mem, weight=weight, bias=bias,
        keep_sequences=keep or grad, **plan.options,
    )
    out = ops.ALIFRecurrentOutputs(*call_alif_recurrent(args))
    new_state = {"v_mem": out.v_mem, "b": out.b}
    if syn:
        new_state["i_syn"] = out.i_syn

    def batch_major(tm: Tensor) -> Optional[Tensor]:
        return tm.transpose(0, 1) if keep else None

    run = _Steps(out.spikes, batch_major(out.v_hat_tm),
                 batch_major(out.i_seq_tm) if syn else None, batch_major(out.b_seq_tm), new_state)
    totals = []
    if not syn:
        # The last step's input, as sinabs computes it (a contiguous copy of the spikes: the
        # product rounds as nn.Linear's on a fresh tensor); its gradient reaches the spikes.
        rec = (linear(out.spikes[:, -2].contiguous()) if steps > 1
               else torch.zeros_like(out.spikes[:, 0]))
        totals.append((x[:, -1] + rec).reshape(batch, *trailing))
    return run, totals, out.spike_counts


def _fused_linear(plan: AlifPlan, input_data: Tensor, names: List[str], syn: bool,
                  rec_connect: nn.Module) -> Optional[nn.Linear]:
    """The nn.Linear that ``rec_connect`` is when the recurrent op can run the whole call (a
    plain float32 linear map, and without synaptic dynamics no i_syn state, whose recording
    would need every step's input), else None."""
    linear = _linear_map(rec_connect, tuple(input_data.shape[2:]))
    if (linear is None or linear.weight.dtype != torch.float32
            or (linear.bias is not None and linear.bias.dtype != torch.float32)):
        return None
    return linear if plan.compute == input_data.dtype and (syn or "i_syn" not in names) else None


def _recordings(names: List[str], shape: Tuple[int, ...], run: _Steps, current: Tensor,
                b0: Param, adapt_scale: Param) -> Dict[str, Tensor]:
    """sinabs' recordings (docs/semantics.md, section 5) from the per-step sequences: entry t < T - 1 holds
    step t + 1's pre-reset membrane and stored current next to step t's b and threshold."""
    batch = shape[0]
    state_shape = (batch, *shape[2:])
    sequences = {
        "v_mem": lambda: torch.cat([run.v_hat[:, 1:], run.state["v_mem"].reshape(batch, 1, -1)],
                                   1),
        "i_syn": lambda: torch.cat([current[:, 1:], current[:, -1:]], 1),
        "b": lambda: run.b,
    }
    recordings = {}
    for name in names:
        if name == "spike_threshold":
            # b0 + adapt_scale * b per step, with the state's broadcasting (as sinabs).
            thresholds = [b0 + adapt_scale * b_t.reshape(state_shape) for b_t in run.b.unbind(1)]
            recordings[name] = torch.stack(thresholds, 1)
        else:
            recordings[name] = sequences[name]().reshape(shape)
    return recordings


def alif_forward(
    input_data: Tensor,
    alpha_mem: Tensor,
    alpha_adapt: Tensor,
    alpha_syn: Optional[Tensor],
    adapt_scale: Param,
    state: Dict[str, Tensor],
    spike_fn: Callable,
    reset_fn: Callable,
    surrogate_grad_fn: Callable,
    min_v_mem: Param,
    b0: Param,
    norm_input: bool,
    record_states: bool = False,
    spec: Optional[KernelSpec] = None,
) -> ALIFResult:
    """Fused drop-in for ``sinabs.layers.functional.alif_forward`` (sinabs 3.1.3).

    ``input_data`` is (B, T, *trailing); ``state`` maps ``v_mem``, ``b``, ``spike_threshold``
    (and ``i_syn``) to (B, *trailing) tensors. Returns (spikes, final state, recordings, spike
    counts (B, *trailing)). The recordings are sinabs' (see :func:`reference.alif_forward`).
    """
    params = ALIFParams(alpha_mem, alpha_adapt, alpha_syn, adapt_scale, b0, spike_fn, reset_fn,
                        surrogate_grad_fn, min_v_mem, norm_input)
    return run_alif(input_data, state, params, record_states, spec)


@arguments_of(alif_forward, rec_connect_after="min_v_mem")
def alif_recurrent(input_data: Tensor, state: Dict[str, Tensor], rec_connect: nn.Module,
                   record_states: bool, spec: Optional[KernelSpec], **neuron) -> ALIFResult:
    """Fused-step drop-in for ``sinabs.layers.functional.alif_recurrent`` (sinabs 3.1.3): each
    step's input is ``x_t + rec_connect(spikes_{t-1}).reshape(B, *trailing)`` (float32 zeros at
    the first step); ``rec_connect`` runs after every step, the last included, as in sinabs.
    Each step's neuron update is one fused op call. Returns as :func:`alif_forward`."""
    return run_alif(input_data, state, ALIFParams(**neuron), record_states, spec, rec_connect)


def run_alif(input_data: Tensor, state: Dict[str, Tensor], params: ALIFParams,
             record_states: bool = False, spec: Optional[KernelSpec] = None,
             rec_connect: Optional[torch.nn.Module] = None) -> ALIFResult:
    """:func:`alif_forward`, or :func:`alif_recurrent` with ``rec_connect``, on the neuron's
    parameters as one value (what the layers call)."""
    alpha_mem, alpha_syn, adapt_scale, b0 = (params.alpha_mem, params.alpha_syn,
                                             params.adapt_scale, params.b0)
    norm_input = params.norm_input
    if spec is None:
        spec = kernel_spec(params.spike_fn, params.reset_fn, params.surrogate_grad_fn)
    batch, steps, *trailing = input_data.shape
    trailing = tuple(trailing)
    shape = (batch, steps, *trailing)
    names = list(state)
    syn = alpha_syn is not None
    plan = alif_plan(CallShape(input_data.dtype, batch, trailing, input_data.device), state,
                     params, spec)
    if plan is None:
        spikes, new_state, recordings = reference.alif_forward(
            input_data, state, params, record_states, rec_connect)
        return spikes, new_state, recordings, spikes.sum(1)

    linear = None if rec_connect is None else _fused_linear(plan, input_data, names, syn,
                                                            rec_connect)
    if rec_connect is None:
        # The neuron count spelled out: -1 is ambiguous for a batch of 0.
        run, counts = _fused_steps(plan, input_data.reshape(batch, steps, math.prod(trailing)),
                                   state, syn,
                                   keep=record_states)
        counts = counts.reshape(batch, *trailing)
        totals = None
    elif linear is not None:
        run, totals, counts = _fused_recurrent(plan, input_data, state, syn, record_states,
                                               linear)
        counts = counts.reshape(batch, *trailing)
    else:
        run, totals = _recurrent_steps(plan, input_data, state, syn, record_states, rec_connect,
                                       params)
        counts = run.spikes.sum(1).reshape(batch, *trailing)
    new_state = dict(state)
    new_state.update(run.state)

    def stored(x: Tensor) -> Tensor:
        # Without synaptic dynamics the state keeps the (total) input, rescaled with
        # norm_input, as sinabs computes it.
        return (1 - alpha_mem) * x if norm_input else x

    if not syn:
        new_state["i_syn"] = stored(totals[-1] if totals else input_data[:, -1])
    new_state["spike_threshold"] = b0 + adapt_scale * new_state["b"]
    recordings = {}
    if record_states:
        current = run.current
        if current is None and "i_syn" in names:  # an i_syn state without synaptic dynamics
            inputs = torch.stack(totals, 1) if totals else input_data
            current = stored(inputs).reshape(batch, steps, -1)
        recordings = _recordings(names, shape, run, current, b0, adapt_scale)
    return run.spikes.reshape(shape), new_state, recordings, counts
