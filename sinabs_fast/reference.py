"""The readable specification of the fused LIF-family op, in plain PyTorch.

This is sinabs 3.1.3's per-step update (semantics note §5.3) written out once: one torch op per
line, in the order the fused kernels reproduce bit for bit. Layers fall back to it for what the
kernels do not cover (a custom spike or reset function, unusual dtype mixes), and the tests use
it as an independent oracle next to sinabs itself.
"""

from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor


def lif_step(
    x: Tensor,
    state: Dict[str, Tensor],
    alpha_mem: Tensor,
    alpha_syn: Optional[Tensor],
    spike_threshold: Optional[Tensor],
    spike_fn: Optional[Callable],
    reset_fn: Optional[Callable],
    surrogate_grad_fn: Optional[Callable],
    min_v_mem: Optional[Tensor],
    norm_input: bool,
) -> Tuple[Tensor, Dict[str, Tensor]]:
    """One time step. Returns (output, new state); the output is the spikes, or the pre-clamp
    membrane when ``spike_fn`` is None (ExpLeak)."""
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
) -> Tuple[Tensor, Dict[str, Tensor], Dict[str, Tensor]]:
    """All steps of ``input_data`` (B, T, ...). Returns (output (B, T, ...), final state,
    recordings): the recordings hold each state after each step (post-reset, post-clamp)."""
    names = list(state)
    outputs, recordings = [], {name: [] for name in names}
    for t in range(input_data.shape[1]):
        out, state = lif_step(input_data[:, t], state, alpha_mem, alpha_syn, spike_threshold,
                              spike_fn, reset_fn, surrogate_grad_fn, min_v_mem, norm_input)
        outputs.append(out)
        if record_states:
            for name in names:
                recordings[name].append(state[name].clone())
    state = {name: state[name] for name in names}
    recorded = {n: torch.stack(r, 1) for n, r in recordings.items()} if record_states else {}
    return torch.stack(outputs, 1), state, recorded
