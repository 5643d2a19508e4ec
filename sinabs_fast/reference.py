"""The readable specification of the fused ops, in plain PyTorch.

This is sinabs 3.1.3's per-step update (docs/semantics.md, section 1; section 2 for the adaptive neuron)
written out once: one torch op per
line, in the order the fused kernels reproduce bit for bit. Layers fall back to it for what the
kernels do not cover (a custom spike or reset function, unusual dtype mixes), and the tests use
it as an independent oracle next to sinabs itself.
"""

from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from .neuron_params import ALIFParams, LIFParams


def lif_step(x: Tensor, state: Dict[str, Tensor], alpha_mem: Tensor, alpha_syn: Optional[Tensor],
             spike_threshold: Optional[Tensor], spike_fn: Optional[Callable],
             reset_fn: Optional[Callable], surrogate_grad_fn: Optional[Callable],
             min_v_mem: Optional[Tensor], norm_input: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
    """One time step (the parameters in :class:`~sinabs_fast.neuron_params.LIFParams`' order,
    so ``lif_step(x, state, *params)``). Returns (output, new state); the output is the spikes,
    or the pre-clamp membrane when ``spike_fn`` is None (ExpLeak)."""
    state = dict(state)
    if alpha_syn is not None:
        state["i_syn"] = alpha_syn * (state["i_syn"] + x)  # the input decays in its own step
    else:
        state["i_syn"] = x
    current = (1 - alpha_mem) * state["i_syn"] if norm_input else state["i_syn"]
    state["v_mem"] = alpha_mem * state["v_mem"] + current  # two roundings, never an FMA
    if spike_fn is not None:
        spikes = spike_fn.apply(
            *[state[name] for name in spike_fn.required_states], spike_threshold,
            surrogate_grad_fn,
        )
        state = reset_fn(spikes, state, spike_threshold)
    else:
        spikes = state["v_mem"].clone()
    if min_v_mem is not None:
        # relu(v - m) + m, which rounds differently from max(v, m)
        state["v_mem"] = torch.nn.functional.relu(state["v_mem"] - min_v_mem) + min_v_mem
    return spikes, state


def lif_forward(
    input_data: Tensor, state: Dict[str, Tensor], params: LIFParams, record_states: bool = False,
) -> Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor]]:
    """All steps of ``input_data`` (B, T, ...). Returns (output (B, T, ...), final state,
    recordings): the recordings hold each state after each step (post-reset, post-clamp)."""
    names = list(state)
    outputs, recordings = [], {name: [] for name in names}
    for t in range(input_data.shape[1]):
        out, state = lif_step(input_data[:, t], state, *params)
        outputs.append(out)
        if record_states:
            for name in names:
                recordings[name].append(state[name].clone())
    state = {name: state[name] for name in names}
    recorded = {n: torch.stack(r, 1) for n, r in recordings.items()} if record_states else {}
    return torch.stack(outputs, 1), state, recorded


def alif_step(x: Tensor, state: Dict[str, Tensor], alpha_mem: Tensor, alpha_adapt: Tensor,
              alpha_syn: Optional[Tensor], adapt_scale, b0, spike_fn: Callable, reset_fn: Callable,
              surrogate_grad_fn: Callable, min_v_mem, norm_input: bool
              ) -> Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor]]:
    """One step of the adaptive LIF neuron (docs/semantics.md, section 2), the parameters in
    :class:`~sinabs_fast.neuron_params.ALIFParams`' order (``alif_step(x, state, *params)``).
    Returns (spikes, new state, pre-reset state): the last holds the step's synaptic current,
    pre-spike membrane and threshold, which sinabs' recordings show one step late (see
    :func:`alif_forward`)."""
    state = dict(state)
    if alpha_syn is not None:
        state["i_syn"] = alpha_syn * (state["i_syn"] + x)
    else:
        state["i_syn"] = x
    if norm_input:
        # Unlike LIF, the rescaled current is what the state keeps (and carries to the next step)
        state["i_syn"] = (1 - alpha_mem) * state["i_syn"]
    state["v_mem"] = alpha_mem * state["v_mem"] + state["i_syn"]
    state["spike_threshold"] = b0 + adapt_scale * state["b"]
    pre_reset = dict(state)
    spikes = spike_fn.apply(
        *[state[name] for name in spike_fn.required_states], state["spike_threshold"],
        surrogate_grad_fn,
    )
    # The reset subtracts the adaptive threshold (or subtract_value).
    state = reset_fn(spikes, state, state["spike_threshold"])
    state["b"] = alpha_adapt * state["b"] + (1 - alpha_adapt) * spikes
    state["spike_threshold"] = b0 + adapt_scale * state["b"]
    if min_v_mem is not None:
        state["v_mem"] = torch.nn.functional.relu(state["v_mem"] - min_v_mem) + min_v_mem
    return spikes, state, pre_reset


def alif_forward(
    input_data: Tensor,
    state: Dict[str, Tensor],
    params: ALIFParams,
    record_states: bool = False,
    rec_connect: Optional[Callable[[Tensor], Tensor]] = None,
) -> Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor]]:
    """All steps of ``input_data`` (B, T, ...); with ``rec_connect``, each step's input also gets
    ``rec_connect(spikes of the previous step)`` (zeros at the first step). Returns (spikes,
    final state, recordings).

    The recordings are sinabs' (docs/semantics.md, section 5): its step function mutates the state dict it
    later records, so for ``t < T - 1`` entry ``t`` shows step ``t + 1``'s synaptic current and
    pre-reset membrane next to step ``t``'s ``b`` and threshold; entry ``T - 1`` is the final
    state."""
    names = list(state)
    batch, steps, *trailing = input_data.shape
    outputs, recorded = [], []
    rec_out = torch.zeros((batch, *trailing), device=input_data.device)
    for t in range(steps):
        x = input_data[:, t] if rec_connect is None else input_data[:, t] + rec_out
        spikes, state, pre_reset = alif_step(x, state, *params)
        outputs.append(spikes)
        if record_states:
            if recorded:  # the previous entry sees this step's pre-reset values
                recorded[-1].update(
                    {k: pre_reset[k] for k in ("i_syn", "v_mem", "spike_threshold")})
            recorded.append(dict(state))
        if rec_connect is not None:
            rec_out = rec_connect(spikes).reshape((batch, *trailing))
    recordings = {}
    if record_states:
        recordings = {n: torch.stack([r[n] for r in recorded], 1) for n in names}
    return torch.stack(outputs, 1), state, recordings
