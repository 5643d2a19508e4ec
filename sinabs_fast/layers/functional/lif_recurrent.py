"""The recurrent LIF-family forward (as ``sinabs.layers.functional.lif_recurrent``).

When ``rec_connect`` is a plain linear map (``nn.Linear(N, N)``, alone or after
``nn.Flatten()``), the whole time loop is one op call (``lif_recurrent_forward``, on the CPU and
on CUDA), which computes the recurrent input with nn.Linear's own addmm. Any other ``rec_connect`` is an
arbitrary module, so time stays a Python loop; each step's neuron update (forward and backward)
is then one call of the fused op on a (B, 1, N) slice. The op's arguments are planned once per
dtype combination (normally once per call), not per step.
"""

import math
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks

from ... import ops, reference
from ...ops.lif import LIF_FORWARD
from ...neuron_params import LIFParams
from ...neuron_spec import KernelSpec, kernel_spec
from ..recurrent_arguments import arguments_of
from .lif import FusedPlan, fused_plan, lif_forward
from .op_arguments import CallShape, requires_grad


def _broadcast_once(plan: Optional[FusedPlan], batch: int, neurons: int) -> Optional[FusedPlan]:
    """The parameters without gradient, broadcast to contiguous (batch, neurons) once per call
    (values and dtypes unchanged), so that the op's per-call broadcast of them is a no-op."""
    if plan is None:
        return None

    def full(t: Optional[Tensor], dtype: Optional[torch.dtype] = None) -> Optional[Tensor]:
        if t is None or t.requires_grad:
            return t
        return t.to(dtype or t.dtype).expand(batch, neurons).contiguous()

    return plan._replace(
        threshold=full(plan.threshold, plan.compute),
        amount=full(plan.amount),  # its dtype sets the rounding of s * amount
        min_v_mem=full(plan.min_v_mem, plan.compute),
        alpha_mem=(full(plan.alpha_mem) if plan.options["norm_input"]
                   else full(plan.alpha_mem, plan.compute)),
        alpha_syn=full(plan.alpha_syn, plan.compute),
    )


def _fused_step(plan: FusedPlan, x: Tensor, state: Dict[str, Tensor], alpha_mem: Tensor,
                syn: bool, spiking: bool, alpha_grad: bool, grad_enabled: bool,
                surrogate_grad_fn: Optional[Callable], record_states: bool):
    """One time step on the op. x is the total input (B, *trailing). Returns (output (B, 1, N),
    pre-reset membrane (B, 1, N) or None, new state)."""
    batch, total = x.shape[0], x
    if plan.prescale:
        x = (1 - alpha_mem) * x
    x = x.reshape(batch, 1, -1).to(plan.compute)
    v, i = state["v_mem"], state["i_syn"] if syn else None
    grad = grad_enabled and (alpha_grad or requires_grad(x, v, i))
    args = LIF_FORWARD.args(
        input=x, v_mem=v, i_syn=i, alpha_mem=plan.alpha_mem, alpha_syn=plan.alpha_syn,
        threshold=plan.threshold, reset_amount=plan.amount, min_v_mem=plan.min_v_mem,
        **plan.options, keep_v_hat=grad or record_states or not spiking,
        keep_i_syn=syn and alpha_grad,  # the alpha gradients with synaptic current need it
    )
    precomputed = plan.options["surrogate_kind"] == ops.SurrogateKind.PRECOMPUTED
    spikes, v_hat, _, v_new, i_new, *_ = ops.call_lif_forward(
        args, grad, surrogate_grad_fn if precomputed else None)
    new_state = {"v_mem": v_new, "i_syn": i_new if syn else total}
    return (spikes if spiking else v_hat), v_hat, new_state


