"""IAF: integrate-and-fire neurons (LIF with alpha_mem = 1 and no input scaling)."""

from typing import Callable, Optional

import numpy as np
import torch

from ..activation import MembraneSubtract, MultiSpike, SingleExponential
from .lif import LIF, LIFRecurrent
from .neuron_layer import passed_on
from .recurrent_arguments import arguments_of
from .reshape import SqueezedLayer


class _NoLeak:
    """What integrate-and-fire layers change in their LIF base: alpha_mem is always 1, and the
    constructor has no tau_mem, train_alphas or norm_input."""

    def __init__(self, **arguments):
        super().__init__(tau_mem=np.inf, norm_input=False, **arguments)
        self.tau_mem = None  # IAF has no membrane time constant

    @property
    def alpha_mem_calculated(self) -> torch.Tensor:
        """Always 1, on the layer's device: made there by a fill, since copying a host tensor to
        a GPU waits for the GPU's queued work (a host-device synchronisation every call); made
        once per device, as nothing writes to it."""
        device = self.spike_threshold.device
        one = self.__dict__.get("_alpha_mem_one")
        if one is None or one.device != device:
            one = self.__dict__["_alpha_mem_one"] = torch.ones((), device=device)
        return one

    @property
    def _param_dict(self) -> dict:
        param_dict = super()._param_dict
        for key in ("tau_mem", "train_alphas", "norm_input"):
            param_dict.pop(key)
        return param_dict


class IAF(_NoLeak, LIF):
    """Integrate-and-fire neurons: ``v = v + i`` each step, spikes at ``spike_threshold``, then
    the reset. Same arguments, defaults, parameters (no ``tau_mem``) and state behaviour as
    ``sinabs.layers.IAF`` (3.1.3), with bit-identical outputs on the CPU.

    Args:
        spike_threshold: positive scalar or per-neuron tensor (default 1.0).
        spike_fn: ``MultiSpike`` / ``SingleSpike`` (the class) or a ``MaxSpike(n)`` instance.
        reset_fn: ``MembraneSubtract()`` or ``MembraneReset()``.
        surrogate_grad_fn: surrogate gradient of the spike function.
        tau_syn: synaptic time constant (trainable); None for no synaptic current.
        min_v_mem: lower bound of the membrane.
        shape: initialise the states now with this shape.
        record_states: keep every step's states in ``self.recordings``.

    Shape:
        Input and output: ``(batch, time, *trailing)``.
    """

    def __init__(
        self,
        spike_threshold: torch.Tensor = torch.tensor(1.0),
        spike_fn: Callable = MultiSpike,
        reset_fn: Callable = MembraneSubtract(),
        surrogate_grad_fn: Callable = SingleExponential(),
        tau_syn: Optional[float] = None,
        min_v_mem: Optional[float] = None,
        shape: Optional[torch.Size] = None,
        record_states: bool = False,
    ):
        super().__init__(**passed_on(locals()))


class IAFRecurrent(_NoLeak, LIFRecurrent):
    """Integrate-and-fire neurons with recurrent connections: :class:`LIFRecurrent` with
    ``alpha_mem = 1`` and no input scaling. Same arguments, defaults, parameters (no
    ``tau_mem``) and state behaviour as ``sinabs.layers.IAFRecurrent`` (3.1.3), with
    bit-identical outputs on the CPU; the recordings keep sinabs' step-shifted quirk (see
    :class:`LIFRecurrent`).

    Args:
        rec_connect: the recurrent module, fed the spikes ``(batch, *trailing)``.
        spike_threshold, spike_fn, reset_fn, surrogate_grad_fn, tau_syn, min_v_mem, shape,
        record_states: as in :class:`IAF`.
    """

    @arguments_of(IAF.__init__, rec_connect_after=None)
    def __init__(self, **arguments):
        super().__init__(**arguments)


class IAFSqueeze(SqueezedLayer, IAF):
    """IAF on squeezed input (batch*time, ...), for use between Conv2d / pooling layers."""
