"""Synaptic operations of a training network, per layer and per sample, through the project's
hooks (:func:`sinabs_fast.hooks.register_synops_hooks`): differentiable, read from the spiking
layers' spike counts, and all-reduced over the ranks of a distributed job.

A Conv2d's or Linear's synops are the spikes (or input values) it receives times each input's
fan-out; as in sinabs, a layer after average pooling counts the pooled input times the window
size (the events a sum-pooling chip would see). The first counted layer's input is the data, so
its synops do not depend on the network: the *own* synops are those of every other counted
layer, the ones a penalty can change.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from .. import hooks
from ..utils import stateful_classes


class SynopsMeter:
    """Registers the synops and firing-rate hooks on ``model`` and reads them after a forward.

    Args:
        model: the ``nn.Sequential`` (unwrapped: not the DDP module).
    """

    def __init__(self, model: nn.Sequential):
        hooks.register_synops_hooks(model)
        self.model = model
        self.counted = [(str(i), m) for i, m in enumerate(model)
                        if isinstance(m, (nn.Conv2d, nn.Linear))]
        if not self.counted:
            raise ValueError("model: no Conv2d or Linear layer to count synops on")
        self.spiking = [(str(i), m) for i, m in enumerate(model)
                        if isinstance(m, stateful_classes()) and m.does_spike]
        for _, layer in self.spiking:
            layer.register_forward_hook(hooks.firing_rate_hook)

    def all_reduce(self, group=None) -> None:
        """Makes the last forward's synops those of the global batch (every rank calls it)."""
        hooks.all_reduce_synops(self.model, group)

    def layer_synops(self, timesteps: int) -> List[Tensor]:
        """Per counted layer, the last forward's synops per sample (differentiable)."""
        per_step = self.model.hook_data["synops_per_timestep"]
        return [per_step[int(name)] * timesteps for name, _ in self.counted]

    def firing_rates(self) -> List[Tensor]:
        """Per spiking layer, the last forward's spikes per neuron and time step."""
        return [layer.hook_data["firing_rate"] for _, layer in self.spiking]

    def layer_descriptions(self) -> List[Dict[str, str]]:
        return [{"name": name, "type": type(layer).__name__,
                 "input": "data" if index == 0 else "spikes"}
                for index, (name, layer) in enumerate(self.counted)]


def own_synops(layer_synops: List[Tensor]) -> Tensor:
    """The synops of every counted layer but the first (whose input is the data)."""
    return sum(layer_synops[1:], torch.zeros_like(layer_synops[0]))


@dataclass
class SynopsPenalty:
    """The synops loss of sinabs' documentation, ``weight * (target - synops)^2 / target^2``,
    on the own synops per sample; ``target`` is a number (never part of the graph)."""

    target: float
    weight: float = 1.0

    def __post_init__(self):
        if not self.target > 0:
            raise ValueError(f"target synops must be positive, got {self.target}")
        if not self.weight >= 0:
            raise ValueError(f"synops weight must be non-negative, got {self.weight}")

    def __call__(self, synops: Tensor) -> Tensor:
        return self.weight * (self.target - synops).square() / self.target ** 2


def penalty_for(baseline_own: float, fraction: Optional[float], target: Optional[float],
                weight: float) -> SynopsPenalty:
    """The penalty aimed at ``target`` own synops per sample, or else at ``fraction`` of the
    baseline's."""
    if target is None:
        if fraction is None or not 0 < fraction:
            raise ValueError(f"synops fraction must be positive, got {fraction}")
        target = fraction * baseline_own
        if not target > 0:
            raise ValueError(
                f"the baseline's own synops per sample are {baseline_own}: its hidden layers do "
                "not spike, so a fraction of them is no target; pass --target-synops")
    return SynopsPenalty(float(target), weight)