def _reference_step(x: Tensor, state: Dict[str, Tensor], params: LIFParams):
    """One time step on the pure-PyTorch reference, keeping the pre-reset membrane."""
    seen = {}

    def reset(spikes, st, threshold):
        seen["v_hat"] = st["v_mem"]
        return params.reset_fn(spikes, st, threshold)

    spiking = params.spike_fn is not None
    out, new_state = reference.lif_step(
        x, state, *(params._replace(reset_fn=reset) if spiking else params))
    v_hat = seen.get("v_hat", out)  # without spikes the output is the pre-clamp membrane
    batch = x.shape[0]
    return out.reshape(batch, 1, -1), v_hat.reshape(batch, 1, -1), new_state


def _linear_map(rec_connect: torch.nn.Module, trailing: Tuple[int, ...]) -> Optional[nn.Linear]:
    """The nn.Linear(N, N) that ``rec_connect`` is (alone, or after an nn.Flatten of the neuron
    dimensions), or None. Modules with hooks don't qualify: the fused op would skip them."""
    modules = list(rec_connect) if type(rec_connect) is nn.Sequential else [rec_connect]
    if any(m._forward_hooks or m._forward_pre_hooks for m in [rec_connect, *modules]):
        return None
    if _global_forward_hooks or _global_forward_pre_hooks:
        return None
    if len(modules) == 2 and type(modules[0]) is nn.Flatten:
        if (modules[0].start_dim, modules[0].end_dim) != (1, -1):
            return None
        modules = modules[1:]
    elif len(trailing) != 1:  # a bare Linear only mixes the last dimension
        return None
    neurons = math.prod(trailing)
    linear = modules[0] if len(modules) == 1 else None
    if type(linear) is not nn.Linear or linear.weight.shape != (neurons, neurons):
        return None
    return linear


def _fused_recurrent(plan: FusedPlan, input_data: Tensor, state: Dict[str, Tensor],
                     linear: nn.Linear, names: List[str], alpha_grad: bool,
                     record_states: bool) -> Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor]]:
    """The whole recurrent time loop in one op call (see ``ops.lif_recurrent_forward``)."""
    batch, steps, *trailing = input_data.shape
    shape = (batch, steps, *trailing)
    syn = plan.alpha_syn is not None
    x = input_data.reshape(batch, steps, -1)
    v, i = state["v_mem"], state["i_syn"] if syn else None
    grad = torch.is_grad_enabled() and (
        alpha_grad or requires_grad(x, v, i, linear.weight, linear.bias))
    out = ops.lif_recurrent_forward(
        x, v, i, plan.alpha_mem, plan.alpha_syn, plan.threshold, plan.amount, plan.min_v_mem,
        linear.weight, linear.bias, **plan.options, keep_sequences=grad or record_states,
    )
    new_state = {"v_mem": out.v_mem}
    if syn:
        new_state["i_syn"] = out.i_syn
    recordings = {}
    if record_states:
        # sinabs' aliasing quirk (see lif_recurrent): entry t < T - 1 is step t + 1's pre-reset
        # membrane and synaptic current, the last entry the final state.
        sequences = {"v_mem": out.v_hat_tm, "i_syn": out.i_seq_tm}
        for name in names:
            later = sequences[name][1:].transpose(0, 1)
            final = new_state[name].reshape(batch, 1, -1)
            recordings[name] = torch.cat([later, final], 1).reshape(shape)
    return out.spikes.reshape(shape), new_state, recordings


@arguments_of(lif_forward, rec_connect_after="norm_input")
def lif_recurrent(input_data: Tensor, state: Dict[str, Tensor], rec_connect: nn.Module,
                  record_states: bool, spec: Optional[KernelSpec], **neuron
                  ) -> Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor]]:
    """Fused-step drop-in for ``sinabs.layers.functional.lif_recurrent`` (sinabs 3.1.3).

    ``input_data`` is (B, T, *trailing). Each step the neuron receives ``x_t + rec_out``, where
    ``rec_out`` starts as float32 zeros (B, *trailing) and is then
    ``rec_connect(spikes_t).reshape(B, *trailing)`` (also computed after the last step, as in
    sinabs, so a stateful or random ``rec_connect`` sees the same calls). Returns (output
    (B, T, *trailing), final state, recordings).

    The recordings reproduce sinabs' aliasing quirk (docs/semantics.md, section 5): for ``t < T - 1``,
    ``recordings["v_mem"][:, t]`` is the *pre-reset, pre-clamp* membrane of step ``t + 1`` and
    ``recordings["i_syn"][:, t]`` the synaptic current of step ``t + 1``; only the last entry
    is the state after step ``T - 1``.
    """
    return run_lif_recurrent(input_data, state, LIFParams(**neuron), rec_connect, record_states,
                             spec)


