"""snnTorch 1.0: the single-step ``Leaky`` neuron, looped over time in Python as snnTorch's
tutorials do (time-major input, one call per step).

The configuration in snnTorch's terms: ``threshold=1``, ``reset_mechanism="subtract"``,
``beta = alpha_mem`` (1 for IAF) and ``reset_delay=False``. With the default
``reset_delay=True`` a spike's reset is applied at the *next* step, before the decay, so it
subtracts ``threshold`` where the configuration subtracts ``alpha * threshold``, and it is
detached from the graph; with ``reset_delay=False`` the step's own spike is subtracted at once,
through the graph, which is the configuration's update. (snnTorch still subtracts a detached
``threshold * [v >= threshold]`` of the stored membrane first: zero unless a membrane is still
at or above the threshold after its reset, which needs an input of at least the threshold;
the gate's and the benchmark's inputs stay below it.) The surrogate is a
``surrogate.custom_surrogate`` with the configuration's ``exp(-2 |v - 1|)``.

lif-syn is not expressible: ``Synaptic``'s current carries membranes past twice the threshold,
so the extra detached subtraction above fires (the gate fails it: 304 of 2,880 spikes differ).
"""

import torch
from torch import Tensor, nn

from ..cases import Shape
from ._common import DeclaredPeer, SequenceRunner
from .base import Runner
from .configs import CONFIGS, SURROGATE_DECAY


def _exponential_surrogate(input_: Tensor, grad_input: Tensor, spikes: Tensor) -> Tensor:
    """snnTorch's custom-surrogate signature; ``input_`` is the membrane minus the threshold."""
    return grad_input * torch.exp(-SURROGATE_DECAY * input_.abs())


class _Looped(nn.Module):
    """Steps one snnTorch neuron through a (T, B, N) sequence from zero state (so there is no
    state to reset between calls)."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    def forward(self, x: Tensor) -> Tensor:
        mem = torch.zeros_like(x[0])
        spikes = []
        for x_t in x:
            spk, mem = self.cell(x_t, mem)
            spikes.append(spk)
        return torch.stack(spikes)


class SnnTorchPeer(DeclaredPeer):
    name = "snntorch"
    requirement = "snntorch==1.0.0"
    module = "snntorch"
    layers = ("iaf", "lif")
    inexpressible = {
        "lif-syn": "snnTorch's Synaptic subtracts the threshold a second time where a membrane "
                   "stays above it after its reset",
        "lif-recurrent": "snnTorch's RLeaky: the recurrent input can carry a membrane past "
                         "twice the threshold, where it subtracts the threshold a second time",
        "alif": "snnTorch's Leaky has no adaptive threshold",
        "expleak": "not adapted: snnTorch has no non-spiking Leaky in this form",
    }

    def build(self, layer: str, shape: Shape, device: str, dtype: torch.dtype) -> Runner:
        import snntorch
        from snntorch import surrogate
        config = CONFIGS[layer]
        cell = snntorch.Leaky(beta=config.alpha_mem, threshold=config.threshold,
                              reset_mechanism="subtract", reset_delay=False,
                              spike_grad=surrogate.custom_surrogate(_exponential_surrogate))
        module = _Looped(cell).to(device)
        return SequenceRunner(module, reset=lambda: None, time_major=True)
