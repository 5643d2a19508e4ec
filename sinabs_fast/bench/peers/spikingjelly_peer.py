"""SpikingJelly 2.0: multi-step ``IFNode``/``LIFNode`` (time-major (T, B, N) input).

SpikingJelly 2.0 picks the implementation of its neuron ops by device: on the CPU its torch
implementation (a loop over time in float32 with a hand-written backward); on CUDA, native
CUDA (only in a source build) > Triton > torch, unless ``SJ_<OP>_CUDA_IMPLEMENTATION`` says
otherwise. It reads that variable once, at import, so each CUDA peer here sets its
implementation on SpikingJelly's selection objects in its untimed ``reset()`` instead (private
attributes: when a release renames them, the peer reports itself unavailable). There is no
CuPy backend in 2.0.

The configuration in SpikingJelly's terms: ``v_reset=None`` (soft reset: subtract the
threshold), ``detach_reset=False``, ``decay_input=False`` with ``tau = 1 / (1 - alpha)``
(its charge is ``v - v / tau + x``), and ``surrogate.PiecewiseExp(alpha=2)``, whose gradient
``exp(-2 |v - 1|)`` is the configuration's at threshold 1. ExpLeak is ``NonSpikingLIFNode``
(``v + (x - v) / tau``), with the input multiplied by ``tau`` (untimed). Not expressible: a
synaptic current, the adaptive threshold, the recurrent input.
"""

import importlib
from typing import Optional

import torch

from ..cases import Shape
from ._common import DeclaredPeer, SequenceRunner, import_reason
from .base import Runner
from .configs import CONFIGS, SURROGATE_DECAY

# The neuron ops whose CUDA implementation a peer chooses (spikingjelly._ops.<name>).
_OPS = ("if_", "lif")


def _select_cuda_implementation(name: str) -> None:
    """Makes SpikingJelly's IF and LIF ops run ``name`` ("torch", "triton", "cuda") on CUDA."""
    for op in _OPS:
        selection = importlib.import_module(f"spikingjelly._ops.{op}")._selection
        if selection._requested != name:
            selection._requested = name
            selection._selections.clear()
            selection._compiled_selections.clear()


class SpikingJellyPeer(DeclaredPeer):
    requirement = "spikingjelly==2.0.0 (pip install --no-deps; see docs/benchmark-peers.md)"
    module = "spikingjelly.activation_based.neuron"
    dtypes = (torch.float32, torch.bfloat16, torch.float16)

    def __init__(self, name: str, implementation: str, cpu: bool, cuda: bool):
        self.name = name
        self.implementation = implementation  # on CUDA; the CPU has only "torch"
        self.cpu, self.cuda = cpu, cuda
        # NonSpikingLIFNode (expleak) is a Python loop of torch ops whatever the implementation
        self.layers = ("iaf", "lif", "expleak") if implementation == "torch" else ("iaf", "lif")
        self.inexpressible = {
            "expleak": "SpikingJelly's NonSpikingLIFNode has no Triton kernel (the "
                       "spikingjelly-torch row is its only form)",
            **{layer: f"SpikingJelly's IFNode/LIFNode have no {what}" for layer, what in (
                ("lif-syn", "synaptic current"), ("alif", "adaptive threshold"),
                ("lif-recurrent", "recurrent input"))},
        }

    def unavailable_reason(self, device: str) -> Optional[str]:
        reason = super().unavailable_reason(device)
        if reason is None and torch.device(device).type == "cuda":
            if self.implementation == "triton":
                reason = import_reason("triton", "triton")
            if reason is None:
                try:
                    _select_cuda_implementation(self.implementation)
                except (ImportError, AttributeError) as e:
                    reason = f"this SpikingJelly has no selectable CUDA implementations ({e})"
        return reason

    def build(self, layer: str, shape: Shape, device: str, dtype: torch.dtype) -> Runner:
        from spikingjelly.activation_based import neuron, surrogate
        config = CONFIGS[layer]
        common = dict(v_threshold=config.threshold, v_reset=None, detach_reset=False,
                      surrogate_function=surrogate.PiecewiseExp(alpha=SURROGATE_DECAY),
                      step_mode="m")
        # 1 / (1 - 0.9) is 9.999999999999998 in binary; the decay is 1 - 1 / tau
        tau = round(1.0 / (1.0 - config.alpha_mem), 9) if config.leaky else None
        if not config.spiking:
            # v + (x - v) / tau, a Python loop over time that returns a list of membranes:
            # the input, times tau, makes it the configuration's alpha * v + x
            module = neuron.NonSpikingLIFNode(tau=tau).to(device)
            return SequenceRunner(module, reset=lambda: None, time_major=True,
                                  call=lambda x: torch.stack(module(x)), input_scale=tau)
        if config.leaky:
            module = neuron.LIFNode(tau=tau, decay_input=False, **common)
        else:
            module = neuron.IFNode(**common)
        module = module.to(device)
        on_cuda = torch.device(device).type == "cuda"

        def reset() -> None:
            if on_cuda:
                _select_cuda_implementation(self.implementation)
            module.reset()

        return SequenceRunner(module, reset=reset, time_major=True)
