"""The benchmark's canonical neuron configuration of each layer: the one update every peer is
built to compute (and the semantics gate checks it against).

Common to all spiking layers: threshold 1, zero initial state, at most one spike per step (the
peers have no equivalent of sinabs' ``MultiSpike``), reset by subtracting the threshold, the
reset not detached from the graph, and the surrogate gradient ``exp(-2 |v - 1|)`` (sinabs'
``SingleExponential(grad_width=0.5, grad_scale=0.5)`` at threshold 1; SpikingJelly's
``PiecewiseExp(alpha=2)``), which sinabs_fast's kernels evaluate fused. Per step ``t``::

    i_t = alpha_syn * (i_{t-1} + x_t)          (lif-syn only; otherwise i_t = x_t)
    v_t = alpha_mem * v_{t-1} + i_t             (no input scaling: sinabs' norm_input=False)
    s_t = [v_t >= threshold]
    v_t = v_t - s_t * threshold

``alif`` adds sinabs' adaptive threshold, ``lif-recurrent`` adds ``W s_{t-1}`` to the input,
and ``expleak`` outputs ``v_t`` without spiking. docs/benchmark-peers.md maps each peer onto it.
"""

import math
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import Tensor

from ..cases import LAYERS, Shape

THRESHOLD = 1.0
ALPHA_MEM = 0.9  # every peer can express it: SpikingJelly's tau=10 gives 1 - 1/tau = 0.9
ALPHA_SYN = 0.8
ALPHA_ADAPT = 0.95
ADAPT_SCALE = 1.8  # sinabs' default
SURROGATE_DECAY = 2.0  # the surrogate is exp(-SURROGATE_DECAY * |v - threshold| / threshold) / threshold
# Inputs are uniform in [INPUT_LOW, INPUT_HIGH): below the threshold, which snnTorch's reset
# needs to equal the configuration's (snntorch_peer.py), and from both sides of zero.
INPUT_LOW, INPUT_HIGH = -0.5, 1.0
RECURRENT_SEED = 1234
RECURRENT_SCALE = 0.5  # the recurrent weights are N(0, 1) * scale / sqrt(N)


@dataclass(frozen=True)
class NeuronConfig:
    """One layer's update in the terms of the step above."""

    layer: str
    alpha_mem: float = 1.0  # 1: no leak (IAF)
    alpha_syn: Optional[float] = None
    spiking: bool = True  # False: the output is the membrane (ExpLeak)
    alpha_adapt: Optional[float] = None  # ALIF: threshold_t = threshold + adapt_scale * b_{t-1}
    adapt_scale: float = ADAPT_SCALE
    recurrent: bool = False  # input + W s_{t-1}, with W from recurrent_weight()
    threshold: float = THRESHOLD

    @property
    def tau_mem(self) -> float:
        """sinabs' time constant for ``alpha_mem`` (alpha = exp(-1 / tau))."""
        return _tau(self.alpha_mem)

    @property
    def tau_syn(self) -> Optional[float]:
        return None if self.alpha_syn is None else _tau(self.alpha_syn)

    @property
    def tau_adapt(self) -> Optional[float]:
        return None if self.alpha_adapt is None else _tau(self.alpha_adapt)

    @property
    def leaky(self) -> bool:
        return self.alpha_mem != 1.0


def _tau(alpha: float) -> float:
    return math.inf if alpha == 1.0 else -1.0 / math.log(alpha)


CONFIGS: Dict[str, NeuronConfig] = {
    c.layer: c
    for c in (
        NeuronConfig("iaf"),
        NeuronConfig("lif", alpha_mem=ALPHA_MEM),
        NeuronConfig("lif-syn", alpha_mem=ALPHA_MEM, alpha_syn=ALPHA_SYN),
        NeuronConfig("expleak", alpha_mem=ALPHA_MEM, spiking=False),
        NeuronConfig("alif", alpha_mem=ALPHA_MEM, alpha_adapt=ALPHA_ADAPT),
        NeuronConfig("lif-recurrent", alpha_mem=ALPHA_MEM, recurrent=True),
    )
}
# The end-to-end row is a whole network, not a neuron layer: no peer adapter builds it.
END_TO_END = "seed-network"
assert set(CONFIGS) | {END_TO_END} == set(LAYERS), "every benchmark layer needs a configuration"


def surrogate(v: Tensor, threshold) -> Tensor:
    """The configuration's surrogate gradient, for the float64 reference: sinabs'
    SingleExponential, whose width scales with the threshold (which matters for ALIF's adaptive
    threshold); at threshold 1 it is exp(-SURROGATE_DECAY |v - 1|)."""
    return torch.exp(-SURROGATE_DECAY * (v - threshold).abs() / threshold) / threshold


def make_input(shape: Shape, seed: int, dtype: torch.dtype = torch.float32,
               device="cpu") -> Tensor:
    """A (B, T, N) benchmark input, uniform in [INPUT_LOW, INPUT_HIGH), drawn in float64 from
    its own seeded generator (the same values, up to rounding, in every dtype)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape.B, shape.T, shape.N, generator=g, dtype=torch.float64)
    return (x * (INPUT_HIGH - INPUT_LOW) + INPUT_LOW).to(dtype=dtype, device=device)


def recurrent_weight(neurons: int, dtype: torch.dtype = torch.float32,
                     device="cpu") -> Tensor:
    """The (N, N) weight of lif-recurrent's ``Linear(N, N, bias=False)``, the same for every
    peer (drawn from its own seeded generator, so the global RNG is left alone)."""
    g = torch.Generator().manual_seed(RECURRENT_SEED)
    w = torch.randn(neurons, neurons, generator=g, dtype=torch.float64)
    return (w * (RECURRENT_SCALE / math.sqrt(neurons))).to(dtype=dtype, device=device)


def config_for(layer: str) -> NeuronConfig:
    """The configuration of ``layer``; a ValueError names the layers that have one."""
    try:
        return CONFIGS[layer]
    except KeyError:
        raise ValueError(f"layer: no neuron configuration for {layer!r}; "
                         f"known: {', '.join(CONFIGS)}") from None
