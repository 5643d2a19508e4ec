"""ExpLeak: a leaky integrator without spikes (LIF with no spike function and no threshold)."""

from typing import Optional, Union

import torch

from .lif import LIF
from .neuron_layer import passed_on
from .reshape import SqueezedLayer


class ExpLeak(LIF):
    """Leaky integrator: ``v = alpha * v + x`` (``+ (1 - alpha) * x`` with ``norm_input``) each
    step, ``alpha = exp(-1 / tau_mem)``; the output is the membrane before the ``min_v_mem``
    clamp. Same arguments, defaults and state behaviour as ``sinabs.layers.ExpLeak`` (3.1.3).

    Shape:
        Input and output: ``(batch, time, *trailing)``.
    """

    def __init__(
        self,
        tau_mem: Union[float, torch.Tensor],
        shape: Optional[torch.Size] = None,
        train_alphas: bool = False,
        min_v_mem: Optional[float] = None,
        norm_input: bool = False,
        record_states: bool = False,
    ):
        super().__init__(tau_syn=None, spike_threshold=None, spike_fn=None, reset_fn=None,
                         surrogate_grad_fn=None, **passed_on(locals()))

    @property
    def _param_dict(self) -> dict:
        param_dict = super()._param_dict
        for key in ("tau_syn", "spike_fn", "reset_fn", "surrogate_grad_fn", "spike_threshold"):
            param_dict.pop(key)
        return param_dict


class ExpLeakSqueeze(SqueezedLayer, ExpLeak):
    """ExpLeak on squeezed input (batch*time, ...)."""