def run_lif_recurrent(input_data: Tensor, state: Dict[str, Tensor], params: LIFParams,
                      rec_connect: torch.nn.Module, record_states: bool = False,
                      spec: Optional[KernelSpec] = None
                      ) -> Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor]]:
    """:func:`lif_recurrent` on the neuron's parameters as one value (what the layers call)."""
    alpha_mem, alpha_syn, spike_fn = params.alpha_mem, params.alpha_syn, params.spike_fn
    if spec is None:
        spec = kernel_spec(spike_fn, params.reset_fn, params.surrogate_grad_fn)
    batch, steps, *trailing = input_data.shape
    trailing = tuple(trailing)
    flat = (batch, 1, math.prod(trailing))
    names = list(state)
    state = dict(state)
    syn = alpha_syn is not None
    spiking = spike_fn is not None
    device = input_data.device
    grad_enabled = torch.is_grad_enabled()
    alpha_grad = grad_enabled and requires_grad(alpha_mem, alpha_syn)

    linear = _linear_map(rec_connect, trailing)
    if linear is not None and spiking:
        plan = fused_plan(CallShape(input_data.dtype, batch, trailing, device), state, params,
                          spec)
        if (plan is not None and not plan.prescale and plan.compute == input_data.dtype
                and plan.options["surrogate_kind"] != ops.SurrogateKind.PRECOMPUTED
                and linear.weight.dtype == torch.float32
                and (linear.bias is None or linear.bias.dtype == torch.float32)):
            return _fused_recurrent(plan, input_data, state, linear, names, alpha_grad,
                                    record_states)

    plans: Dict[tuple, Optional[FusedPlan]] = {}
    outputs, v_hats, i_syns = [], [], []
    rec_out = torch.zeros((batch, *trailing), device=device)
    # One unbind rather than input_data[:, step] per step: the gradient of each indexed slice
    # would be a zero-filled tensor of the whole input, summed T times (O(T^2) memory traffic,
    # most of sinabs' backward at T = 100); unbind's backward is one stack.
    for step, x_t in enumerate(input_data.unbind(1)):
        total = x_t + rec_out
        key = (total.dtype, state["v_mem"].dtype, state["i_syn"].dtype if syn else None)
        if key not in plans:
            plan = fused_plan(CallShape(total.dtype, batch, trailing, device), state, params,
                              spec)
            plans[key] = _broadcast_once(plan, batch, math.prod(trailing))
        plan = plans[key]
        if plan is not None:
            out, v_hat, state = _fused_step(
                plan, total, state, alpha_mem, syn, spiking, alpha_grad, grad_enabled,
                params.surrogate_grad_fn, record_states,
            )
        else:
            out, v_hat, state = _reference_step(total, state, params)
        outputs.append(out)
        if record_states and step > 0:
            # sinabs' recorded dict of step - 1 is mutated by this step before its reset.
            v_hats.append(v_hat)
            if syn:
                i_syns.append(state["i_syn"].reshape(flat))
        spikes = out.reshape(batch, *trailing)
        rec_out = rec_connect(spikes).reshape((batch, *trailing))

    shape = (batch, steps, *trailing)
    output = torch.cat(outputs, 1).reshape(shape)
    # The final states are (B, *trailing) already (the op returns them shaped like its state
    # arguments), and must not be views: reset_states detaches them in place.
    recordings = {}
    if record_states:
        final = {"v_mem": v_hats, "i_syn": i_syns}
        for name in names:
            entries = final[name] + [state[name].reshape(flat)]
            recordings[name] = torch.cat(entries, 1).reshape(shape)
    return output, state, recordings
