"""Norse 1.1: the single-step ``LIFBoxCell`` (LIF without a current term) and ``LIBoxCell``
(leaky integrator), stepped through time by Norse's own time-looped wrapper ``Lift``
(time-major input, a Python loop calling the cell).

Norse integrates ``dv = dt * tau_mem_inv * (v_leak - v + x)``, so with ``v_leak=0`` and
``dt * tau_mem_inv = 1 - alpha`` (``dt=0.001``, ``tau_mem_inv = 100`` for alpha 0.9) one step is
``alpha * v + (1 - alpha) * x``: the runner's untimed ``prepare`` multiplies the input by
``1 / (1 - alpha)`` to make it the configuration's ``alpha * v + x``. The reset is
``reset_method=reset_subtract`` (``(1 - z) v + z (v - v_th)``: the threshold is subtracted,
through the graph). Not expressible: IAF (Norse's ``IAFCell`` only resets to a value, and
``dt * tau_mem_inv = 0`` would also zero the input), lif-syn (``LIFCell`` feeds the current to
the membrane one step later than sinabs does), ALIF, the recurrent layer. Norse's surrogates
(SuperSpike, the default, triangle, tanh, circ, heavi_erfc) do not include the configuration's
exponential, so the gate compares its forward only, and its backward rows use SuperSpike.
"""

from typing import Optional

import torch

from ..cases import Shape
from ._common import DeclaredPeer, SequenceRunner
from .base import Runner
from .configs import CONFIGS

DT = 0.001


class NorsePeer(DeclaredPeer):
    name = "norse"
    requirement = "norse==1.1.0 (pip install --no-deps; see docs/benchmark-peers.md)"
    module = "norse.torch"
    layers = ("lif", "expleak")
    inexpressible = {
        "iaf": "Norse's IAFCell only resets to a value, and LIFBox cannot have alpha = 1",
        "lif-syn": "Norse's LIFCell feeds the current to the membrane one step later",
        "alif": "not adapted: Norse's LSNN adaptation is not sinabs' ALIF",
        "lif-recurrent": "not adapted: Norse's recurrent cells have their own input weights",
    }

    def gradient_reason(self, layer: str) -> Optional[str]:
        if CONFIGS[layer].spiking:
            return "Norse has no exponential surrogate (its default, SuperSpike, is used)"
        return None

    def build(self, layer: str, shape: Shape, device: str, dtype: torch.dtype) -> Runner:
        import norse.torch as norse
        config = CONFIGS[layer]
        rate = 1.0 - config.alpha_mem  # dt * tau_mem_inv
        tau_mem_inv = torch.as_tensor(rate / DT, device=device)
        zero = torch.as_tensor(0.0, device=device)
        if config.spiking:
            p = norse.LIFBoxParameters(tau_mem_inv=tau_mem_inv, v_leak=zero,
                                       v_th=torch.as_tensor(config.threshold, device=device),
                                       v_reset=zero, reset_method=norse.reset_subtract)
            cell = norse.LIFBoxCell(p, dt=DT)
        else:
            cell = norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=tau_mem_inv, v_leak=zero),
                                   dt=DT)
        module = norse.Lift(cell).to(device)
        return SequenceRunner(module, reset=lambda: None, time_major=True,
                              call=lambda x: module(x)[0],  # Lift returns (outputs, state)
                              input_scale=1.0 / rate)
