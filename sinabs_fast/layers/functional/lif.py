"""The LIF-family forward over all time steps, on the fused op where it reproduces sinabs exactly
and on the pure-PyTorch reference otherwise."""

import math
from typing import Callable, Dict, Optional, Tuple, Union

import torch
from torch import Tensor

from ... import ops, reference
from ...neuron_spec import KernelSpec, kernel_spec
from .dtypes import operand, steady_dtypes

Param = Union[Tensor, float, None]


def _per_neuron(value: Param, name: str, batch: int, trailing: Tuple[int, ...],
                device: torch.device) -> Optional[Tensor]:
    """A parameter as the op takes it: 0-dim as it is, otherwise broadcast against the state
    (batch, *trailing) and flattened to (batch, neurons)."""
    if value is None:
        return None
    if not isinstance(value, Tensor):
        return torch.tensor(value, dtype=torch.get_default_dtype(), device=device)
    if value.dim() == 0:
        return value.to(device)
    try:
        full = torch.broadcast_to(value, (batch, *trailing))
    except RuntimeError:
        raise ValueError(
            f"{name} of shape {tuple(value.shape)} does not broadcast against the layer's state "
            f"shape (batch, *trailing) = {(batch, *trailing)}"
        ) from None
    return full.reshape(batch, math.prod(trailing))


def _along_time(value: Param, per_neuron: Optional[Tensor]):
    """A parameter lined up with (B, T, N) tensors for the torch ops of the recordings."""
    if isinstance(value, Tensor) and value.dim() > 0:
        return per_neuron.unsqueeze(1)
    return value


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
) -> Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor], Optional[Tensor]]:
    """Fused drop-in for ``sinabs.layers.functional.lif_forward``.

    ``input_data`` is (B, T, *trailing); ``state`` maps ``v_mem`` (and ``i_syn`` with synaptic
    current) to (B, *trailing) tensors. Returns (output, final state, recordings, spike counts),
    where the spike counts are the spikes summed over time, (B, *trailing), or None without
    spikes. ``spec`` is ``kernel_spec(spike_fn, reset_fn, surrogate_grad_fn)``, when the caller
    has it already (layers do).
    """
    if spec is None:
        spec = kernel_spec(spike_fn, reset_fn, surrogate_grad_fn)
    batch, steps, *trailing = input_data.shape
    trailing = tuple(trailing)
    neurons = math.prod(trailing)
    spikes_spec = spec.spike
    spiking = spike_fn is not None
    resets = spec.reset if spiking else None
    syn = alpha_syn is not None

    fused = spikes_spec is not None and (not spiking or (resets is not None
                                                         and surrogate_grad_fn is not None))
    if fused:
        amount = None
        if spiking and resets.kind == ops.ResetKind.SUBTRACT:
            amount = reset_fn.subtract_value
        if spiking and amount is None:
            amount = spike_threshold
        subtract = spiking and resets.kind == ops.ResetKind.SUBTRACT
        steady, unchanged = steady_dtypes(
            operand(state["v_mem"]), operand(state.get("i_syn")) if syn else None,
            x=operand(input_data), alpha_mem=operand(alpha_mem), alpha_syn=operand(alpha_syn),
            norm_input=norm_input, threshold=operand(spike_threshold),
            amount=operand(amount), min_v_mem=operand(min_v_mem), spiking=spiking,
            subtract=subtract,
        )
        compute = steady.v_mem[0]
        # One compute dtype must reproduce every op; the first call after a dtype change (e.g.
        # float64 input into float32 states) runs the reference once, since its first step
        # rounds in the old dtype.
        fused = (
            unchanged
            and compute in (torch.float32, torch.float64)
            and (not syn or steady.i_syn[0] == compute)
            and (not spiking or steady.spike_div[0] == compute)
        )
    if not fused:
        output, new_state, recordings = reference.lif_forward(
            input_data, alpha_mem, alpha_syn, state, spike_threshold, spike_fn, reset_fn,
            surrogate_grad_fn, min_v_mem, norm_input, record_states,
        )
        return output, new_state, recordings, output.sum(1) if spiking else None

    device = input_data.device
    x = input_data
    op_norm_input = norm_input
    if norm_input and steady.current[0] != compute:
        # (1 - alpha) * x rounds in x's lower precision in sinabs: do that part with torch.
        x = (1 - alpha_mem) * x
        op_norm_input = False
    x = x.reshape(batch, steps, neurons).to(compute)
    per = dict(batch=batch, trailing=trailing, device=device)
    a_mem = _per_neuron(alpha_mem, "alpha_mem", **per)
    a_syn = _per_neuron(alpha_syn, "alpha_syn", **per)
    thr = _per_neuron(spike_threshold, "spike_threshold", **per) if spiking else None
    m = _per_neuron(min_v_mem, "min_v_mem", **per)
    if spiking:
        # s * amount rounds in float32 unless amount is a float64 tensor with dimensions.
        amount_t = _per_neuron(amount, "subtract_value", **per)
        if not (isinstance(amount, Tensor) and amount.dim() > 0):
            amount_t = amount_t.to(torch.float32)
        surrogate_kind, surrogate_params = spec.surrogate
    else:
        thr = amount_t = torch.ones((), dtype=compute, device=device)
        surrogate_kind, surrogate_params = ops.SurrogateKind.SINGLE_EXPONENTIAL, ()
    grad = torch.is_grad_enabled() and any(
        isinstance(t, Tensor) and t.requires_grad
        for t in (x, state["v_mem"], state.get("i_syn"), alpha_mem, alpha_syn)
    )
    alpha_grad = grad and any(isinstance(t, Tensor) and t.requires_grad
                              for t in (alpha_mem, alpha_syn))
    out = ops.lif_forward(
        x, state["v_mem"], state["i_syn"] if syn else None,
        a_mem, a_syn, thr, amount_t, m,
        norm_input=op_norm_input,
        spike_kind=spikes_spec[0],
        max_spikes=spikes_spec[1],
        reset_kind=resets.kind if spiking else ops.ResetKind.SUBTRACT,
        reset_value=resets.value if spiking else 0.0,
        surrogate_kind=surrogate_kind,
        surrogate_params=surrogate_params,
        surrogate_fn=surrogate_grad_fn,
        keep_v_hat=grad or record_states or not spiking,
        keep_i_syn=syn and (record_states or alpha_grad),
    )
    shape = (batch, steps, *trailing)
    output = out.spikes.reshape(shape) if spiking else out.v_hat.reshape(shape)
    new_state = {"v_mem": out.v_mem}  # (B, *trailing) and not a view: reset_states detaches it
    if syn:
        new_state["i_syn"] = out.i_syn
    recordings = {}
    if record_states:
        # The post-reset, post-clamp membrane of every step, with the same torch ops as sinabs.
        v = out.v_hat
        if spiking:
            if resets.kind == ops.ResetKind.SUBTRACT:
                v = v - out.spikes * _along_time(amount, amount_t)
            else:
                v = v * (out.spikes == 0).float() + resets.value
        if min_v_mem is not None:
            m_t = _along_time(min_v_mem, m)
            v = torch.nn.functional.relu(v - m_t) + m_t
        recordings["v_mem"] = v.reshape(shape)
        if syn:
            recordings["i_syn"] = out.i_seq.reshape(shape)
    counts = out.spike_counts.reshape(batch, *trailing) if spiking else None
    return output, new_state, recordings, counts
