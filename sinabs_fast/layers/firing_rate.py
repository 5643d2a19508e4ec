"""The fused neuron layers' ``firing_rate``, computed from the kernel's spike counts when it is
first read rather than on every call (two torch ops per call otherwise)."""

from typing import NamedTuple

import torch


class LazyRate(NamedTuple):
    """A layer's firing rate as the spike counts it is computed from, when first read: the mean
    of the spikes, equal to ``output.mean()`` while the spike total is exact in float32 (below
    2^24)."""

    counts: torch.Tensor
    neuron_steps: int
    grad_enabled: bool  # the forward's grad mode, which the division is recorded in

    def value(self) -> torch.Tensor:
        with torch.set_grad_enabled(self.grad_enabled):
            return self.counts.sum().div_(self.neuron_steps)

    def __deepcopy__(self, memo: dict) -> torch.Tensor:
        """Copies (sinabs_fast.conversion) hold the value, without its graph."""
        return self.value().detach().clone()


class FiringRate:
    """Mixin of the fused neuron layers: ``firing_rate`` as a property over ``_firing_rate``,
    which a forward sets to a tensor or a :class:`LazyRate`."""

    @property
    def firing_rate(self) -> torch.Tensor:
        """The mean of the last output (sinabs' ``firing_rate``), as a tensor with its graph."""
        rate = self.__dict__.get("_firing_rate")
        if isinstance(rate, LazyRate):
            rate = self.__dict__["_firing_rate"] = rate.value()
        if rate is None:  # before the first call; or a layer unpickled in sinabs' layout
            if "firing_rate" in self.__dict__:
                return self.__dict__["firing_rate"]
            raise AttributeError(f"'{type(self).__name__}' object has no attribute 'firing_rate'")
        return rate

    @firing_rate.setter
    def firing_rate(self, value) -> None:
        self.__dict__["_firing_rate"] = value
