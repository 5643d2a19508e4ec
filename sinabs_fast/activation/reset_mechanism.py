"""Reset mechanisms with sinabs 3.1.3's interface: ``reset_fn(spikes, state, threshold)``."""

from dataclasses import dataclass
from typing import Optional, Union

import torch


@dataclass
class MembraneReset:
    """Sets ``v_mem`` to ``v_mem * (spikes == 0) + reset_value``.

    Note: like sinabs 3.1.3, ``reset_value`` is added to *every* neuron, spiking or not; keep it
    at 0 unless that is what you want. No gradient flows through the spikes here.
    """

    reset_value: float = 0.0

    def __call__(self, spikes: torch.Tensor, state: dict, spike_threshold) -> dict:
        new_state = dict(state)
        new_state["v_mem"] = state["v_mem"] * (spikes == 0).float() + self.reset_value
        return new_state


@dataclass
class MembraneSubtract:
    """Subtracts ``spikes * subtract_value`` (default: the spike threshold) from ``v_mem``.
    The gradient flows through the spikes (d v / d s = -subtract_value)."""

    subtract_value: Optional[Union[float, torch.Tensor]] = None

    def __call__(self, spikes: torch.Tensor, state: dict, spike_threshold) -> dict:
        amount = spike_threshold if self.subtract_value is None else self.subtract_value
        new_state = dict(state)
        new_state["v_mem"] = state["v_mem"] - spikes * amount
        return new_state
