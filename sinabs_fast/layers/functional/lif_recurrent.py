"""The recurrent LIF-family forward (as ``sinabs.layers.functional.lif_recurrent``).

``rec_connect`` is an arbitrary module, so time stays a Python loop; each step's neuron update
(forward and backward) is one call of the fused op on a (B, 1, N) slice. The op's arguments are
planned once per dtype combination (normally once per call), not per step.
"""

import math
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from ... import ops, reference
from ...neuron_spec import KernelSpec, kernel_spec
from .lif import FusedPlan, fused_plan

_OP = torch.ops.sinabs_fast.lif_forward.default


class _FusedStep(torch.autograd.Function):
    """One op call with the op's fused backward, as a plain autograd Function: per step this is
    several times cheaper than the op's generic ``torch.library`` autograd wrapper, which
    matters when the op runs T times per layer call. Same saved tensors and backward kernel
    (``ops._setup_context`` / ``ops._backward_kernel``)."""

    @staticmethod
    def forward(*args):
        return _OP(*args)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ops._setup_context(ctx, inputs, output)

    @staticmethod
    def backward(ctx, *grads):
        return ops._backward_kernel(ctx, grads, None)


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
        alpha_mem=full(plan.alpha_mem) if plan.norm_input else full(plan.alpha_mem, plan.compute),
        alpha_syn=full(plan.alpha_syn, plan.compute),
    )


def _requires_grad(t: Optional[Tensor]) -> bool:
    return isinstance(t, Tensor) and t.requires_grad


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
    grad = grad_enabled and (alpha_grad or x.requires_grad or v.requires_grad
                             or _requires_grad(i))
    args = (
        x, v, i, plan.alpha_mem, plan.alpha_syn, plan.norm_input, plan.threshold, plan.amount,
        plan.min_v_mem, plan.spike_kind, plan.max_spikes, plan.reset_kind, plan.reset_value,
        plan.surrogate_kind, plan.surrogate_params,
        grad or record_states or not spiking,  # keep_v_hat
        syn and alpha_grad,  # keep_i_syn: the alpha gradients with synaptic current need it
    )
    if not grad:
        out = _OP(*args)
    elif plan.surrogate_kind == ops.SurrogateKind.PRECOMPUTED and spiking:
        out = ops._CallableSurrogateLIF.apply(surrogate_grad_fn, *args)
    else:
        out = _FusedStep.apply(*args)
    spikes, v_hat, _, v_new, i_new, _ = out
    new_state = {"v_mem": v_new, "i_syn": i_new if syn else total}
    return (spikes if spiking else v_hat), v_hat, new_state


def _reference_step(x: Tensor, state: Dict[str, Tensor], alpha_mem, alpha_syn, spike_threshold,
                    spike_fn, reset_fn, surrogate_grad_fn, min_v_mem, norm_input):
    """One time step on the pure-PyTorch reference, keeping the pre-reset membrane."""
    seen = {}

    def reset(spikes, st, threshold):
        seen["v_hat"] = st["v_mem"]
        return reset_fn(spikes, st, threshold)

    out, new_state = reference.lif_step(
        x, state, alpha_mem, alpha_syn, spike_threshold, spike_fn,
        reset if spike_fn is not None else reset_fn, surrogate_grad_fn, min_v_mem, norm_input,
    )
    v_hat = seen.get("v_hat", out)  # without spikes the output is the pre-clamp membrane
    batch = x.shape[0]
    return out.reshape(batch, 1, -1), v_hat.reshape(batch, 1, -1), new_state


def lif_recurrent(
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
    rec_connect: torch.nn.Module,
    record_states: bool = False,
    spec: Optional[KernelSpec] = None,
) -> Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor]]:
    """Fused-step drop-in for ``sinabs.layers.functional.lif_recurrent`` (sinabs 3.1.3).

    ``input_data`` is (B, T, *trailing). Each step the neuron receives ``x_t + rec_out``, where
    ``rec_out`` starts as float32 zeros (B, *trailing) and is then
    ``rec_connect(spikes_t).reshape(B, *trailing)`` (also computed after the last step, as in
    sinabs, so a stateful or random ``rec_connect`` sees the same calls). Returns (output
    (B, T, *trailing), final state, recordings).

    The recordings reproduce sinabs' aliasing quirk (semantics note §5.4): for ``t < T - 1``,
    ``recordings["v_mem"][:, t]`` is the *pre-reset, pre-clamp* membrane of step ``t + 1`` and
    ``recordings["i_syn"][:, t]`` the synaptic current of step ``t + 1``; only the last entry
    is the state after step ``T - 1``.
    """
    if spec is None:
        spec = kernel_spec(spike_fn, reset_fn, surrogate_grad_fn)
    batch, steps, *trailing = input_data.shape
    trailing = tuple(trailing)
    flat = (batch, 1, math.prod(trailing))
    names = list(state)
    state = dict(state)
    syn = alpha_syn is not None
    spiking = spike_fn is not None
    device = input_data.device
    grad_enabled = torch.is_grad_enabled()
    alpha_grad = grad_enabled and (_requires_grad(alpha_mem) or _requires_grad(alpha_syn))

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
            plans[key] = _broadcast_once(fused_plan(
                total.dtype, batch, trailing, device, alpha_mem, alpha_syn, state,
                spike_threshold, spike_fn, reset_fn, surrogate_grad_fn, min_v_mem, norm_input,
                spec,
            ), batch, math.prod(trailing))
        plan = plans[key]
        if plan is not None:
            out, v_hat, state = _fused_step(
                plan, total, state, alpha_mem, syn, spiking, alpha_grad, grad_enabled,
                surrogate_grad_fn, record_states,
            )
        else:
            out, v_hat, state = _reference_step(
                total, state, alpha_mem, alpha_syn, spike_threshold, spike_fn, reset_fn,
                surrogate_grad_fn, min_v_mem, norm_input,
            )
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
