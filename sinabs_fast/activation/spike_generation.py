"""Spike functions with sinabs 3.1.3's interface: ``fn.apply(v_mem, spike_threshold, surrogate)``.

Layers map them onto the fused kernel (``sinabs_fast.neuron_spec``); called directly they are
plain torch autograd Functions, so they also serve the pure-PyTorch reference.
"""

from dataclasses import dataclass
from typing import Callable, List, Optional, Union

import torch


class _SurrogateBackward:
    """Backward shared by the spike functions: ``grad * surrogate(v_hat, threshold)``. There is
    no gradient to the threshold through the spike function (as in sinabs)."""

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (v_mem,) = ctx.saved_tensors
        grad = ctx.surrogate_grad_fn(v_mem, ctx.spike_threshold)
        return (grad_output * grad,) + (None,) * (ctx.n_inputs - 1)


def _save(ctx, v_mem, spike_threshold, surrogate_grad_fn, n_inputs):
    ctx.save_for_backward(v_mem.clone())
    ctx.spike_threshold = spike_threshold
    ctx.surrogate_grad_fn = surrogate_grad_fn
    ctx.n_inputs = n_inputs


def _multi_spikes(v_mem, spike_threshold):
    # (v > 0) * trunc(v / thr): the mask multiplies, so -0.0 and NaN come out as in sinabs.
    return (v_mem > 0) * torch.div(v_mem, spike_threshold, rounding_mode="trunc").float()


class MultiSpike(_SurrogateBackward, torch.autograd.Function):
    """Emits ``trunc(v_mem / spike_threshold)`` spikes where ``v_mem > 0``. Pass the class itself
    (``spike_fn=MultiSpike``), not an instance."""

    required_states: List[str] = ["v_mem"]

    @staticmethod
    def forward(ctx, v_mem, spike_threshold, surrogate_grad_fn):
        _save(ctx, v_mem, spike_threshold, surrogate_grad_fn, 3)
        return _multi_spikes(v_mem, spike_threshold)


class SingleSpike(_SurrogateBackward, torch.autograd.Function):
    """Emits one spike where ``v_mem - spike_threshold >= 0``. Pass the class itself."""

    required_states: List[str] = ["v_mem"]

    @staticmethod
    def forward(ctx, v_mem, spike_threshold, surrogate_grad_fn):
        _save(ctx, v_mem, spike_threshold, surrogate_grad_fn, 3)
        return (v_mem - spike_threshold >= 0).float()


class MaxSpikeInner(_SurrogateBackward, torch.autograd.Function):
    """MultiSpike clamped at ``max_num_spikes_per_bin`` spikes per step (the clamp is ignored by
    the backward, as in sinabs)."""

    required_states: List[str] = ["v_mem", "max_num_spikes_per_bin"]

    @staticmethod
    def forward(ctx, v_mem, max_num_spikes_per_bin, spike_threshold, surrogate_grad_fn):
        _save(ctx, v_mem, spike_threshold, surrogate_grad_fn, 4)
        spikes = _multi_spikes(v_mem, spike_threshold)
        if max_num_spikes_per_bin is not None:
            spikes = torch.clamp(spikes, max=max_num_spikes_per_bin)
        return spikes


@dataclass
class MaxSpike:
    """MultiSpike with at most ``max_num_spikes_per_bin`` spikes per step. Pass an instance:
    ``spike_fn=MaxSpike(3)``."""

    max_num_spikes_per_bin: Optional[int] = None

    def apply(self, v_mem: torch.Tensor, spike_threshold: Union[float, torch.Tensor],
              surrogate_grad_fn: Callable) -> torch.Tensor:
        return MaxSpikeInner.apply(v_mem, self.max_num_spikes_per_bin, spike_threshold,
                                   surrogate_grad_fn)

    @property
    def required_states(self) -> List[str]:
        return ["v_mem"]
